"""WeCom (企业微信) login: the client of a ``KIND: "wecom"`` app.

Two ways in, one callback:

* inside WeCom's own browser (its User-Agent has ``wxwork``): the in-app authorisation,
  ``open.weixin.qq.com/connect/oauth2/authorize?appid=CORPID&...&agentid=AGENTID#wechat_redirect``;
* any other browser: the SSO QR login, ``login.work.weixin.qq.com/wwlogin/sso/login?
  login_type=CorpApp&appid=CORPID&agentid=AGENTID&redirect_uri&state`` (scanned with WeCom).

Either sends the browser back with a ``code`` that is single use (a reused one gets 40029) and
expires in 5 minutes; ``cgi-bin/auth/getuserinfo?access_token=APP_TOKEN&code=`` spends it. The
app token comes from :mod:`.wecom_token` (single-flight). WeCom checks the token before it
reads the code, so a token it refuses as stale (40014, 42001) leaves the code untouched: the
holder of the code's claim drops that token (compare-and-delete), takes a new one and asks
once more, still holding the claim. A second refusal raises
:class:`~wechat_oauth.exceptions.AppTokenRejected`, which releases the claim (nothing is
stored for the code). Under ``snsapi_privateinfo`` a member's ``user_ticket``
fetches their details (``auth/getuserdetail``) as part of the same guarded exchange, so every
duplicate gets them too; the ticket itself is neither stored nor returned.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import requests

from .client import WeChatClient, _check_redirect_uri, _check_state
from .conf import TimeoutValue, app_settings
from .exceptions import (
    AccessTokenInvalid,
    AppTokenRejected,
    ConfigurationError,
    UpstreamUnavailable,
    WeChatOAuthError,
)
from .registry import WeChatApp
from .results import TokenResult, as_int, as_text, utc_now, wecom_result
from .wecom_token import AppTokens

__all__ = ["WeComClient", "in_wecom"]

logger = logging.getLogger("wechat_oauth.wecom")

GETTOKEN_PATH = "/cgi-bin/gettoken"
GETUSERINFO_PATH = "/cgi-bin/auth/getuserinfo"
GETUSERDETAIL_PATH = "/cgi-bin/auth/getuserdetail"
WECOM_SCOPES = ("snsapi_base", "snsapi_privateinfo")
#: The User-Agent substring of WeCom's in-app browser.
WECOM_USER_AGENT = "wxwork"


def in_wecom(user_agent: str) -> bool:
    """Whether a request comes from WeCom's own browser (it gets the in-app authorisation;
    every other browser the SSO QR login)."""
    return WECOM_USER_AGENT in user_agent.lower()


class WeComClient(WeChatClient):
    """Talks to WeCom's API for one app (corp id + agent id + the agent's secret)."""

    def __init__(
        self,
        corp_id: str,
        secret: str,
        agent_id: str,
        *,
        api_base_url: str | None = None,
        authorize_url: str | None = None,
        sso_url: str | None = None,
        timeout: TimeoutValue | None = None,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(
            corp_id,
            secret,
            api_base_url=(app_settings.WECOM_API_BASE_URL if api_base_url is None else api_base_url),
            authorize_url=authorize_url,
            timeout=timeout,
            session=session,
        )
        self.agent_id = str(agent_id).strip()
        self.sso_base_url: str = app_settings.WECOM_SSO_URL if sso_url is None else sso_url
        #: The app's access token, shared by every process (see :mod:`.wecom_token`).
        self.tokens = AppTokens(f"{self.app_id}:{self.agent_id}", self.gettoken, bound=sum(self.timeout))

    @classmethod
    def for_app(cls, app: WeChatApp, *, session: requests.Session | None = None) -> WeComClient:
        client = cls(
            app.app_id,
            app.app_secret,
            app.agent_id,
            api_base_url=app.setting("WECOM_API_BASE_URL"),
            authorize_url=app.setting("AUTHORIZE_URL"),
            sso_url=app.setting("WECOM_SSO_URL"),
            timeout=app.setting("TIMEOUT"),
            session=session,
        )
        client.app = app
        return client

    # -- Browser redirects -------------------------------------------------------------------

    def login_url(self, redirect_uri: str, state: str, *, user_agent: str) -> str:
        """Where a login starts: the in-app authorisation inside WeCom, else the SSO QR page."""
        if in_wecom(user_agent):
            return self.authorize_url(redirect_uri, state)
        return self.sso_url(redirect_uri, state)

    def authorize_url(
        self, redirect_uri: str, state: str = "", scope: str | None = None, **ignored: Any
    ) -> str:
        """WeCom's in-app authorisation (open only inside WeCom's browser)."""
        scope = scope or (self.app.scope if self.app is not None else "snsapi_base")
        if scope not in WECOM_SCOPES:
            raise ValueError(f"scope must be one of {', '.join(WECOM_SCOPES)}, not {scope!r}")
        self._require_agent()
        _check_redirect_uri(redirect_uri)
        _check_state(state)
        return (
            f"{self.authorize_base_url}?appid={quote(self.app_id, safe='')}"
            f"&redirect_uri={quote(redirect_uri, safe='')}&response_type=code"
            f"&scope={scope}&state={state}&agentid={quote(self.agent_id, safe='')}"
            "#wechat_redirect"
        )

    def sso_url(self, redirect_uri: str, state: str = "") -> str:
        """WeCom's web SSO login: a QR code the user scans with WeCom (desktop browsers)."""
        self._require_agent()
        _check_redirect_uri(redirect_uri)
        _check_state(state)
        return (
            f"{self.sso_base_url}?login_type=CorpApp&appid={quote(self.app_id, safe='')}"
            f"&agentid={quote(self.agent_id, safe='')}"
            f"&redirect_uri={quote(redirect_uri, safe='')}&state={state}"
        )

    # -- API calls ---------------------------------------------------------------------------

    def gettoken(self) -> tuple[str, int]:
        """A new app access token and its lifetime (``cgi-bin/gettoken``). Rate limited by
        WeCom: call :meth:`access_token` instead, which shares one token between processes."""
        self._require_app_id(secret=True)
        payload = self._call(
            GETTOKEN_PATH,
            [("corpid", self.app_id), ("corpsecret", self.app_secret)],
            required=("access_token",),
        )
        return as_text(payload["access_token"]), as_int(payload.get("expires_in"), 7200)

    def access_token(self) -> str:
        """The app's access token (single-flight across processes, see :mod:`.wecom_token`)."""
        return self.tokens.get()

    def exchange_code(
        self, code: str, *, access_token: str | None = None, retry_stale: bool = False
    ) -> TokenResult:
        """Spend ``code`` (``auth/getuserinfo``) and, under ``snsapi_privateinfo``, fetch the
        member's details with its ``user_ticket``.

        A token WeCom refuses (40014, 42001) raises :class:`AppTokenRejected`: WeCom checks
        the token before it reads the code, so the code is untouched. With ``retry_stale``
        the stale token is first dropped (compare-and-delete), a new one taken (single-flight)
        and the code asked for once more.
        """
        token = access_token or self.access_token()
        try:
            info = self._getuserinfo(token, code)
        except AppTokenRejected:
            if not retry_stale:
                raise
            logger.info("WeCom refused the app token of %s as stale: a new one, and again", self.app_id)
            self.tokens.drop(token)
            token = self.access_token()
            info = self._getuserinfo(token, code)
        now = utc_now()
        if not info.get("userid") and not info.get("openid"):
            raise _unexpected("no userid or openid")
        scope = self.app.scope if self.app is not None else "snsapi_base"
        detail = None
        ticket = as_text(info.get("user_ticket"))
        if ticket and scope == "snsapi_privateinfo":
            detail = self._details(token, ticket, userid=as_text(info.get("userid")))
        return wecom_result(info, detail, scope=scope, now=now)

    def _getuserinfo(self, token: str, code: str) -> dict[str, Any]:
        try:
            return self._call(GETUSERINFO_PATH, [("access_token", token), ("code", code)])
        except AccessTokenInvalid as refused:
            raise AppTokenRejected(
                errcode=refused.errcode, errmsg=refused.errmsg, request_id=refused.request_id
            ) from None

    def getuserdetail(self, user_ticket: str, *, access_token: str | None = None) -> dict[str, Any]:
        """A member's private details (gender, avatar, mobile, email...) for a user_ticket."""
        token = access_token or self.access_token()
        return self._call(
            GETUSERDETAIL_PATH, [("access_token", token)], json_body={"user_ticket": user_ticket}
        )

    def _details(self, token: str, ticket: str, *, userid: str) -> dict[str, Any] | None:
        """The details, or None: the code is spent already, so a failure here must not fail
        the login (it goes on with the userid alone)."""
        try:
            return self.getuserdetail(ticket, access_token=token)
        except WeChatOAuthError as error:
            logger.warning(
                "getuserdetail of WeCom member %s failed, going on without the details: %s", userid, error
            )
            return None

    def _require_agent(self) -> None:
        self._require_app_id()
        if not self.agent_id:
            raise ConfigurationError("The WeCom app has no AGENT_ID")

    def _require_app_id(self, *, secret: bool = False) -> None:
        if not self.app_id:
            raise ConfigurationError("The WeCom app has no CORP_ID")
        if secret and not self.app_secret:
            raise ConfigurationError("The WeCom app has no SECRET")


def _unexpected(what: str) -> WeChatOAuthError:
    return UpstreamUnavailable(f"WeCom gave an unexpected answer to getuserinfo: {what}")
