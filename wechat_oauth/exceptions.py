"""Typed errors, one class per thing a caller can act on.

Every error carries ``errcode`` (WeChat's, or None), ``errmsg`` (WeChat's text) and
``request_id`` (the ``rid`` / ``req_id`` WeChat support asks for). Each class has a stable
``key``: it is what :class:`~wechat_oauth.models.OAuthCodeUse` stores for a failed exchange, so
that a duplicate callback can be answered with the very same error type later.

Messages never contain the app secret, a token or a raw code: they are built from WeChat's
``errmsg`` and our own words only.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

_REQUEST_ID_PATTERNS = (
    re.compile(r"\brid:\s*([0-9A-Za-z][0-9A-Za-z_-]*)"),
    re.compile(r"\breq_id:\s*([0-9A-Za-z][0-9A-Za-z_-]*)"),
)


def parse_request_id(errmsg: str) -> str:
    """WeChat's request id from an errmsg such as ``invalid code, rid: 6541f2a3-...``."""
    for pattern in _REQUEST_ID_PATTERNS:
        match = pattern.search(errmsg or "")
        if match:
            return match.group(1)
    return ""


class WeChatOAuthError(Exception):
    """Base class of every error this app raises on purpose."""

    key: ClassVar[str] = "error"
    default_message: ClassVar[str] = "WeChat login failed"

    def __init__(
        self,
        message: str | None = None,
        *,
        errcode: int | None = None,
        errmsg: str = "",
        request_id: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.errcode = errcode
        self.errmsg = errmsg or ""
        self.request_id = parse_request_id(self.errmsg) if request_id is None else request_id
        super().__init__(self.message)

    def __str__(self) -> str:
        details = []
        if self.errcode is not None:
            details.append(f"errcode={self.errcode}")
        if self.errmsg:
            details.append(f"errmsg={self.errmsg!r}")
        if self.request_id and self.request_id not in self.errmsg:
            details.append(f"rid={self.request_id}")
        return f"{self.message} ({', '.join(details)})" if details else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    @property
    def code_untouched(self) -> bool:
        """The call failed before WeChat could have read the code: the claim on it is released
        (not stored as its outcome), and the code may be exchanged again."""
        return False

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments do not survive the default pickling (multiprocessing, caches).
        return (_rebuild, (type(self), self.message, self.errcode, self.errmsg, self.request_id))


def _rebuild(
    cls: type[WeChatOAuthError], message: str, errcode: int | None, errmsg: str, request_id: str
) -> WeChatOAuthError:
    return cls(message, errcode=errcode, errmsg=errmsg, request_id=request_id)


class ConfigurationError(WeChatOAuthError):
    """The site is misconfigured (missing app id/secret, bad URL): an operator must act."""

    key = "configuration"
    default_message = "WeChat login is not configured correctly"


# -- WeChat answered with an errcode -------------------------------------------------------


class UpstreamError(WeChatOAuthError):
    """WeChat answered with an errcode this app has no more specific class for."""

    key = "upstream"
    default_message = "WeChat rejected the request"


class CodeSpent(UpstreamError):
    """The code was already used, never existed, or expired: the user must authorise again."""

    key = "spent"
    default_message = "The authorisation code was already used or is invalid"


class CodeExpired(CodeSpent):
    key = "expired"
    default_message = "The authorisation code has expired"


class MissingCode(UpstreamError):
    key = "missing_code"
    default_message = "WeChat says the authorisation code is missing"


class InvalidCredentials(UpstreamError, ConfigurationError):
    """Wrong APP_ID or APP_SECRET (40001, 40013, 40125): no retry can help."""

    key = "credentials"
    default_message = "WeChat rejected the app id or app secret"


class AccessTokenInvalid(UpstreamError):
    key = "access_token"
    default_message = "The access token is invalid or has expired"


class AppTokenRejected(AccessTokenInvalid):
    """WeCom refused the app's access token (40014 invalid, 42001 expired) with which a code was
    to be exchanged, and a fresh token too. WeCom checks the token before it reads the code, so
    the code is untouched: the claim on it is released, nothing stored (see
    :meth:`wechat_oauth.wecom.WeComClient.exchange_code`)."""

    key = "app_token"
    default_message = "WeCom refused the app's access token"

    @property
    def code_untouched(self) -> bool:
        return True


class RefreshTokenInvalid(UpstreamError):
    key = "refresh_token"
    default_message = "The refresh token is invalid or has expired: authorise again"


class InvalidOpenID(UpstreamError):
    key = "openid"
    default_message = "WeChat says the openid is invalid"


class NotAuthorised(UpstreamError):
    """The API is not allowed for this token (48001), e.g. userinfo under snsapi_base."""

    key = "not_authorised"
    default_message = "The API is not authorised for this scope or account"


class UpstreamBusy(UpstreamError):
    key = "busy"
    default_message = "WeChat is busy"


class UpstreamRateLimited(UpstreamBusy):
    """45011: the app called this API too often this minute (WeChat's per-app quota)."""

    key = "rate_limited"
    default_message = "WeChat's rate limit for this app was reached"


class RiskyUser(UpstreamError):
    """40226: WeChat judges the user high-risk and refuses the Mini Program login."""

    key = "risky_user"
    default_message = "WeChat refused the login of this account (high-risk user)"


# -- WeChat could not be reached or answered nonsense ----------------------------------------


class UpstreamUnavailable(WeChatOAuthError):
    """No usable answer from WeChat: connection failure, timeout, HTTP error, body not JSON.

    ``request_sent`` is False only when the request provably never left this host (DNS
    failure, connection refused, connect timeout): then WeChat cannot have seen the code.
    """

    key = "unavailable"
    default_message = "WeChat could not be reached"

    def __init__(self, message: str | None = None, *, request_sent: bool = True, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.request_sent = request_sent

    @property
    def code_untouched(self) -> bool:
        return not self.request_sent


class UpstreamTimeout(UpstreamUnavailable):
    key = "timeout"
    default_message = "WeChat did not answer in time"


# -- Raised by this app's own flow -----------------------------------------------------------


class ExchangeWaitTimeout(WeChatOAuthError):
    """A duplicate callback waited longer than WAIT_TIMEOUT for the first one's exchange."""

    key = "wait_timeout"
    default_message = "The login is still being completed by an earlier request"


class InvalidCode(WeChatOAuthError):
    """The ``code`` parameter is missing, empty, too long or not printable ASCII."""

    key = "invalid_code"
    default_message = "The authorisation code is missing or malformed"


class InvalidState(WeChatOAuthError):
    """The ``state`` is missing, malformed, forged, or bound to another page, scope or app."""

    key = "invalid_state"
    default_message = "The login state is missing or invalid"


class ExpiredState(InvalidState):
    """The ``state`` is genuine but older than STATE_MAX_AGE: the user must start again."""

    key = "expired_state"
    default_message = "The login state has expired"


class BadCallback(WeChatOAuthError):
    """The callback's query string is malformed (e.g. a repeated parameter), or a JSON
    endpoint's body is (not a JSON object, too large, a repeated key: :mod:`.jsonbody`)."""

    key = "bad_callback"
    default_message = "The login callback is malformed"


class UnsupportedMediaType(BadCallback):
    """A JSON endpoint's body is not declared ``application/json`` (a form, say): a 415."""

    key = "unsupported_media_type"
    default_message = "The request body must be application/json"


class ConsentRefused(WeChatOAuthError):
    """The callback carries a state but no code: the user refused on WeChat's consent page."""

    key = "consent_refused"
    default_message = "The user did not allow the login"


class SnapshotUser(WeChatOAuthError):
    """WeChat's snapshot (preview) mode: the openid is virtual and must not be linked."""

    key = "snapshot_user"
    default_message = "The page was opened in WeChat's snapshot mode"


class InactiveUser(WeChatOAuthError):
    """The WeChat identity is linked to a user who may not log in."""

    key = "inactive_user"
    default_message = "The linked user account is disabled"


class LoginRefused(WeChatOAuthError):
    """The site's adapter vetoed this identity's login (``may_log_in`` answered False)."""

    key = "login_refused"
    default_message = "The site does not allow this WeChat account to log in"


class ReplayRefused(CodeSpent):
    """A duplicate of a spent code from another browser or another login attempt (another
    state): it is not given the first request's outcome, and is treated like a spent code."""

    key = "replay_refused"
    default_message = "The authorisation code was used by another browser or login attempt"


class BindingMismatch(WeChatOAuthError):
    """The callback's browser holds another binding cookie than the one the state commits to:
    the login was started in another browser (a login-CSRF link, a stolen callback URL)."""

    key = "binding_mismatch"
    default_message = "The login was started in another browser"


class BindingMissing(BindingMismatch):
    """The callback's browser holds no binding cookie and is not one known to drop cookies
    (UNBOUND_USER_AGENTS): nothing shows that it started this login."""

    key = "binding_missing"
    default_message = "The login was not started in this browser"


class TooManyCodes(WeChatOAuthError):
    """More new codes than a login attempt or a client may spend (MAX_CODES_PER_LOGIN,
    GARBAGE_BUDGET): refused before anything is stored or sent to WeChat."""

    key = "too_many_codes"
    default_message = "Too many login codes from this client"


class AccountLinkFailed(WeChatOAuthError):
    """A new WeChat identity could not be linked: creating its user (the CREATE_USER hook)
    hit a unique constraint, and no concurrent login had linked the identity either."""

    key = "link_failed"
    default_message = "The WeChat identity could not be linked to a user"


ERRCODE_CLASSES: dict[int, type[UpstreamError]] = {
    -1: UpstreamBusy,
    40001: InvalidCredentials,
    40003: InvalidOpenID,
    40013: InvalidCredentials,
    40014: AccessTokenInvalid,
    40029: CodeSpent,
    40030: RefreshTokenInvalid,
    40125: InvalidCredentials,
    40163: CodeSpent,
    40226: RiskyUser,
    41004: InvalidCredentials,  # WeCom: corpsecret missing
    41008: MissingCode,
    42001: AccessTokenInvalid,
    42002: RefreshTokenInvalid,
    42003: CodeExpired,
    45009: UpstreamRateLimited,  # WeCom: api freq out of limit
    45011: UpstreamRateLimited,
    48001: NotAuthorised,
}


def error_for_errcode(errcode: int, errmsg: str = "") -> UpstreamError:
    """The typed error for a WeChat ``{"errcode": ..., "errmsg": ...}`` answer."""
    cls = ERRCODE_CLASSES.get(errcode, UpstreamError)
    return cls(errcode=errcode, errmsg=errmsg)


def _all_subclasses(cls: type[WeChatOAuthError]) -> list[type[WeChatOAuthError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


def error_class_for_key(key: str) -> type[WeChatOAuthError]:
    """The error class whose ``key`` is ``key`` (used to replay a stored failure)."""
    for cls in _all_subclasses(WeChatOAuthError):
        if cls.key == key:
            return cls
    return UpstreamError


# -- Raised by the Mini Program's data decryption (decrypt.py) -------------------------------


class DecryptionFailed(WeChatOAuthError):
    """A Mini Program's ``encryptedData`` (getPhoneNumber, getUserInfo) could not be decrypted
    with the user's session_key, or is not this Mini Program's: the message names the reason
    (bad padding or wrong key, not JSON, the watermark names another app...), never the key,
    the iv, the data or the plaintext. Answered as a 400, one body whatever the reason."""

    key = "decryption_failed"
    default_message = "Mini Program data could not be decrypted"
