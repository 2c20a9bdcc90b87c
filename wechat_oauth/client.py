"""The only code that talks HTTP to WeChat: authorize URLs, code exchange, refresh, userinfo, check.

Every API call goes through :meth:`WeChatClient._call`, which turns whatever can go wrong
(timeouts, refused connections, HTTP errors, bodies that are not JSON, ``errcode`` answers) into
the typed errors of :mod:`wechat_oauth.exceptions`.

WeChat takes the app secret, the code and tokens as query parameters, so the text of any
``requests`` exception carries them in its URL. Errors raised here are therefore never chained
to the ``requests`` exception (``__cause__`` and ``__context__`` stay empty), and their messages
name the endpoint path only.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from django.core.signals import setting_changed
from django.dispatch import receiver
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.exceptions import ProxyError as Urllib3ProxyError

from . import __version__, redact
from .conf import SETTINGS_NAME, TimeoutValue, app_settings, timeout_pair
from .exceptions import (
    AccessTokenInvalid,
    ConfigurationError,
    InvalidOpenID,
    UpstreamTimeout,
    UpstreamUnavailable,
    WeChatOAuthError,
    error_for_errcode,
)
from .registry import WeChatApp
from .results import (
    AUTHORIZE_SCOPES,
    TokenResult,
    UserInfo,
    as_int,
    as_text,
    session_result,
    utc_now,
)

logger = logging.getLogger("wechat_oauth.client")

ACCESS_TOKEN_PATH = "/sns/oauth2/access_token"
REFRESH_TOKEN_PATH = "/sns/oauth2/refresh_token"
USERINFO_PATH = "/sns/userinfo"
AUTH_PATH = "/sns/auth"
JSCODE2SESSION_PATH = "/sns/jscode2session"

MAX_STATE_BYTES = 128

_STATE_RE = re.compile(r"[A-Za-z0-9]*")
_SCOPE_LIST_RE = re.compile(r"[A-Za-z0-9_]+(?:,[A-Za-z0-9_]+)*")
#: Fields an answer must carry: a token exchange's, a jscode2session's.
TOKEN_FIELDS = ("access_token", "openid")
SESSION_FIELDS = ("openid", "session_key")

# Causes of a ConnectionError that prove no byte of the request left this host.
_NOT_CONNECTED = (NewConnectionError, ConnectionRefusedError, socket.gaierror)


# -- Client ----------------------------------------------------------------------------------


class WeChatClient:
    """Talks to WeChat's web-authorization API. Arguments left None come from settings."""

    def __init__(
        self,
        app_id: str | None = None,
        app_secret: str | None = None,
        *,
        api_base_url: str | None = None,
        authorize_url: str | None = None,
        qrconnect_url: str | None = None,
        timeout: TimeoutValue | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.app_id: str = app_settings.APP_ID if app_id is None else app_id
        self.app_secret: str = app_settings.APP_SECRET if app_secret is None else app_secret
        base = app_settings.API_BASE_URL if api_base_url is None else api_base_url
        self.api_base_url: str = base.rstrip("/")
        self.authorize_base_url: str = app_settings.AUTHORIZE_URL if authorize_url is None else authorize_url
        self.qrconnect_base_url: str = app_settings.QRCONNECT_URL if qrconnect_url is None else qrconnect_url
        self.timeout: tuple[float, float] = timeout_pair(app_settings.timeout if timeout is None else timeout)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = f"django-wechat-oauth/{__version__}"
        self.session: requests.Session = session
        #: The configured app this client serves (:meth:`for_app`), whose own FORCE_POPUP,
        #: CONNECT_REDIRECT, USERINFO_LANG and SCOPE then apply; None: the global settings.
        self.app: WeChatApp | None = None
        # urllib3 logs every request URL (with secret, code, tokens) at DEBUG.
        redact.install_url_log_redaction()

    @classmethod
    def for_app(cls, app: WeChatApp, *, session: requests.Session | None = None) -> WeChatClient:
        """A client of one configured app (see :mod:`.registry`), its overrides applied."""
        client = cls(
            app.app_id,
            app.app_secret,
            api_base_url=app.setting("API_BASE_URL"),
            authorize_url=app.setting("AUTHORIZE_URL"),
            qrconnect_url=app.setting("QRCONNECT_URL"),
            timeout=app.setting("TIMEOUT"),
            session=session,
        )
        client.app = app
        return client

    def option(self, key: str) -> Any:
        """A per-app setting (FORCE_POPUP, ...) as this client's app sees it."""
        return self.app.setting(key) if self.app is not None else getattr(app_settings, key)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} app_id={self.app_id!r} api_base_url={self.api_base_url!r}>"

    def close(self) -> None:
        self.session.close()

    # -- Browser redirects -------------------------------------------------------------------

    def authorize_url(
        self,
        redirect_uri: str,
        state: str = "",
        scope: str | None = None,
        *,
        force_popup: bool | None = None,
        connect_redirect: bool | None = None,
    ) -> str:
        """The Official Account authorize page URL, parameters in the order WeChat requires."""
        if scope is None:
            scope = self.app.scope if self.app is not None else app_settings.SCOPE
        if scope not in AUTHORIZE_SCOPES:
            hint = " (use qrconnect_url() for snsapi_login)" if scope == "snsapi_login" else ""
            raise ValueError(f"scope must be one of {', '.join(AUTHORIZE_SCOPES)}, not {scope!r}{hint}")
        url = self._redirect_url(self.authorize_base_url, redirect_uri, state, scope)
        if self.option("FORCE_POPUP") if force_popup is None else force_popup:
            url += "&forcePopup=true"
        if self.option("CONNECT_REDIRECT") if connect_redirect is None else connect_redirect:
            url += "&connect_redirect=1"
        return url + "#wechat_redirect"

    def qrconnect_url(self, redirect_uri: str, state: str = "", *, scope: str = "snsapi_login") -> str:
        """The website (PC) QR-code login URL; needs an Open Platform website app's appid."""
        if not _SCOPE_LIST_RE.fullmatch(scope):
            raise ValueError("scope must be comma-separated scope names such as 'snsapi_login'")
        url = self._redirect_url(self.qrconnect_base_url, redirect_uri, state, scope)
        return url + "#wechat_redirect"

    def _redirect_url(self, base: str, redirect_uri: str, state: str, scope: str) -> str:
        self._require_app_id()
        _check_redirect_uri(redirect_uri)
        _check_state(state)
        return (
            f"{base}?appid={quote(self.app_id, safe='')}"
            f"&redirect_uri={quote(redirect_uri, safe='')}"
            f"&response_type=code&scope={scope}&state={state}"
        )

    # -- API calls ---------------------------------------------------------------------------

    def exchange_code(self, code: str) -> TokenResult:
        """Exchange the callback's ``code`` for tokens. A code can be exchanged only once."""
        now = utc_now()
        payload = self._call(ACCESS_TOKEN_PATH, self.exchange_params(code), required=TOKEN_FIELDS)
        return TokenResult.from_payload(payload, now=now)

    def jscode2session(self, js_code: str) -> TokenResult:
        """A Mini Program's ``wx.login()`` code for openid, unionid and session_key. Like a web
        code it works once; each call also rotates the user's session_key."""
        now = utc_now()
        payload = self._call(
            JSCODE2SESSION_PATH, self.jscode2session_params(js_code), required=SESSION_FIELDS
        )
        return session_result(payload, now=now)

    def refresh(self, refresh_token: str) -> TokenResult:
        """A new access token for ``refresh_token`` (valid 30 days; no secret needed)."""
        self._require_app_id()
        now = utc_now()
        payload = self._call(
            REFRESH_TOKEN_PATH,
            [
                ("appid", self.app_id),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            required=TOKEN_FIELDS,
        )
        return TokenResult.from_payload(payload, now=now)

    def userinfo(self, access_token: str, openid: str, lang: str | None = None) -> UserInfo:
        """The user's profile. Needs a ``snsapi_userinfo`` token (48001 under snsapi_base)."""
        payload = self._call(
            USERINFO_PATH, self.userinfo_params(access_token, openid, lang), required=("openid",)
        )
        return UserInfo.from_payload(payload)

    def check(self, access_token: str, openid: str) -> bool:
        """Whether ``access_token`` is still valid for ``openid``; other errors propagate."""
        try:
            self._call(AUTH_PATH, [("access_token", access_token), ("openid", openid)], required=("errcode",))
        except (AccessTokenInvalid, InvalidOpenID):
            return False
        return True

    # -- What each call sends (the async client sends the same) -------------------------------

    def exchange_params(self, code: str) -> list[tuple[str, str]]:
        self._require_app_id(secret=True)
        return [
            ("appid", self.app_id),
            ("secret", self.app_secret),
            ("code", code),
            ("grant_type", "authorization_code"),
        ]

    def jscode2session_params(self, js_code: str) -> list[tuple[str, str]]:
        self._require_app_id(secret=True)
        return [
            ("appid", self.app_id),
            ("secret", self.app_secret),
            ("js_code", js_code),
            ("grant_type", "authorization_code"),
        ]

    def userinfo_params(
        self, access_token: str, openid: str, lang: str | None = None
    ) -> list[tuple[str, str]]:
        return [
            ("access_token", access_token),
            ("openid", openid),
            ("lang", self.option("USERINFO_LANG") if lang is None else lang),
        ]

    # -- Internals ---------------------------------------------------------------------------

    def _require_app_id(self, *, secret: bool = False) -> None:
        if not self.app_id:
            raise ConfigurationError("WECHAT_OAUTH['APP_ID'] is not set")
        if secret and not self.app_secret:
            raise ConfigurationError("WECHAT_OAUTH['APP_SECRET'] is not set")

    def _call(
        self,
        path: str,
        params: Sequence[tuple[str, str]],
        required: Sequence[str] = (),
        *,
        json_body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """GET ``path`` (POST ``json_body`` if given) and return its JSON object, or raise the
        matching typed error.

        Errors are raised outside the ``except`` blocks so that they carry no ``__context__``:
        the ``requests`` exception's text holds the full URL, secret and code included.
        """
        started = time.monotonic()
        error: WeChatOAuthError | None = None
        response: requests.Response | None = None
        try:
            if json_body is None:
                response = self.session.get(
                    self.api_base_url + path, params=params, timeout=self.timeout, allow_redirects=False
                )
            else:
                response = self.session.post(
                    self.api_base_url + path,
                    params=params,
                    json=json_body,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
        except requests.RequestException as exc:
            error = _transport_error(exc, path, self.timeout, single_attempt=self._single_attempt(path))
            logger.debug(
                "%s %s failed after %d ms: %s",
                _method(json_body),
                path,
                _ms_since(started),
                type(exc).__name__,
            )
        if error is not None:
            raise error from None
        assert response is not None
        logger.debug(
            "%s %s -> HTTP %s in %d ms", _method(json_body), path, response.status_code, _ms_since(started)
        )
        return parse_payload(path, response.status_code, response.content, required)

    def _single_attempt(self, path: str) -> bool:
        """Whether urllib3 makes one attempt only (requests' default ``Retry(0)``).

        A session given to us may retry; then a failure to connect on a later attempt proves
        nothing about an earlier one, which may have reached WeChat.
        """
        try:
            adapter = self.session.get_adapter(self.api_base_url + path)
        except requests.RequestException:  # no adapter for the URL: assume the worst
            return False
        # HTTPAdapter's (requests mounts one for every URL); a bare BaseAdapter has none, and
        # then nothing says how often it tries: assume the worst.
        total = getattr(getattr(adapter, "max_retries", None), "total", None)
        return type(total) is int and total == 0


def parse_payload(path: str, status: int, content: bytes, required: Sequence[str] = ()) -> dict[str, Any]:
    """WeChat's answer to ``path`` (HTTP ``status``, body ``content``) as its JSON object, or
    the matching typed error. Shared by the sync client and the async one
    (:mod:`wechat_oauth.async_client`): whatever the transport, the same answer means the same."""
    if not 200 <= status < 300:
        raise UpstreamUnavailable(f"WeChat answered HTTP {status} to {path}") from None
    payload = _json_object(content)
    if payload is None:
        raise UpstreamUnavailable(f"WeChat answered {path} with a body that is not a JSON object") from None
    errcode = payload.get("errcode")
    if errcode is not None and errcode != 0 and errcode != "0":
        number = as_int(errcode, 0)
        errmsg = as_text(payload.get("errmsg"))
        if number == 0:
            raise UpstreamUnavailable(f"WeChat gave an unexpected answer to {path}: bad errcode") from None
        # DEBUG only: whoever catches the typed error reports it (the guard does, once).
        logger.debug("WeChat answered %s with errcode %s: %s", path, number, redact.redact(errmsg))
        raise error_for_errcode(number, errmsg) from None
    missing = [name for name in required if payload.get(name) in (None, "")]
    if missing:
        raise UpstreamUnavailable(
            f"WeChat gave an unexpected answer to {path}: no {', '.join(missing)}"
        ) from None
    return payload


def _method(json_body: object) -> str:
    return "GET" if json_body is None else "POST"


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _check_state(state: str) -> None:
    if len(state.encode("utf-8")) > MAX_STATE_BYTES:
        size = len(state.encode("utf-8"))
        raise ValueError(f"state is {size} bytes; WeChat accepts at most {MAX_STATE_BYTES}")
    if not _STATE_RE.fullmatch(state):
        raise ValueError(
            "state may contain only the letters A-Z, a-z and digits 0-9 "
            "(WeChat refuses anything else); encode it to fit"
        )


def _check_redirect_uri(redirect_uri: str) -> None:
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("redirect_uri must be an absolute http(s) URL")


def _json_object(body: bytes) -> dict[str, Any] | None:
    """``body`` as a JSON object, or None. WeChat often labels JSON text/plain: decode here."""
    try:
        value = json.loads(body.decode("utf-8-sig"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        return None
    return value if isinstance(value, dict) else None


def _transport_error(
    exc: requests.RequestException, path: str, timeout: tuple[float, float], *, single_attempt: bool = True
) -> UpstreamUnavailable:
    """The typed error for a failure of ``requests``; built from our own words only."""
    if isinstance(exc, requests.ConnectTimeout):
        return UpstreamTimeout(
            f"Could not connect to WeChat for {path} within {timeout[0]:g} s", request_sent=not single_attempt
        )
    if isinstance(exc, requests.Timeout):
        return UpstreamTimeout(f"WeChat did not answer {path} within {timeout[1]:g} s", request_sent=True)
    if isinstance(exc, requests.ConnectionError) and _never_connected(exc):
        return UpstreamUnavailable(f"Could not connect to WeChat for {path}", request_sent=not single_attempt)
    return UpstreamUnavailable(
        f"The connection to WeChat failed during {path} ({type(exc).__name__})", request_sent=True
    )


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Whether the connection could not even be established (refused, DNS failure).

    requests wraps urllib3's ``MaxRetryError`` whose ``reason`` is the real cause; anything
    else (reset, remote closed, TLS failure) may have happened after the request was sent.
    """
    reason: Any = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    if isinstance(reason, Urllib3ProxyError):  # could not reach the proxy itself
        reason = getattr(reason, "original_error", None)
    return isinstance(reason, _NOT_CONNECTED)


# -- Shared client ---------------------------------------------------------------------------

_clients: dict[str, WeChatClient] = {}
_client_lock = threading.Lock()


def get_client(app: WeChatApp | str | None = None) -> WeChatClient:
    """The client of ``app`` (a configured app or its name; default: DEFAULT_APP), one per app
    and process, on the adapter's ``requests.Session``; rebuilt when settings change."""
    from .adapter import get_adapter
    from .registry import get_app

    if not isinstance(app, WeChatApp):
        app = get_app(app)
    client = _clients.get(app.name)
    if client is not None:
        return client
    with _client_lock:
        if app.name not in _clients:
            cls: type[WeChatClient] = WeChatClient
            if app.is_wecom:
                from .wecom import WeComClient

                cls = WeComClient
            _clients[app.name] = cls.for_app(app, session=get_adapter().http_session(app))
        return _clients[app.name]


def reset_client() -> None:
    """Forget the shared clients; the next :func:`get_client` builds new ones."""
    with _client_lock:
        _clients.clear()


@receiver(setting_changed)
def _reset_client_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTINGS_NAME:
        reset_client()
