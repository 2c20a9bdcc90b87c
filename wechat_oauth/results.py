"""What WeChat's OAuth API answers, as values: tokens, profiles, scopes and the time helpers.

No HTTP and no Django models here: :mod:`.client` builds these from WeChat's JSON, and the
models, the stored outcome and the login state use them without importing the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

#: Scopes of the Official Account authorize page. ``snsapi_login`` is the website QR login's
#: (``WeChatClient.qrconnect_url``).
AUTHORIZE_SCOPES = ("snsapi_base", "snsapi_userinfo")
#: Every scope the SCOPE setting may name.
SCOPES = (*AUTHORIZE_SCOPES, "snsapi_login")
#: Scopes whose token may call sns/userinfo (under snsapi_base it answers 48001).
PROFILE_SCOPES = ("snsapi_userinfo", "snsapi_login")
DEFAULT_EXPIRES_IN = 7200
REFRESH_TOKEN_LIFETIME = timedelta(days=30)

UTC = timezone.utc


@dataclass(frozen=True)
class TokenResult:
    """An answer of ``/sns/oauth2/access_token`` or ``/sns/oauth2/refresh_token``."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    openid: str
    scope: str
    expires_at: datetime
    refresh_expires_at: datetime
    unionid: str = ""
    #: True for WeChat's "snapshot page" users (virtual openid): never create a user for them.
    is_snapshot_user: bool = False
    #: The user's profile, when it was fetched together with the token (see exchange_once).
    profile: UserInfo | None = None
    #: A Mini Program login's ``session_key`` (``jscode2session``; empty otherwise): the key of
    #: the data ``getPhoneNumber``/``getUserInfo`` hand the Mini Program. It never leaves the
    #: server.
    session_key: str = field(default="", repr=False)
    # Not compared: a result rebuilt from stored fields must equal the original.
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def profile_allowed(self) -> bool:
        """Whether the token's scope lets the profile be fetched with it (never for a
        snapshot-page user, whose openid is virtual)."""
        return self.scope in PROFILE_SCOPES and not self.is_snapshot_user

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], *, now: datetime | None = None) -> TokenResult:
        """Build from WeChat's JSON; ``now`` (aware) is when the token was issued."""
        issued = aware_utc(now)
        expires_in = as_int(payload.get("expires_in"), DEFAULT_EXPIRES_IN)
        return cls(
            access_token=as_text(payload.get("access_token")),
            refresh_token=as_text(payload.get("refresh_token")),
            openid=as_text(payload.get("openid")),
            scope=as_text(payload.get("scope")),
            expires_at=issued + timedelta(seconds=expires_in),
            refresh_expires_at=issued + REFRESH_TOKEN_LIFETIME,
            unionid=as_text(payload.get("unionid")),
            is_snapshot_user=as_int(payload.get("is_snapshotuser"), 0) == 1,
            raw=dict(payload),
        )


def session_result(payload: Mapping[str, Any], *, now: datetime | None = None) -> TokenResult:
    """A ``sns/jscode2session`` answer (Mini Program) as a :class:`TokenResult`: openid,
    unionid and session_key, no access or refresh token (a Mini Program's login has none)."""
    issued = aware_utc(now)
    return TokenResult(
        access_token="",
        refresh_token="",
        openid=as_text(payload.get("openid")),
        scope="",
        expires_at=issued,
        refresh_expires_at=issued,
        unionid=as_text(payload.get("unionid")),
        session_key=as_text(payload.get("session_key")),
        raw=dict(payload),
    )


#: How a WeCom non-member's account is told apart from a member's: a member's identity is
#: their ``userid``, a non-member's this prefix + their ``openid``. ":" is no character of a
#: userid, so no member can ever be taken for a non-member, or the reverse.
WECOM_NON_MEMBER_PREFIX = "openid:"


def wecom_result(
    info: Mapping[str, Any], detail: Mapping[str, Any] | None, *, scope: str, now: datetime | None = None
) -> TokenResult:
    """A WeCom ``auth/getuserinfo`` answer (and, under ``snsapi_privateinfo``, the member's
    ``auth/getuserdetail``) as a :class:`TokenResult`. ``openid`` is the identity the account
    links by: the member's userid, or :data:`WECOM_NON_MEMBER_PREFIX` + the non-member's
    openid. WeCom identities have no unionid. The profile's ``raw`` keeps what WeCom said
    (userid or openid and external_userid; the details), never the user_ticket."""
    issued = aware_utc(now)
    userid = as_text(info.get("userid"))
    identity = userid or WECOM_NON_MEMBER_PREFIX + as_text(info.get("openid"))
    said = {
        key: value
        for key, value in info.items()
        if key not in ("errcode", "errmsg", "user_ticket", "expires_in")
    }
    if detail:
        said.update((key, value) for key, value in detail.items() if key not in ("errcode", "errmsg"))
    profile = UserInfo.from_payload(
        {
            **said,
            "openid": identity,
            "sex": as_int(said.get("gender"), 0),
            "headimgurl": as_text(said.get("avatar")),
            "nickname": as_text(said.get("name")),
        }
    )
    return TokenResult(
        access_token="",
        refresh_token="",
        openid=identity,
        scope=scope,
        expires_at=issued,
        refresh_expires_at=issued,
        profile=profile,
        raw=said,
    )


@dataclass(frozen=True)
class UserInfo:
    """An answer of ``/sns/userinfo``."""

    openid: str
    nickname: str = ""
    #: 0 unknown, 1 male, 2 female (WeChat sends 0 for everyone since late 2021).
    sex: int = 0
    province: str = ""
    city: str = ""
    country: str = ""
    headimgurl: str = ""
    privilege: tuple[str, ...] = ()
    unionid: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> UserInfo:
        privilege = payload.get("privilege")
        return cls(
            openid=as_text(payload.get("openid")),
            nickname=as_text(payload.get("nickname")),
            sex=as_int(payload.get("sex"), 0),
            province=as_text(payload.get("province")),
            city=as_text(payload.get("city")),
            country=as_text(payload.get("country")),
            headimgurl=as_text(payload.get("headimgurl")),
            privilege=tuple(as_text(p) for p in privilege) if isinstance(privilege, list) else (),
            unionid=as_text(payload.get("unionid")),
            raw=dict(payload),
        )


def as_text(value: Any) -> str:
    return "" if value is None else str(value)


def as_int(value: Any, default: int) -> int:
    """``value`` as an int whether WeChat sent ``1`` or ``"1"``; ``default`` if it cannot be."""
    if isinstance(value, bool):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def utc_now() -> datetime:
    return datetime.now(UTC)


def aware_utc(now: datetime | None) -> datetime:
    """``now`` in UTC (the current time when None); a naive datetime is refused."""
    if now is None:
        return utc_now()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now.astimezone(UTC)
