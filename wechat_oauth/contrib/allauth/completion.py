"""Handing an exchanged login to allauth's own completion, once per identity however the
callbacks race.

allauth's ``complete_social_login`` does what allauth users expect (its adapters'
``pre_social_login``/``populate_user``/``save_user``, its signals, auto signup or the signup
form, ``perform_login``, its redirects). Run as it is under WeChat's duplicate callbacks (or
Android's two codes for one login), two requests of one new openid both find no account and both
create a user: one account save fails on the unique (provider, uid), a 500, and its user stays
behind without an account. Here each completion runs inside one transaction (the write lock
taken first on SQLite, :func:`wechat_oauth.transactions.write_transaction`): the loser's
IntegrityError (or deadlock) rolls its user back, and it runs again, finding the winner's
account and logging it in. What can fail that way fails before allauth logs anyone in (the
account's INSERT comes before ``perform_login``), so no session is touched by an attempt that
rolls back.

**unionid linking** (a provider's ``"LINK_BY_UNIONID": True``): a new identity whose unionid
belongs to a known person joins that person's user (``sociallogin.connect()``, from allauth's
``pre_social_login`` signal, as allauth's documentation links accounts), and a new person is
registered in :class:`~wechat_oauth.models.WeChatUnion` (unique unionid) in the same
transaction, so two first logins of one person through two apps at once make one user. The
``SocialAccount`` uid stays the openid, so rows made by allauth's own provider match. A person
known only from such rows (``extra_data["unionid"]``, no ``WeChatUnion`` yet) is found there
once and registered.

**Unbound callbacks** (no binding cookie) never silently replace a different logged-in user:
the login is parked in the session and ``wechat_oauth/confirm.html`` asks (a CSRF-protected
POST to the provider's ``login/confirm/`` within 5 minutes completes it).
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, OperationalError
from django.db.models.signals import post_save
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from ...conf import app_settings
from ...confirm import PENDING_MAX_AGE
from ...exceptions import AccountLinkFailed, InvalidState
from ...models import WeChatUnion
from ...results import TokenResult
from ...transactions import is_deadlock, write_transaction

logger = logging.getLogger("wechat_oauth.allauth")

#: Tries of a completion that lost a race to a concurrent first login of the same identity.
ATTEMPTS = 3
#: Session key of a login parked until the browser's user confirms it.
PENDING_KEY = "_wechat_oauth_allauth_pending"
#: Fields of WeChat's userinfo answer kept when a replayed profile has no raw answer.
PROFILE_FIELDS = (
    "openid",
    "nickname",
    "sex",
    "province",
    "city",
    "country",
    "headimgurl",
    "privilege",
    "unionid",
)


@dataclass(frozen=True)
class WeixinLogin:
    """What one exchange gave, in the shape allauth's completion takes, and its allauth state."""

    #: ``SocialAccount.extra_data``: WeChat's userinfo answer, or openid/scope/unionid.
    data: dict[str, Any]
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime | None
    state: dict[str, Any]

    @property
    def openid(self) -> str:
        return str(self.data["openid"])

    @property
    def unionid(self) -> str:
        return str(self.data.get("unionid") or "")

    @classmethod
    def of(cls, token: TokenResult, state: dict[str, Any]) -> WeixinLogin:
        if token.profile is not None:
            profile = token.profile
            data = dict(profile.raw) or {name: getattr(profile, name) for name in PROFILE_FIELDS}
            data.pop("errcode", None)
            data.pop("errmsg", None)
            if isinstance(data.get("privilege"), tuple):
                data["privilege"] = list(data["privilege"])
        else:  # snsapi_base: no profile (userinfo would answer 48001)
            data = {"scope": token.scope}
        data["openid"] = token.openid
        if token.unionid and not data.get("unionid"):
            data["unionid"] = token.unionid
        return cls(
            data=data,
            access_token=token.access_token,
            refresh_token=token.refresh_token,
            expires_at=token.expires_at,
            state=dict(state),
        )

    def to_session(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "state": self.state,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }

    @classmethod
    def from_session(cls, stored: dict[str, Any]) -> WeixinLogin:
        expires = stored.get("expires_at")
        return cls(
            data=dict(stored["data"]),
            access_token=str(stored["access_token"]),
            refresh_token=str(stored["refresh_token"]),
            state=dict(stored["state"]),
            expires_at=datetime.fromisoformat(expires) if expires else None,
        )


def social_login(request: HttpRequest, provider: Any, login: WeixinLogin) -> Any:
    """A new (unsaved) ``SocialLogin`` of this login, as allauth's callback builds one."""
    from allauth.socialaccount.models import SocialAccount, SocialToken

    data = dict(login.data)
    if "nickname" not in data:  # snsapi_base: keep the profile an earlier login stored
        previous = (
            SocialAccount.objects.filter(provider=provider.sub_id, uid=login.openid)
            .values_list("extra_data", flat=True)
            .first()
        )
        if isinstance(previous, dict):
            data = {**previous, **data}
    sociallogin = provider.sociallogin_from_response(request, data)
    token = SocialToken(
        token=login.access_token, token_secret=login.refresh_token, expires_at=login.expires_at
    )
    if provider.app.pk:
        token.app = provider.app
    sociallogin.token = token
    sociallogin.state = dict(login.state)
    return sociallogin


# -- Completion --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Completion:
    """The completion running in this context (the signal receivers act only on it)."""

    sociallogin: Any
    unionid: str


_completing: ContextVar[_Completion | None] = ContextVar("wechat_oauth_allauth", default=None)


def finish(request: HttpRequest, provider: Any, login: WeixinLogin, *, unbound: bool) -> HttpResponse:
    """Complete the login, unless an unbound callback must ask first."""
    if unbound and (app_settings.CONFIRM_UNBOUND or _replaces_someone(request, provider, login)):
        return ask(request, provider, login)
    return hand_to_allauth(request, provider, login)


def hand_to_allauth(request: HttpRequest, provider: Any, login: WeixinLogin) -> HttpResponse:
    """``complete_social_login`` in a transaction, again if a concurrent first login won."""
    from allauth.socialaccount.helpers import complete_social_login, render_authentication_error
    from allauth.socialaccount.models import SocialAccount

    unionid = login.unionid if provider.links_by_unionid() else ""
    lost: Exception | None = None
    for attempt in range(1, ATTEMPTS + 1):
        sociallogin = social_login(request, provider, login)
        context = _completing.set(_Completion(sociallogin, unionid))
        try:
            with write_transaction(SocialAccount):
                return complete_social_login(request, sociallogin)
        except IntegrityError as error:
            lost = error
        except OperationalError as error:
            if not is_deadlock(error):
                raise
            lost = error
        except PermissionDenied as error:  # a site's adapter or signal refused: allauth's page
            return render_authentication_error(
                request, provider, exception=error, extra_context={"state": login.state}
            )
        finally:
            _completing.reset(context)
        logger.info(
            "openid %s: a concurrent login linked it first (attempt %d): again", login.openid, attempt
        )
    logger.error("openid %s could not be linked after %d attempts", login.openid, ATTEMPTS, exc_info=lost)
    raise AccountLinkFailed() from lost


def continue_to(request: HttpRequest, state: dict[str, Any]) -> HttpResponseRedirect:
    """Where a login that needs nothing more goes: its ``next``, else allauth's default."""
    from allauth.account.adapter import get_adapter

    return HttpResponseRedirect(state.get("next") or get_adapter(request).get_login_redirect_url(request))


# -- Unbound callbacks -------------------------------------------------------------------------


def _replaces_someone(request: HttpRequest, provider: Any, login: WeixinLogin) -> bool:
    current = getattr(request, "user", None)
    if current is None or not current.is_authenticated:
        return False
    return _user_id_of(provider, login) != current.pk


def _user_id_of(provider: Any, login: WeixinLogin) -> Any:
    """The user this login would log in as (None: a new one)."""
    from allauth.socialaccount.models import SocialAccount

    account = SocialAccount.objects.filter(provider=provider.sub_id, uid=login.openid).first()
    if account is not None:
        return account.user_id
    if login.unionid and provider.links_by_unionid():
        user = person_user(login.unionid, register=False)
        return user.pk if user is not None else None
    return None


def ask(request: HttpRequest, provider: Any, login: WeixinLogin) -> HttpResponse:
    """Park the login in this browser's session and ask (200). Every duplicate of the callback
    parks the same login and shows the same page."""
    request.session[PENDING_KEY] = {
        "provider": provider.id,
        "login": login.to_session(),
        "expires": time.time() + PENDING_MAX_AGE,
    }
    context = {
        "current": getattr(request, "user", None),
        "nickname": str(login.data.get("nickname") or ""),
        "confirm_url": reverse(f"{provider.id}_confirm"),
    }
    response = render(request, "wechat_oauth/confirm.html", context)
    add_never_cache_headers(response)
    return response


def confirmed(request: HttpRequest, provider: Any) -> HttpResponse:
    """The question's answer (POST): ``continue`` completes the parked login, anything else
    drops it and goes on to its ``next``. No parked login of this provider: InvalidState."""
    pending = request.session.pop(PENDING_KEY, None)
    if (
        not isinstance(pending, dict)
        or pending.get("provider") != provider.id
        or pending.get("expires", 0) < time.time()
    ):
        raise InvalidState("No login waits for confirmation")
    login = WeixinLogin.from_session(pending["login"])
    if request.POST.get("action") != "continue":
        return continue_to(request, login.state)
    return hand_to_allauth(request, provider, login)


# -- unionid linking ---------------------------------------------------------------------------


def person_user(unionid: str, *, register: bool = True) -> Any:
    """The user of the person ``unionid`` names, or None. A person known only from an account's
    ``extra_data`` (made by allauth's own provider) is registered (``register``)."""
    from allauth.socialaccount.models import SocialAccount

    from .provider import provider_classes

    person = WeChatUnion.objects.select_related("user").filter(unionid=unionid).first()
    if person is not None:
        return person.user
    known = (
        SocialAccount.objects.select_related("user")
        .filter(provider__in=[cls.id for cls in provider_classes], extra_data__unionid=unionid)
        .order_by("pk")
        .first()
    )
    if known is None:
        return None
    if register:
        WeChatUnion.objects.create(unionid=unionid, user=known.user)
    return known.user


def _join_known_person(sender: Any, request: HttpRequest, sociallogin: Any, **kwargs: Any) -> None:
    """allauth's ``pre_social_login``: a new identity of a known person joins their user."""
    current = _completing.get()
    if current is None or current.sociallogin is not sociallogin or not current.unionid:
        return
    if sociallogin.is_existing:
        return
    user = person_user(current.unionid)
    if user is not None:
        logger.info("openid %s joins the user of its unionid", sociallogin.account.uid)
        sociallogin.connect(request, user)


def _register_person(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """A new account of a person not known yet: the person is registered with its user, in
    the completion's transaction (a concurrent first login of the person through another app
    then fails on the unique unionid, rolls back and joins this user). A person registered
    with another user since this completion looked (that login committed in between) is the
    same race lost: an IntegrityError, and the completion runs again and joins them."""
    current = _completing.get()
    if not created or current is None or not current.unionid or instance is not current.sociallogin.account:
        return
    person = WeChatUnion.objects.filter(unionid=current.unionid).first()
    if person is None:
        WeChatUnion.objects.create(unionid=current.unionid, user_id=instance.user_id)
    elif person.user_id != instance.user_id:
        raise IntegrityError("the person was registered with another user meanwhile")


def connect_receivers() -> None:
    from allauth.socialaccount.models import SocialAccount
    from allauth.socialaccount.signals import pre_social_login

    pre_social_login.connect(_join_known_person, dispatch_uid="wechat_oauth_allauth_person")
    post_save.connect(_register_person, sender=SocialAccount, dispatch_uid="wechat_oauth_allauth_register")
