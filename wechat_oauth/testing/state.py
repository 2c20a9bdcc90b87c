"""The fake's data and rules: apps, codes, tokens, faults and counters. Thread-safe, no HTTP.

Every public method of :class:`FakeState` takes one lock (the apps have their own, in
:class:`~.apps.AppRegistry`), so the HTTP layer may call it from any number of request threads.
WeChat's answers are modelled as return values (success bodies) and :class:`WeChatError`
(``errcode`` + ``errmsg``); the HTTP layer adds the ``rid`` and the latency.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from wechat_oauth.testing.apps import AppRegistry, FakeApp, openid_for, unionid_for
from wechat_oauth.testing.wecom import FakeAgent, WeComState

DEFAULT_APP_ID = "wxfake000000000001"
#: The user a code is issued for when neither openid nor person is given (28 characters,
#: like a real openid).
DEFAULT_OPENID = "oFakeUser000000000000default"

#: Default lifetimes of the tokens, in seconds (WeChat's: two hours, thirty days).
ACCESS_TOKEN_TTL = 7200
REFRESH_TOKEN_TTL = 30 * 86400

#: The browser pages counted in :meth:`FakeState.stats` (``wwlogin``: WeCom's SSO login).
PAGE_ENDPOINTS = ("authorize", "qrconnect", "wwlogin")
#: WeCom's API (``/cgi-bin/...``), answered in WeCom's format.
WECOM_ENDPOINTS = ("gettoken", "getuserinfo", "getuserdetail")
#: The API (``/sns/...``, ``jscode2session`` the Mini Program's; WeCom's): faults may target it.
API_ENDPOINTS = ("access_token", "refresh_token", "userinfo", "auth", "jscode2session", *WECOM_ENDPOINTS)
#: Endpoints counted in :meth:`FakeState.stats`.
ENDPOINTS = PAGE_ENDPOINTS + API_ENDPOINTS
#: Endpoints whose requests name an app (``appid``): counted per app too.
APP_ENDPOINTS = ("authorize", "qrconnect", "access_token", "refresh_token", "jscode2session")
#: The API endpoints that spend a code, and the query parameter carrying it: counted per code
#: (``exchange_calls``), and a fault may target one code.
CODE_PARAMS = {"access_token": "code", "jscode2session": "js_code", "getuserinfo": "code"}

AUTHORIZE_SCOPES = frozenset({"snsapi_base", "snsapi_userinfo", "snsapi_privateinfo"})
QRCONNECT_SCOPES = frozenset({"snsapi_login"})
SCOPES = AUTHORIZE_SCOPES | QRCONNECT_SCOPES

#: errmsg WeChat sends with each errcode (before its ", rid: ..." suffix).
ERRMSG: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40014: "invalid access_token",
    40029: "invalid code",
    40030: "invalid refresh_token",
    40125: "invalid appsecret",
    40163: "code been used",
    40226: "invalid user, high risk user",
    41001: "access_token missing",
    41002: "appid missing",
    41003: "refresh_token missing",
    41004: "appsecret missing",
    41008: "missing code",
    41009: "missing openid",
    42001: "access_token expired",
    42002: "refresh_token expired",
    42003: "code expired",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    48001: "api unauthorized",
}


class WeChatError(Exception):
    """An answer of WeChat's API with a non-zero ``errcode``."""

    def __init__(self, errcode: int, errmsg: str | None = None) -> None:
        self.errcode = errcode
        self.errmsg = errmsg if errmsg is not None else ERRMSG.get(errcode, "fake error")
        super().__init__(f"{errcode} {self.errmsg}")


@dataclass(frozen=True)
class FakeUser:
    """Who a code was issued for, in which app (an openid is the app's own)."""

    app_id: str
    openid: str
    unionid: str = ""
    nickname: str = ""
    snapshot: bool = False


@dataclass(frozen=True)
class CodeRequest:
    """The arguments of ``issue_code``, as given (the side that issues the code checks them)."""

    openid: str | None = None
    unionid: str = ""
    scope: str = "snsapi_base"
    snapshot: bool = False
    nickname: str | None = None
    app_id: str | None = None
    person: str | None = None


@dataclass(frozen=True)
class WeComCodeRequest:
    """The arguments of ``issue_wecom_code``, as given."""

    corp_id: str
    agent_id: int | str
    userid: str | None = None
    member: bool = True
    person: str | None = None
    scope: str = "snsapi_base"


@dataclass(frozen=True)
class JsCodeRequest:
    """The arguments of ``issue_js_code``, as given."""

    app_id: str | None = None
    person: str | None = None
    openid: str | None = None
    unionid: str = ""


class CodeIssuer(ABC):
    """Hands out codes: :class:`FakeState` and every fake WeChat handle."""

    def issue_code(
        self,
        openid: str | None = None,
        *,
        unionid: str = "",
        scope: str = "snsapi_base",
        snapshot: bool = False,
        nickname: str | None = None,
        app_id: str | None = None,
        person: str | None = None,
    ) -> str:
        """A fresh code for a user, as if WeChat had redirected the browser back with it.

        ``app_id``: the app the code is for (``None``: the default app; unknown: ``ValueError``).
        ``person`` instead of ``openid``/``unionid``: that person's openid in the app and
        unionid (see :func:`~.apps.openid_for`); neither: ``DEFAULT_OPENID``, no unionid.
        """
        return self._issue_code(CodeRequest(openid, unionid, scope, snapshot, nickname, app_id, person))

    @abstractmethod
    def _issue_code(self, request: CodeRequest) -> str:
        """Issue a code as ``request`` asks (``ValueError`` or the like if it cannot)."""

    def issue_js_code(
        self,
        app_id: str | None = None,
        *,
        person: str | None = None,
        openid: str | None = None,
        unionid: str = "",
    ) -> str:
        """A fresh Mini Program login code (what ``wx.login()`` gives the Mini Program), for
        ``sns/jscode2session`` of app ``app_id`` (``None``: the default app).

        Its own kind of code: ``sns/oauth2/access_token`` does not know it (40029), nor does
        ``jscode2session`` know the codes of :meth:`issue_code`. Valid ``code_ttl`` seconds
        (five minutes), once. ``person``/``openid``/``unionid`` as for :meth:`issue_code`.
        """
        return self._issue_js_code(JsCodeRequest(app_id, person, openid, unionid))

    @abstractmethod
    def _issue_js_code(self, request: JsCodeRequest) -> str:
        """Issue a js_code as ``request`` asks (``ValueError`` or the like if it cannot)."""

    def issue_wecom_code(
        self,
        corp_id: str,
        agent_id: int | str,
        userid: str | None = None,
        *,
        member: bool = True,
        person: str | None = None,
        scope: str = "snsapi_base",
    ) -> str:
        """A fresh WeCom code for agent ``agent_id`` of corp ``corp_id`` (see :meth:`add_corp`),
        as WeCom's authorize or SSO page would hand out, for ``cgi-bin/auth/getuserinfo``.

        A member ``userid`` (default :data:`~.wecom.DEFAULT_WECOM_USERID`), or with
        ``member=False`` a non-member ``person`` (default ``DEFAULT_PERSON``), answered by openid
        and external_userid. ``scope``: ``snsapi_base`` or ``snsapi_privateinfo`` (a member then
        also gets a user_ticket). Valid ``code_ttl`` seconds (five minutes), once.
        """
        return self._issue_wecom_code(WeComCodeRequest(corp_id, agent_id, userid, member, person, scope))

    @abstractmethod
    def _issue_wecom_code(self, request: WeComCodeRequest) -> str:
        """Issue a WeCom code as ``request`` asks (``ValueError`` or the like if it cannot)."""


@dataclass
class CodeGrant:
    """An authorization code: single use, short-lived."""

    user: FakeUser
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class AccessGrant:
    """An access token (also a refresh token's current access token)."""

    user: FakeUser
    scope: str
    expires_at: float


@dataclass
class RefreshGrant:
    """A refresh token and the access token it last produced."""

    user: FakeUser
    scope: str
    expires_at: float
    access_token: str


@dataclass
class Fault:
    """A scripted misbehaviour for the next ``times`` matching API requests.

    ``errcode``/``errmsg``, ``status`` and ``body`` replace the answer (an ``errmsg`` given is
    sent verbatim; without one, WeChat's message for the errcode and a rid); ``delay`` adds
    seconds before it. ``code`` restricts a fault of an endpoint spending codes
    (:data:`CODE_PARAMS`: ``access_token``, ``jscode2session``) to one code. ``consume`` (those
    endpoints only): with a replaced answer, the code is still spent (WeChat processed the
    request, the answer was lost); with only a delay, ``consume=False`` means the request is
    processed after the delay instead of on receipt. ``times=None``: until reset.
    """

    endpoint: str = "access_token"
    errcode: int | None = None
    errmsg: str | None = None
    status: int | None = None
    body: str | None = None
    delay: float | None = None
    times: int | None = 1
    code: str | None = None
    consume: bool = True

    def __post_init__(self) -> None:
        if self.endpoint not in API_ENDPOINTS:
            raise ValueError(f"endpoint must be one of {', '.join(API_ENDPOINTS)}, not {self.endpoint!r}")
        if self.errcode is None and self.status is None and self.body is None and self.delay is None:
            raise ValueError("a fault needs errcode, status, body or delay")
        if self.errmsg is not None and self.errcode is None:
            raise ValueError("errmsg needs an errcode")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or None: until reset)")
        if self.code is not None and self.endpoint not in CODE_PARAMS:
            raise ValueError(f"code only applies to faults of {', '.join(CODE_PARAMS)}")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status code")

    @property
    def replaces_answer(self) -> bool:
        return self.errcode is not None or self.status is not None or self.body is not None

    @property
    def extra_delay(self) -> float:
        return float(self.delay or 0.0)

    def matches(self, endpoint: str, code: str | None) -> bool:
        return endpoint == self.endpoint and (self.code is None or self.code == code)


def _refuse_first(*checks: tuple[bool, int]) -> None:
    """Raise WeChat's error for the first check that failed, given as ``(failed, errcode)``."""
    for failed, errcode in checks:
        if failed:
            raise WeChatError(errcode)


def _token() -> str:
    """An opaque token shaped like WeChat's (URL-safe, long)."""
    return secrets.token_urlsafe(64)


def _session_key() -> str:
    """A Mini Program session_key shaped like WeChat's: 16 random bytes, base64 (24 chars)."""
    return base64.b64encode(secrets.token_bytes(16)).decode("ascii")


class FakeState(CodeIssuer):
    """Apps, codes, tokens, faults, latency and call counters of one fake WeChat.

    ``app_id``/``app_secret`` are the default app's (bound to the Open Platform account);
    ``apps`` more apps, as :meth:`add_app` would add them; ``corps`` WeCom agents, as
    :meth:`add_corp` would add them. A code and its tokens belong to the app (the agent) they
    were issued for.
    """

    def __init__(
        self,
        app_id: str = DEFAULT_APP_ID,
        app_secret: str | None = None,
        *,
        apps: Iterable[FakeApp] = (),
        corps: Iterable[FakeAgent] = (),
        code_ttl: float = 300.0,
        login_code_ttl: float = 600.0,
        access_token_ttl: int = ACCESS_TOKEN_TTL,
        refresh_token_ttl: float = REFRESH_TOKEN_TTL,
        latency: float = 0.0,
        auto_approve: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._apps = AppRegistry(app_id, app_secret)
        for app in apps:
            self.add_app(app.app_id, app.app_secret, unionid=app.unionid)
        self.code_ttl = float(code_ttl)
        self.login_code_ttl = float(login_code_ttl)
        self.access_token_ttl = int(access_token_ttl)
        self.refresh_token_ttl = float(refresh_token_ttl)
        self.auto_approve = auto_approve
        self._initial_latency = float(latency)
        self._clock = clock
        self._lock = threading.Lock()
        self._wecom = WeComState(self._now)
        for agent in corps:
            self.add_corp(agent.corp_id, agent.agent_id, agent.secret)
        self._clear()

    def _clear(self) -> None:
        self._wecom.clear()
        self._latency = self._initial_latency
        self._offset = 0.0
        self._codes: dict[str, CodeGrant] = {}
        self._js_codes: dict[str, CodeGrant] = {}
        self._session_keys: dict[tuple[str, str], str] = {}
        self._access: dict[str, AccessGrant] = {}
        self._refresh: dict[str, RefreshGrant] = {}
        self._faults: list[Fault] = []
        self._calls: Counter[str] = Counter()
        self._exchange_calls: Counter[str] = Counter()
        self._app_calls: Counter[tuple[str, str]] = Counter()

    def issued_secrets(self) -> set[str]:
        """The apps' secrets and every code, token and session_key handed out since the last
        reset.

        None of these should ever appear in a site's logs or pages: tests grep for them.
        """
        app_secrets = {app.app_secret for app in self._apps.all()} | self._wecom.secrets()
        with self._lock:
            return {
                *app_secrets,
                *self._codes,
                *self._js_codes,
                *self._session_keys.values(),
                *self._access,
                *self._refresh,
            }

    def _now(self) -> float:
        return self._clock() + self._offset

    # Apps.

    @property
    def app_id(self) -> str:
        """The default app's appid."""
        return self._apps.default.app_id

    @property
    def app_secret(self) -> str:
        """The default app's secret."""
        return self._apps.default.app_secret

    def add_app(self, app_id: str, app_secret: str | None = None, *, unionid: bool = True) -> str:
        """Know one more app (random secret if none is given) and return its secret.

        ``unionid=False``: not bound to the Open Platform account, its answers carry no unionid.
        Adding a known app again changes nothing (another secret or binding: ``ValueError``).
        """
        return self._apps.add(app_id, app_secret, unionid=unionid).app_secret

    def app_secret_of(self, app_id: str) -> str:
        """The secret of a known app (``ValueError`` if unknown)."""
        return self._apps.get(app_id).app_secret

    def apps(self) -> list[FakeApp]:
        """Every app, the default one first."""
        return self._apps.all()

    def knows_app(self, app_id: str | None) -> bool:
        return self._apps.find(app_id) is not None

    # WeCom corps and agents.

    def add_corp(self, corp_id: str, agent_id: int | str, secret: str | None = None) -> str:
        """Know agent ``agent_id`` of WeCom corp ``corp_id`` (random secret if none is given)
        and return its secret; a known agent again changes nothing (another secret:
        ``ValueError``). Call once per agent of a corp."""
        return self._wecom.add_corp(corp_id, agent_id, secret)

    def wecom_secret_of(self, corp_id: str, agent_id: int | str) -> str:
        """The secret of a known agent (``ValueError`` if unknown)."""
        return self._wecom.agent(corp_id, agent_id).secret

    def wecom_agents(self) -> list[FakeAgent]:
        return self._wecom.agents()

    def find_wecom_agent(self, corp_id: str | None, agent_id: str | None) -> FakeAgent | None:
        return self._wecom.find_agent(corp_id, agent_id)

    def invalidate_wecom_token(self, corp_id: str, agent_id: int | str) -> None:
        """Expire the agent's current access token early: requests with it get 42001, and the
        next gettoken answers a new one."""
        self._wecom.invalidate_token(corp_id, agent_id)

    def _issue_wecom_code(self, request: WeComCodeRequest) -> str:
        return self._wecom.issue_code(
            request.corp_id,
            request.agent_id,
            request.userid,
            member=request.member,
            person=request.person,
            scope=request.scope,
            ttl=self.code_ttl,
        )

    def gettoken(self, corpid: str | None, corpsecret: str | None) -> dict[str, Any]:
        """``cgi-bin/gettoken`` (see :class:`~.wecom.WeComState`)."""
        return self._wecom.gettoken(corpid, corpsecret)

    def wecom_getuserinfo(self, access_token: str | None, code: str | None) -> dict[str, Any]:
        """``cgi-bin/auth/getuserinfo``."""
        return self._wecom.getuserinfo(access_token, code)

    def wecom_getuserdetail(self, access_token: str | None, user_ticket: Any) -> dict[str, Any]:
        """``cgi-bin/auth/getuserdetail``."""
        return self._wecom.getuserdetail(access_token, user_ticket)

    def wecom_agent_of(self, endpoint: str, query: dict[str, str]) -> FakeAgent | None:
        """The agent a WeCom API request is counted for: by secret (gettoken) or by token."""
        if endpoint == "gettoken":
            return self._wecom.agent_of_secret(query.get("corpid"), query.get("corpsecret"))
        return self._wecom.agent_of_token(query.get("access_token"))

    def record_wecom_call(self, agent: FakeAgent | None, endpoint: str) -> None:
        """Count a request for an agent in ``stats()["wecom_calls"]``."""
        self._wecom.record(agent, endpoint)

    # Configuration at runtime.

    @property
    def latency(self) -> float:
        """Seconds every API request waits before it is answered."""
        with self._lock:
            return self._latency

    def set_latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        with self._lock:
            self._latency = float(seconds)

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward, to expire codes and tokens without waiting."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += float(seconds)

    def reset(self) -> None:
        """Forget codes, tokens, faults and counters; latency and clock back to the start.

        The apps stay.
        """
        with self._lock:
            self._clear()

    # Faults and counters.

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take_fault(self, endpoint: str, code: str | None = None) -> Fault | None:
        """The first fault matching this request, counted down (removed when used up)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(endpoint, code):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def record_call(self, endpoint: str, code: str | None = None, *, app_id: str | None = None) -> None:
        """Count a request: per endpoint, per ``code`` sent (see :data:`CODE_PARAMS`), per known
        app it names."""
        app = self._apps.find(app_id) if endpoint in APP_ENDPOINTS else None
        with self._lock:
            self._calls[endpoint] += 1
            if code:
                self._exchange_calls[code] += 1
            if app is not None:
                self._app_calls[app.app_id, endpoint] += 1

    def stats(self, code: str | None = None) -> dict[str, Any]:
        """Counters as JSON-ready data (``exchange_calls`` limited to ``code`` if given).

        ``app_calls``: for each app, the requests of the :data:`APP_ENDPOINTS` naming it;
        ``wecom_calls``: ``{corp_id: {agent_id: {endpoint: n}}}``, the requests of the WeCom
        pages and API naming the agent (by agentid, secret or a token of it).
        """
        wecom_calls = self._wecom.stats()
        apps = self.apps()
        with self._lock:
            per_code = dict(self._exchange_calls) if code is None else {code: self._exchange_calls[code]}
            return {
                "calls": {endpoint: self._calls[endpoint] for endpoint in ENDPOINTS},
                "exchange_calls": per_code,
                "app_calls": {
                    app.app_id: {
                        endpoint: self._app_calls[app.app_id, endpoint] for endpoint in APP_ENDPOINTS
                    }
                    for app in apps
                },
                "wecom_calls": wecom_calls,
            }

    # Codes.

    def _issue_code(self, request: CodeRequest) -> str:
        if request.scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(sorted(SCOPES))}")
        user = self._user(request)
        ttl = self.login_code_ttl if request.scope in QRCONNECT_SCOPES else self.code_ttl
        code = secrets.token_hex(16)
        with self._lock:
            self._codes[code] = CodeGrant(user, request.scope, self._now() + ttl)
        return code

    def _user(self, request: CodeRequest) -> FakeUser:
        """The user ``request`` names, in its app."""
        app = self._apps.get(request.app_id)
        if request.person is not None:
            if request.openid or request.unionid:
                raise ValueError("a person has its own openid and unionid: give person alone")
            if not request.person:
                raise ValueError("person must not be empty")
            openid = openid_for(app.app_id, request.person)
            unionid = unionid_for(request.person) if app.unionid else ""
            nickname = request.nickname or request.person
        else:
            if request.unionid and not app.unionid:
                raise ValueError(f"app {app.app_id} is not bound to an Open Platform account: no unionid")
            openid = request.openid or DEFAULT_OPENID
            unionid = request.unionid or ""
            nickname = request.nickname or f"WeChat user {openid[-4:]}"
        return FakeUser(app.app_id, openid, unionid, nickname, bool(request.snapshot))

    def _issue_js_code(self, request: JsCodeRequest) -> str:
        user = self._user(
            CodeRequest(request.openid, request.unionid, app_id=request.app_id, person=request.person)
        )
        code = secrets.token_hex(16)
        with self._lock:
            self._js_codes[code] = CodeGrant(user, "", self._now() + self.code_ttl)
        return code

    def consume_request(self, endpoint: str, query: dict[str, str]) -> None:
        """Spend the code of an API request WeChat processed but whose answer was lost."""
        code = query.get(CODE_PARAMS[endpoint], "")
        if endpoint == "getuserinfo":
            self._wecom.consume_code(query.get("access_token"), code)
        elif code:
            self.consume_code(code, query.get("appid"), endpoint)

    def consume_code(self, code: str, appid: str | None, endpoint: str = "access_token") -> None:
        """Spend ``code`` if it is one of this app's codes for ``endpoint`` (a request WeChat
        processed but whose answer was lost)."""
        with self._lock:
            codes = self._js_codes if endpoint == "jscode2session" else self._codes
            grant = codes.get(code)
            if grant is not None and grant.user.app_id == appid:
                grant.used = True

    # The API.

    def _app(self, appid: str | None) -> FakeApp:
        """The app a request names with ``appid`` (41002 if none, 40013 if unknown)."""
        app = self._apps.find(appid)
        _refuse_first((not appid, 41002), (app is None, 40013))
        assert app is not None
        return app

    def exchange_code(
        self, appid: str | None, secret: str | None, code: str | None, grant_type: str | None
    ) -> dict[str, Any]:
        """``sns/oauth2/access_token``: spend a code of this app, answer tokens.

        Another app's code is unknown here (40029) and stays unspent.
        """
        app = self._app(appid)
        _refuse_first(
            (not secret, 41004),
            (secret != app.app_secret, 40125),
            (grant_type != "authorization_code", 40002),
            (not code, 41008),
        )
        assert code is not None
        with self._lock:
            grant = self._codes.get(code)
            now = self._now()
            if grant is None or grant.user.app_id != app.app_id or grant.expires_at <= now:
                raise WeChatError(40029)
            if grant.used:
                raise WeChatError(40163)
            grant.used = True
            access_token, refresh_token = _token(), _token()
            self._access[access_token] = AccessGrant(grant.user, grant.scope, now + self.access_token_ttl)
            self._refresh[refresh_token] = RefreshGrant(
                grant.user, grant.scope, now + self.refresh_token_ttl, access_token
            )
        body: dict[str, Any] = {
            "access_token": access_token,
            "expires_in": self.access_token_ttl,
            "refresh_token": refresh_token,
            "openid": grant.user.openid,
            "scope": grant.scope,
        }
        if grant.user.unionid:
            body["unionid"] = grant.user.unionid
        if grant.user.snapshot:
            body["is_snapshotuser"] = 1
        return body

    def refresh(self, appid: str | None, refresh_token: str | None, grant_type: str | None) -> dict[str, Any]:
        """``sns/oauth2/refresh_token``: extend a live access token, or issue a new one.

        Another app's refresh token is unknown here (40030).
        """
        app = self._app(appid)
        _refuse_first((grant_type != "refresh_token", 40002), (not refresh_token, 41003))
        assert refresh_token is not None
        with self._lock:
            grant = self._refresh.get(refresh_token)
            if grant is None or grant.user.app_id != app.app_id:
                raise WeChatError(40030)
            now = self._now()
            if grant.expires_at <= now:
                raise WeChatError(42002)
            current = self._access.get(grant.access_token)
            if current is not None and current.expires_at > now:
                current.expires_at = now + self.access_token_ttl
            else:
                grant.access_token = _token()
                self._access[grant.access_token] = AccessGrant(
                    grant.user, grant.scope, now + self.access_token_ttl
                )
            return {
                "access_token": grant.access_token,
                "expires_in": self.access_token_ttl,
                "refresh_token": refresh_token,
                "openid": grant.user.openid,
                "scope": grant.scope,
            }

    def jscode2session(
        self,
        appid: str | None,
        secret: str | None,
        js_code: str | None,
        grant_type: str | None,
    ) -> dict[str, Any]:
        """``sns/jscode2session``: spend a Mini Program code of this app; answer the openid, a
        new session_key (each success rotates the user's) and the unionid if bound.

        Another app's code, or a code of :meth:`issue_code`, is unknown here (40029, unspent).
        """
        app = self._app(appid)
        _refuse_first(
            (not secret, 41004),
            (secret != app.app_secret, 40125),
            (grant_type != "authorization_code", 40002),
            (not js_code, 41008),
        )
        assert js_code is not None
        with self._lock:
            grant = self._js_codes.get(js_code)
            if grant is None or grant.user.app_id != app.app_id or grant.expires_at <= self._now():
                raise WeChatError(40029)
            if grant.used:
                raise WeChatError(40163)
            grant.used = True
            session_key = self._session_keys[app.app_id, grant.user.openid] = _session_key()
        body: dict[str, Any] = {"session_key": session_key, "openid": grant.user.openid}
        if grant.user.unionid:
            body["unionid"] = grant.user.unionid
        return body

    def session_key_of(self, app_id: str, openid: str) -> str | None:
        """The current session_key of ``openid`` in Mini Program ``app_id`` (the one the last
        successful ``jscode2session`` answered), or None if none yet; ``ValueError`` if the app
        is unknown."""
        app = self._apps.get(app_id)
        with self._lock:
            return self._session_keys.get((app.app_id, openid))

    def _access_grant(self, access_token: str | None, openid: str | None) -> AccessGrant:
        if not access_token:
            raise WeChatError(41001)
        with self._lock:
            grant = self._access.get(access_token)
            now = self._now()
        if grant is None:
            raise WeChatError(40014)
        if grant.expires_at <= now:
            raise WeChatError(42001)
        if not openid:
            raise WeChatError(41009)
        if openid != grant.user.openid:
            raise WeChatError(40003)
        return grant

    def userinfo(self, access_token: str | None, openid: str | None) -> dict[str, Any]:
        """``sns/userinfo``: the profile; refused under ``snsapi_base``."""
        grant = self._access_grant(access_token, openid)
        if grant.scope == "snsapi_base":
            raise WeChatError(48001)
        body: dict[str, Any] = {
            "openid": grant.user.openid,
            "nickname": grant.user.nickname,
            "sex": "1",
            "province": "Guangdong",
            "city": "Shenzhen",
            "country": "CN",
            "headimgurl": "",
            "privilege": [],
        }
        if grant.user.unionid:
            body["unionid"] = grant.user.unionid
        return body

    def check_token(self, access_token: str | None, openid: str | None) -> dict[str, Any]:
        """``sns/auth``: ok when the token is live and belongs to ``openid``."""
        self._access_grant(access_token, openid)
        return {"errcode": 0, "errmsg": "ok"}
