"""The code exchange over httpx, for the async views (extra ``[async]``).

:class:`AsyncWeChatClient` wraps an app's :class:`~wechat_oauth.client.WeChatClient` and sends
the very same requests (the sync client's ``*_params`` methods) through an
``httpx.AsyncClient``, and reads the answers with the same
:func:`~wechat_oauth.client.parse_payload`: the same answer means the same typed error on
either transport. It covers the calls a login makes (code exchange, jscode2session,
userinfo); everything else (refresh, check, WeCom) stays on the sync client.

As in the sync client, errors are built from our own words and raised outside the ``except``
blocks: an httpx exception's text carries the URL, and with it the secret and the code.

An ``httpx.AsyncClient`` belongs to the event loop it first ran on, so each loop gets its own
(kept as long as the loop lives).
"""

from __future__ import annotations

import importlib.util
import logging
import time
import weakref
from asyncio import AbstractEventLoop, get_running_loop
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import __version__, redact
from .client import (
    ACCESS_TOKEN_PATH,
    JSCODE2SESSION_PATH,
    SESSION_FIELDS,
    TOKEN_FIELDS,
    USERINFO_PATH,
    WeChatClient,
    parse_payload,
)
from .exceptions import ConfigurationError, UpstreamTimeout, UpstreamUnavailable, WeChatOAuthError
from .results import TokenResult, UserInfo, session_result, utc_now

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger("wechat_oauth.client")

__all__ = ["AsyncWeChatClient", "async_client_for", "transport_error"]

#: Seconds an idle connection to WeChat is kept for reuse. Under the 5 s after which uvicorn
#: (and many other servers) close an idle keep-alive connection: httpx's own default is the
#: same 5 s, so a request could go out on a connection the server was closing, and the code
#: would be lost with the answer (such a failure may have reached WeChat: no retry).
KEEPALIVE_EXPIRY = 4.0


def httpx_installed() -> bool:
    """Whether the ``[async]`` extra (httpx) is importable: without it the automatic choice
    of ASYNC_VIEWS stays on the sync views."""
    return importlib.util.find_spec("httpx") is not None


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ConfigurationError(
            "The async views need httpx: pip install 'django-wechat-oauth[async]'"
        ) from None
    return httpx


class AsyncWeChatClient:
    """The login calls of ``sync`` (its app, base URL, timeout and credentials) over httpx."""

    def __init__(self, sync: WeChatClient, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.sync = sync
        self.transport = transport
        self._clients: weakref.WeakKeyDictionary[AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        redact.install_url_log_redaction()  # httpx logs every request URL at INFO

    @property
    def app_id(self) -> str:
        return self.sync.app_id

    @property
    def app(self) -> Any:
        return self.sync.app

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.sync!r}>"

    async def exchange_code(self, code: str) -> TokenResult:
        now = utc_now()
        payload = await self._get(ACCESS_TOKEN_PATH, self.sync.exchange_params(code), TOKEN_FIELDS)
        return TokenResult.from_payload(payload, now=now)

    async def jscode2session(self, js_code: str) -> TokenResult:
        now = utc_now()
        payload = await self._get(
            JSCODE2SESSION_PATH, self.sync.jscode2session_params(js_code), SESSION_FIELDS
        )
        return session_result(payload, now=now)

    async def userinfo(self, access_token: str, openid: str, lang: str | None = None) -> UserInfo:
        payload = await self._get(
            USERINFO_PATH, self.sync.userinfo_params(access_token, openid, lang), ("openid",)
        )
        return UserInfo.from_payload(payload)

    async def exchange_with_profile(self, code: str) -> TokenResult:
        """The exchange, and the profile where the scope allows it: one guarded outcome (see
        :func:`wechat_oauth.guard.exchange_once`). A failing userinfo does not fail the login."""
        token = await self.exchange_code(code)
        if not token.profile_allowed:
            return token
        try:
            profile = await self.userinfo(token.access_token, token.openid)
        except WeChatOAuthError as error:
            logger.warning(
                "userinfo of openid %s failed, going on without a profile: %s", token.openid, error
            )
            return token
        return replace(token, profile=profile)

    async def aclose(self) -> None:
        """Close the httpx client of the running loop (the others close with their loops)."""
        client = self._clients.pop(get_running_loop(), None)
        if client is not None:
            await client.aclose()

    # -- Internals ---------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        loop = get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            httpx = _httpx()
            connect, read = self.sync.timeout
            client = httpx.AsyncClient(
                base_url=self.sync.api_base_url,
                transport=self.transport,
                follow_redirects=False,
                timeout=httpx.Timeout(read, connect=connect),
                # httpx's default pool sizes, with an expiry of our own.
                limits=httpx.Limits(
                    max_connections=100, max_keepalive_connections=20, keepalive_expiry=KEEPALIVE_EXPIRY
                ),
                headers={"User-Agent": f"django-wechat-oauth/{__version__}"},
            )
            self._clients[loop] = client
        return client

    async def _get(
        self, path: str, params: list[tuple[str, str]], required: tuple[str, ...]
    ) -> dict[str, Any]:
        httpx = _httpx()
        started = time.monotonic()
        error: WeChatOAuthError | None = None
        response = None
        try:
            # A list of str pairs is httpx's list[tuple[str, PrimitiveData]] (lists are invariant).
            response = await self._client().get(path, params=params)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            error = transport_error(exc, path, self.sync.timeout)
            logger.debug("GET %s failed after %d ms: %s", path, _ms_since(started), type(exc).__name__)
        if error is not None:
            raise error from None
        assert response is not None
        logger.debug("GET %s -> HTTP %s in %d ms", path, response.status_code, _ms_since(started))
        return parse_payload(path, response.status_code, response.content, required)


def transport_error(exc: Exception, path: str, timeout: tuple[float, float]) -> UpstreamUnavailable:
    """The typed error of an httpx failure, built from our own words only.

    httpx makes one attempt (no retries unless a transport is configured with them), so a
    failure to connect proves WeChat never saw the code: ``request_sent`` is False and the
    guard releases the claim for a retry. Anything after the connection may have reached it.
    """
    httpx = _httpx()
    if isinstance(exc, httpx.ConnectTimeout):
        return UpstreamTimeout(
            f"Could not connect to WeChat for {path} within {timeout[0]:g} s", request_sent=False
        )
    if isinstance(exc, httpx.PoolTimeout):
        return UpstreamTimeout(f"No connection to WeChat was free for {path}", request_sent=False)
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"WeChat did not answer {path} within {timeout[1]:g} s", request_sent=True)
    if isinstance(exc, httpx.ConnectError):
        return UpstreamUnavailable(f"Could not connect to WeChat for {path}", request_sent=False)
    return UpstreamUnavailable(
        f"The connection to WeChat failed during {path} ({type(exc).__name__})", request_sent=True
    )


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


_async_clients: weakref.WeakKeyDictionary[WeChatClient, AsyncWeChatClient] = weakref.WeakKeyDictionary()


def async_client_for(client: WeChatClient) -> AsyncWeChatClient:
    """The async twin of an app's shared sync client (rebuilt with it when settings change)."""
    twin = _async_clients.get(client)
    if twin is None:
        twin = _async_clients[client] = AsyncWeChatClient(client)
    return twin
