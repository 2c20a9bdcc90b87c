"""What every fake WeChat handle offers, in-process or remote."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from wechat_oauth.testing.state import CodeIssuer

if TYPE_CHECKING:
    from typing import Self

#: WeChat's browser pages (the fake serves them at these paths too, under its root).
AUTHORIZE_PATH = "/connect/oauth2/authorize"
QRCONNECT_PATH = "/connect/qrconnect"
#: WeCom's SSO (QR) login page; its in-app authorize page is AUTHORIZE_PATH with an agentid.
WWLOGIN_PATH = "/wwlogin/sso/login"


@dataclass(frozen=True, kw_only=True)
class ServeOptions:
    """Constructor options shared by :class:`FakeWeChat` and :class:`FakeWeChatProcess`."""

    host: str = "127.0.0.1"
    port: int = 0
    latency: float = 0.0
    code_ttl: float = 300.0
    auto_approve: bool = True


class FakeWeChatBase(CodeIssuer):
    """The Python API shared by :class:`FakeWeChat` and the remote handles.

    Subclasses provide ``app_id``, ``app_secret``, ``base_url`` and the primitives; URLs,
    ``settings()`` and the context manager are derived here. ``settings()`` is the default
    app's; the others are added with :meth:`add_app`.
    """

    @property
    @abstractmethod
    def app_id(self) -> str:
        """The default app's appid."""

    @property
    @abstractmethod
    def app_secret(self) -> str:
        """The default app's secret."""

    @abstractmethod
    def add_app(self, app_id: str, app_secret: str | None = None, *, unionid: bool = True) -> str:
        """Make the fake know one more app (random secret if none is given); its secret.

        ``unionid=False``: an app not bound to the Open Platform account (no unionid in its
        answers). A known app again changes nothing; with another secret or binding the fake
        refuses it (``ValueError`` in this process, or an error answer).
        """

    @abstractmethod
    def app_secret_of(self, app_id: str) -> str:
        """The secret of a known app (``ValueError`` if the fake does not know it)."""

    @abstractmethod
    def session_key_of(self, app_id: str, openid: str) -> str | None:
        """The current session_key of ``openid`` in Mini Program ``app_id`` (each successful
        ``jscode2session`` rotates it), None if it has none yet; ``ValueError`` if the app is
        unknown."""

    @abstractmethod
    def add_corp(self, corp_id: str, agent_id: int | str, secret: str | None = None) -> str:
        """Make the fake know agent ``agent_id`` of WeCom corp ``corp_id`` (random secret if none
        is given); its secret. Once per agent; a known agent with another secret is refused."""

    @abstractmethod
    def wecom_secret_of(self, corp_id: str, agent_id: int | str) -> str:
        """The secret of a known WeCom agent (``ValueError`` if the fake does not know it)."""

    @abstractmethod
    def invalidate_wecom_token(self, corp_id: str, agent_id: int | str) -> None:
        """Expire the agent's current access token now (42001 for it; gettoken a new one)."""

    def gettoken_calls(self, corp_id: str, agent_id: int | str) -> int:
        """How many ``cgi-bin/gettoken`` requests carried this agent's secret."""
        per_agent = self.stats()["wecom_calls"].get(corp_id, {}).get(str(agent_id).strip())
        if per_agent is None:
            raise ValueError(f"unknown agent {agent_id} of corp {corp_id!r}")
        return int(per_agent["gettoken"])

    @property
    @abstractmethod
    def base_url(self) -> str:
        """Root URL of the fake, without a trailing slash."""

    @property
    def api_base_url(self) -> str:
        """The ``API_BASE_URL`` setting pointing at the fake (its ``/sns/...`` API)."""
        return self.base_url

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}{AUTHORIZE_PATH}"

    @property
    def qrconnect_url(self) -> str:
        return f"{self.base_url}{QRCONNECT_PATH}"

    @property
    def wecom_api_base_url(self) -> str:
        """Where WeCom's API is (``https://qyapi.weixin.qq.com`` for real): ``/cgi-bin/...``."""
        return self.base_url

    @property
    def wecom_sso_url(self) -> str:
        """WeCom's SSO (QR) login page (``https://login.work.weixin.qq.com/wwlogin/sso/login``)."""
        return f"{self.base_url}{WWLOGIN_PATH}"

    @property
    def wxlogin_js_url(self) -> str:
        """The fake's wxLogin.js, which draws its QR panel inside a site's page."""
        from wechat_oauth.testing.wxlogin import WXLOGIN_JS_PATH

        return f"{self.base_url}{WXLOGIN_JS_PATH}"

    def settings(self) -> dict[str, Any]:
        """A ``WECHAT_OAUTH`` dict (to merge over the site's) that points the app at this fake."""
        return {
            "APP_ID": self.app_id,
            "APP_SECRET": self.app_secret,
            "API_BASE_URL": self.api_base_url,
            "AUTHORIZE_URL": self.authorize_url,
            "WXLOGIN_JS_URL": self.wxlogin_js_url,
            "QRCONNECT_URL": self.qrconnect_url,
            "WECOM_API_BASE_URL": self.wecom_api_base_url,
            "WECOM_SSO_URL": self.wecom_sso_url,
        }

    @abstractmethod
    def stats(self, code: str | None = None) -> dict[str, Any]:
        """``{"calls": {endpoint: n}, "exchange_calls": {code: n},
        "app_calls": {app_id: {endpoint: n}},
        "wecom_calls": {corp_id: {agent_id: {endpoint: n}}}}`` (see
        :meth:`~.state.FakeState.stats`)."""

    def exchange_calls(self, code: str) -> int:
        """How many requests carried ``code`` (whatever their answer): access_token requests
        for a code of :meth:`issue_code`, jscode2session ones for :meth:`issue_js_code`'s,
        WeCom getuserinfo ones for :meth:`issue_wecom_code`'s."""
        return int(self.stats(code)["exchange_calls"].get(code, 0))

    def total_exchange_calls(self) -> int:
        return self.calls("access_token")

    def calls(self, endpoint: str, app_id: str | None = None) -> int:
        """Requests received by one endpoint, or only those naming app ``app_id``.

        One of authorize, qrconnect, wwlogin, access_token, refresh_token, userinfo, auth,
        jscode2session, gettoken, getuserinfo, getuserdetail (per app: authorize, qrconnect,
        access_token, refresh_token, jscode2session; WeCom's per agent: :meth:`stats`).
        """
        stats = self.stats()
        calls = stats["calls"]
        if endpoint not in calls:
            raise ValueError(f"endpoint must be one of {', '.join(calls)}")
        if app_id is None:
            return int(calls[endpoint])
        per_app = stats["app_calls"].get(app_id)
        if per_app is None:
            raise ValueError(f"unknown app {app_id!r}")
        if endpoint not in per_app:
            raise ValueError(f"{endpoint} requests carry no appid")
        return int(per_app[endpoint])

    def add_fault(
        self,
        endpoint: str = "access_token",
        *,
        errcode: int | None = None,
        errmsg: str | None = None,
        status: int | None = None,
        body: str | None = None,
        delay: float | None = None,
        times: int | None = 1,
        code: str | None = None,
        consume: bool = True,
    ) -> None:
        """Make the next ``times`` matching requests misbehave (see :class:`~.state.Fault`)."""
        self._add_fault(
            {
                "endpoint": endpoint,
                "errcode": errcode,
                "errmsg": errmsg,
                "status": status,
                "body": body,
                "delay": delay,
                "times": times,
                "code": code,
                "consume": consume,
            }
        )

    @abstractmethod
    def _add_fault(self, fields: dict[str, Any]) -> None:
        """Add the fault with these :class:`~.state.Fault` fields, checked by the fake itself.

        The fake refuses bad ones: ``ValueError`` in this process, or an error answer.
        """

    @abstractmethod
    def set_latency(self, seconds: float) -> None:
        """Delay every API answer by ``seconds`` from now on."""

    @abstractmethod
    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (expire codes and tokens without waiting)."""

    @abstractmethod
    def reset(self) -> None:
        """Forget codes, tokens, faults and counters; latency back to its start value."""

    @abstractmethod
    def start(self) -> None:
        """Make the fake reachable at ``base_url``."""

    @abstractmethod
    def stop(self) -> None:
        """Release the fake's server or process."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
