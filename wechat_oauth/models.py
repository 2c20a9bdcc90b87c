from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .conf import app_settings
from .exceptions import WeChatOAuthError
from .outcome import StoredOutcome
from .results import TokenResult

#: A row that still holds a token, a session_key or a profile (what the scrub blanks).
HOLDS_SECRETS = ~Q(access_token="") | ~Q(session_key="") | Q(profile__isnull=False)


class OAuthCodeUse(models.Model):
    """One authorisation code and what became of it: the fence of the exactly-once exchange.

    The unique constraint on (app_id, code_hash) is what makes the exchange happen once: the
    request that inserts the row holds it, uncommitted, while it calls WeChat, so every twin
    INSERT waits in the database and wakes when the holder commits. Other connections therefore
    only ever see a finished exchange (``exchanged`` or ``failed``); ``in_flight`` is the
    value the row has inside the holder's transaction.
    """

    class Status(models.TextChoices):
        IN_FLIGHT = "in_flight", _("in flight")
        EXCHANGED = "exchanged", _("exchanged")
        FAILED = "failed", _("failed")

    app_id = models.CharField(_("app id"), max_length=64)
    code_hash = models.CharField(_("code hash"), max_length=64, help_text=_("HMAC-SHA256 of the code."))
    state_hash = models.CharField(_("state hash"), max_length=64, blank=True)
    fingerprint = models.CharField(
        _("browser fingerprint"),
        max_length=64,
        blank=True,
        editable=False,
        help_text=_(
            "Keyed hash of the first request's binding cookie and User-Agent: only "
            "duplicates from that browser are given its outcome."
        ),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.IN_FLIGHT)

    # The outcome a duplicate replays.
    openid = models.CharField(_("openid"), max_length=128, blank=True)
    unionid = models.CharField(_("unionid"), max_length=128, blank=True)
    scope = models.CharField(_("scope"), max_length=64, blank=True)
    is_snapshot_user = models.BooleanField(_("snapshot user"), default=False)
    # Kept only for the dedupe window; purge_oauth_codes blanks them afterwards.
    access_token = models.TextField(blank=True, editable=False)
    refresh_token = models.TextField(blank=True, editable=False)
    #: A Mini Program login's session_key, which every duplicate of its code must get too.
    session_key = models.TextField(blank=True, editable=False)
    # The userinfo answer (snsapi_userinfo), likewise kept only for the dedupe window.
    profile = models.JSONField(null=True, blank=True, editable=False)
    access_token_expires_at = models.DateTimeField(_("access token expires"), null=True, blank=True)
    refresh_token_expires_at = models.DateTimeField(_("refresh token expires"), null=True, blank=True)

    # A failed exchange: the error's key (see exceptions.py) and what WeChat said.
    error = models.CharField(_("error"), max_length=32, blank=True)
    errcode = models.IntegerField(_("errcode"), null=True, blank=True)
    errmsg = models.CharField(_("errmsg"), max_length=255, blank=True)
    request_id = models.CharField(_("WeChat request id"), max_length=128, blank=True)

    # Duplicates.
    duplicates = models.PositiveIntegerField(_("duplicates absorbed"), default=0)
    resent_variant_seen = models.BooleanField(
        _("re-sent variant seen"),
        default=False,
        help_text=_("A request carried WeChat's uin/key/pass_ticket parameters."),
    )
    max_gap_ms = models.PositiveIntegerField(
        _("largest gap (ms)"),
        default=0,
        help_text=_("Longest time between the first request and a duplicate."),
    )

    first_seen_at = models.DateTimeField(_("first seen"))
    last_seen_at = models.DateTimeField(_("last seen"))
    completed_at = models.DateTimeField(_("exchange completed"), null=True, blank=True)
    exchange_ms = models.PositiveIntegerField(_("exchange time (ms)"), null=True, blank=True)

    class Meta:
        verbose_name = _("OAuth code use")
        verbose_name_plural = _("OAuth code uses")
        constraints = [
            models.UniqueConstraint(fields=["app_id", "code_hash"], name="wechat_oauth_code_once"),
        ]
        indexes = [
            # Retention purge and the admin's date hierarchy / recent-first list.
            models.Index(fields=["first_seen_at"], name="wechat_oauth_code_first_seen"),
            # Token scrub: only rows that still hold a secret (purge.py writes the same
            # condition, so that SQLite uses the index too). A Mini Program's session_key and
            # a WeCom member's details come without an access token.
            models.Index(
                fields=["first_seen_at"], name="wechat_oauth_code_has_secrets", condition=HOLDS_SECRETS
            ),
            models.Index(fields=["openid"], name="wechat_oauth_code_openid"),
            models.Index(fields=["unionid"], name="wechat_oauth_code_unionid"),
        ]

    def __str__(self) -> str:
        return f"{self.app_id} {self.code_hash[:12]} ({self.status})"

    @property
    def outcome(self) -> StoredOutcome:
        """What a duplicate of this code replays (see :meth:`StoredOutcome.replay`)."""
        return StoredOutcome.from_row(self)

    #: Fields that hold tokens or the profile: kept only for the dedupe window (purge scrubs
    #: them), never loaded or shown by the admin.
    TOKEN_FIELDS = ("access_token", "refresh_token", "session_key", "profile")

    #: What the holder writes when its exchange ends (record_success / record_failure).
    OUTCOME_FIELDS = (
        "status",
        "openid",
        "unionid",
        "scope",
        "is_snapshot_user",
        "access_token",
        "refresh_token",
        "session_key",
        "profile",
        "access_token_expires_at",
        "refresh_token_expires_at",
        "error",
        "errcode",
        "errmsg",
        "request_id",
        "completed_at",
        "exchange_ms",
    )

    def record_success(self, token: TokenResult) -> None:
        self.status = self.Status.EXCHANGED
        self.openid, self.unionid, self.scope = token.openid, token.unionid, token.scope
        self.is_snapshot_user = token.is_snapshot_user
        if app_settings.DEDUPE_WINDOW > 0:
            self.access_token, self.refresh_token = token.access_token, token.refresh_token
            self.session_key = token.session_key
            self.profile = dict(token.profile.raw) if token.profile is not None else None
        self.access_token_expires_at = token.expires_at
        self.refresh_token_expires_at = token.refresh_expires_at

    def record_failure(self, error: WeChatOAuthError) -> None:
        self.status = self.Status.FAILED
        self.error = error.key
        self.errcode = error.errcode
        self.errmsg = error.errmsg[:255]
        self.request_id = error.request_id[:128]


class WeChatAccount(models.Model):
    """A WeChat identity (openid of one app id) linked to a Django user.

    ``unionid`` is the same across all apps of one WeChat Open Platform account, so a user who
    logs in through a second app of the organisation is linked to the same Django user.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="wechat_accounts",
        verbose_name=_("user"),
    )
    app_id = models.CharField(_("app id"), max_length=64)
    openid = models.CharField(_("openid"), max_length=128)
    unionid = models.CharField(_("unionid"), max_length=128, blank=True)
    scope = models.CharField(_("last scope"), max_length=64, blank=True)
    nickname = models.CharField(_("nickname"), max_length=100, blank=True)
    sex = models.PositiveSmallIntegerField(_("sex"), default=0, help_text=_("0 unknown, 1 male, 2 female"))
    province = models.CharField(_("province"), max_length=64, blank=True)
    city = models.CharField(_("city"), max_length=64, blank=True)
    country = models.CharField(_("country"), max_length=64, blank=True)
    headimgurl = models.URLField(_("avatar URL"), max_length=512, blank=True)
    privilege = models.JSONField(_("privileges"), default=list, blank=True)
    #: The latest session_key of a Mini Program identity (see miniprogram.session_key_of):
    #: for decrypting what getPhoneNumber/getUserInfo hand the Mini Program. Never shown.
    session_key = models.TextField(blank=True, editable=False)
    #: Bumped to revoke every session token issued so far for this identity.
    token_version = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    last_login_at = models.DateTimeField(_("last WeChat login"), null=True, blank=True)

    class Meta:
        verbose_name = _("WeChat account")
        verbose_name_plural = _("WeChat accounts")
        constraints = [
            # openid first: the index also serves lookups by openid alone (admin search).
            models.UniqueConstraint(fields=["openid", "app_id"], name="wechat_oauth_account_openid"),
        ]
        indexes = [
            # A plain b-tree (a db_index CharField would get a second, LIKE-only one on
            # PostgreSQL: unionid is only ever matched exactly).
            models.Index(fields=["unionid"], name="wechat_oauth_account_unionid"),
        ]

    def __str__(self) -> str:
        return f"{self.nickname or self.openid} ({self.app_id})"

    PROFILE_FIELDS = ("nickname", "sex", "province", "city", "country", "headimgurl", "privilege")


class WeChatUnion(models.Model):
    """The Django user of one person of the organisation: WeChat's ``unionid`` (the same for
    every app bound to one Open Platform account) and the user it logs in as.

    Its unique ``unionid`` is what makes the first logins of one new person through two apps
    at the same moment end in one user: both transactions insert this row, the database lets
    one commit and the other rolls back (its user with it) and links to the winner's user.
    """

    unionid = models.CharField(_("unionid"), max_length=128, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="wechat_unions",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("WeChat person (unionid)")
        verbose_name_plural = _("WeChat persons (unionid)")

    def __str__(self) -> str:
        return self.unionid


class WeComAccessToken(models.Model):
    """The access token of one WeCom app (corp id + agent id), shared by every worker and
    server when no cache is configured (see :mod:`wechat_oauth.wecom_token`).

    One row per app; whoever refreshes it holds the row's lock while WeCom answers, so one
    ``gettoken`` serves every process. The token itself is never shown (no admin, no repr).
    """

    key = models.CharField(_("WeCom app"), max_length=160, unique=True, help_text=_("Corp id and agent id."))
    access_token = models.TextField(blank=True, editable=False)
    expires_at = models.DateTimeField(_("expires"))
    #: When the next request fetches a new token (WECOM_TOKEN_REFRESH_MARGIN before expiry).
    refresh_at = models.DateTimeField(_("refresh after"))
    fetched_at = models.DateTimeField(_("fetched"), null=True, blank=True)
    #: How many times gettoken was called for this app (from this table's point of view).
    fetches = models.PositiveIntegerField(_("fetches"), default=0)

    class Meta:
        verbose_name = _("WeCom access token")
        verbose_name_plural = _("WeCom access tokens")

    def __str__(self) -> str:
        return self.key

    def __repr__(self) -> str:
        return f"<WeComAccessToken {self.key} expires {self.expires_at}>"
