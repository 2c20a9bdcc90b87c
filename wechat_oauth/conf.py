"""The ``WECHAT_OAUTH`` settings dict, its defaults, and lazy access to it.

Read a value as ``app_settings.APP_ID``: one typed property per setting. Values are read from
``settings.WECHAT_OAUTH`` on first use and re-read whenever that setting changes
(``override_settings`` in tests), following the pattern of django-oauth-toolkit's
``oauth2_settings``; the typed properties follow django-cors-headers' ``conf``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from django.http import HttpRequest

    from .results import TokenResult, UserInfo

    #: CREATE_USER: ``create_user(token, profile) -> user``.
    CreateUser = Callable[[TokenResult, UserInfo | None], Any]
    #: CLIENT_KEY: ``client_key(request) -> str``.
    ClientKey = Callable[[HttpRequest], str]

SETTINGS_NAME = "WECHAT_OAUTH"

DEFAULTS: dict[str, Any] = {
    # Several WeChat apps, by name: {"mp": {"KIND": "mp", "APP_ID": ..., "APP_SECRET": ...,
    # "SCOPE": ...}, "web": {"KIND": "open", ...}} (see registry.py). None: the one app of
    # APP_ID / APP_SECRET / SCOPE below, named "default".
    "APPS": None,
    # The app of the plain login/ and callback/ URLs. None: the first app of APPS.
    "DEFAULT_APP": None,
    # Import path of the site's adapter (adapter.DefaultAdapter's subclass): the veto before a
    # login, unionid linking, user creation and population, the HTTP session.
    "ADAPTER": "wechat_oauth.adapter.DefaultAdapter",
    # Credentials of the Official Account (or Open Platform website app for snsapi_login).
    "APP_ID": "",
    "APP_SECRET": "",
    # snsapi_base (silent, openid only), snsapi_userinfo (consent, profile) or snsapi_login
    # (website QR login through QRCONNECT_URL).
    "SCOPE": "snsapi_base",
    "AUTHORIZE_URL": "https://open.weixin.qq.com/connect/oauth2/authorize",
    "QRCONNECT_URL": "https://open.weixin.qq.com/connect/qrconnect",
    "API_BASE_URL": "https://api.weixin.qq.com",
    # WeCom (企业微信) apps (KIND "wecom"): its API (cgi-bin/gettoken, cgi-bin/auth/getuserinfo,
    # getuserdetail) and the SSO QR login page a desktop browser is sent to.
    "WECOM_API_BASE_URL": "https://qyapi.weixin.qq.com",
    "WECOM_SSO_URL": "https://login.work.weixin.qq.com/wwlogin/sso/login",
    # A WeCom app's access token (7200 s) is fetched again this many seconds before it expires
    # (WeCom answers the same token while it lives: one that comes back within the margin is
    # used until it expires).
    "WECOM_TOKEN_REFRESH_MARGIN": 300,
    # WeChat's script that draws a website app's QR panel inside a page (wechat_qr_panel tag).
    "WXLOGIN_JS_URL": "https://res.wx.qq.com/connect/zh_CN/htmledition/js/wxLogin.js",
    # requests timeout for every call to WeChat: (connect, read) seconds, or one number for both.
    "TIMEOUT": (3.05, 5.0),
    # Append connect_redirect=1 to the authorize URL (reduces, does not remove, duplicates).
    "CONNECT_REDIRECT": True,
    # Append forcePopup=true to the authorize URL (forces the consent page for snsapi_userinfo).
    "FORCE_POPUP": False,
    # Language asked of sns/userinfo.
    "USERINFO_LANG": "zh_CN",
    # How long (seconds) a duplicate callback may replay the first exchange's outcome (only to
    # the same browser and login attempt, see binding.py). WeChat's duplicates come within
    # milliseconds to a few seconds of the first request, and one may wait up to WAIT_TIMEOUT
    # (18.1 s by default) for the exchange in flight: 30 s covers both. A signed-in browser's
    # Back or refresh is handled without the window. Tokens stay in OAuthCodeUse only this
    # long (purge_oauth_codes scrubs).
    "DEDUPE_WINDOW": 30,
    # Longest time (seconds) a duplicate waits for an exchange in flight. None: the holder's
    # limit (two client timeouts plus EXCHANGE_MARGIN) plus one more second, so a waiter
    # always outlives a holder that the database gives up on.
    "WAIT_TIMEOUT": None,
    # Seconds added to two client timeouts (exchange + profile) to bound how long the holder of
    # an exchange may keep its transaction (and so its row lock) open: past it, PostgreSQL
    # ends the session.
    "EXCHANGE_MARGIN": 1.0,
    # How long (seconds) a Mini Program's session token (POST <app>/session/) stays valid.
    "SESSION_TOKEN_MAX_AGE": 7 * 24 * 3600,
    # How long (seconds) a state issued by the login view stays valid.
    "STATE_MAX_AGE": 600,
    # Hosts besides the request's own that a ``next`` URL may point to.
    "ALLOWED_REDIRECT_HOSTS": [],
    # How long (seconds, or a duration such as "7d") OAuthCodeUse rows are kept for the admin's
    # history before purge_oauth_codes deletes them. Tokens are scrubbed much earlier (DEDUPE_WINDOW).
    "RETENTION": 7 * 24 * 3600,
    # How long (seconds) a code WeChat rejected (failed, error "spent": invalid or already used)
    # that nobody sent again (no duplicate) is kept. Anyone can send the callback made-up codes,
    # each leaves such a row: purge_oauth_codes deletes them after this, not after RETENTION.
    # At least DEDUPE_WINDOW: a duplicate within the window must still find the row.
    "GARBAGE_RETENTION": 3600,
    # Link each WeChat identity to a Django user and log that user in. False: only keep the
    # identity in the session (request.wechat), with no Django user at all.
    "LINK_USERS": True,
    # Import path of ``create_user(token, profile) -> user``, called for a new identity.
    "CREATE_USER": "wechat_oauth.users.create_user",
    # Regexes of paths where an anonymous visitor inside WeChat's browser is sent to login
    # by WeChatOAuthMiddleware (matched against request.path_info). Empty: never.
    "AUTO_LOGIN_PATHS": [],
    # Alias (in CACHES) of a django-redis cache shared by every server: duplicates are then
    # answered from Redis (no SQL) and in-flight ones woken through it; WeCom apps share their
    # access token there (else in the WeComAccessToken table). None: database only.
    "CACHE_ALIAS": None,
    # Name of the browser-binding cookie the login start sets (HttpOnly, SameSite=Lax, lives
    # STATE_MAX_AGE); the state commits to it (see binding.py).
    "BINDING_COOKIE_NAME": "wechat_oauth_binding",
    # User-Agent substrings of browsers known to drop cookies between the authorisation and the
    # callback (WeChat's and WeCom's in-app browsers): only their callbacks may arrive without
    # the binding cookie. Empty: every callback must carry it.
    "UNBOUND_USER_AGENTS": ["MicroMessenger", "wxwork"],
    # Ask before completing *every* callback that arrives without the binding cookie, not only
    # one that would replace a different logged-in user. Closes login CSRF against anonymous
    # visitors inside WeChat too, at the price of one tap for each login whose cookie WeChat
    # dropped.
    "CONFIRM_UNBOUND": False,
    # Most distinct codes one login attempt (one state) may bring: WeChat sends at most two.
    "MAX_CODES_PER_LOGIN": 3,
    # Codes WeChat rejected as invalid/spent that one client (CLIENT_KEY) may bring within
    # GARBAGE_PERIOD seconds; past it, that client's new codes get a 429 page until the period
    # ends. Only rejected codes count: logins that succeed never use up the budget.
    "GARBAGE_BUDGET": 50,
    "GARBAGE_PERIOD": 600,
    # Import path of ``client_key(request) -> str``, the client the budget is kept for.
    "CLIENT_KEY": "wechat_oauth.budget.remote_addr",
    # Alias (in CACHES) where the budgets are counted; share it between servers.
    "BUDGET_CACHE_ALIAS": "default",
    # Which views serve login/, callback/ and <app>/session/: None picks per request, the async
    # views (httpx, extra [async]) when the site is served by ASGI and the sync ones under
    # WSGI; True: always the async ones; False: always the sync ones (see docs/03-6-asgi.rst).
    "ASYNC_VIEWS": None,
    # Longest pause (seconds) between an async duplicate's tries while the exchange of its
    # code is in flight elsewhere, when it cannot wait on the Redis front (5 ms, doubling).
    "ASYNC_POLL_INTERVAL": 0.05,
    # Key of the HMACs of stored codes and of login states. None: SECRET_KEY (and its
    # SECRET_KEY_FALLBACKS for states). Changing it forgets dedupe records and invalidates
    # logins in progress (states live STATE_MAX_AGE).
    "HASH_KEY": None,
}

# Settings whose value is an import string, imported on access.
IMPORT_STRINGS: frozenset[str] = frozenset({"CREATE_USER", "CLIENT_KEY"})


#: A requests timeout: one number for both, or (connect, read) seconds.
TimeoutValue = float | tuple[float, float]
#: A duration setting (GARBAGE_RETENTION): seconds, a timedelta, or "90s", "10m", "12h", "7d", "2w".
Duration = str | float | timedelta


def timeout_pair(value: TimeoutValue) -> tuple[float, float]:
    """A requests timeout (one number, or connect and read) as a (connect, read) pair."""
    if isinstance(value, (int, float)):
        return (float(value), float(value))
    connect, read = value
    return (float(connect), float(read))


class AppSettings:
    """Lazy view of ``settings.WECHAT_OAUTH`` merged over :data:`DEFAULTS`.

    One typed property per setting (the keys of :data:`DEFAULTS`, which stays the one source of
    the defaults): each reads the user's value over the default on first use, imports the
    :data:`IMPORT_STRINGS` ones, and keeps the result until :meth:`reload` (called whenever
    WECHAT_OAUTH changes). The types are those the settings are documented with; the system
    checks (checks.py) catch values of the wrong kind.
    """

    def __init__(self, defaults: dict[str, Any] | None = None) -> None:
        self._defaults = defaults if defaults is not None else DEFAULTS
        self._cache: dict[str, Any] = {}

    @property
    def user_settings(self) -> dict[str, Any]:
        return getattr(settings, SETTINGS_NAME, None) or {}

    def _setting(self, name: str) -> Any:
        """The value of setting ``name`` (the user's, else the default), imported if it is an
        import string, cached until :meth:`reload`."""
        if name.startswith("_") or name not in self._defaults:
            raise AttributeError(f"Invalid {SETTINGS_NAME} setting: {name!r}")
        if name not in self._cache:
            value = self.user_settings.get(name, self._defaults[name])
            if name in IMPORT_STRINGS and isinstance(value, str):
                value = import_string(value)
            self._cache[name] = value
        return self._cache[name]

    if not TYPE_CHECKING:
        # Any other key of the defaults (an AppSettings made with defaults of its own), and the
        # error for a name that is no setting. Hidden from type checkers, so that a misspelt
        # setting is a type error instead of Any.
        def __getattr__(self, name: str) -> Any:
            return self._setting(name)

    def reload(self) -> None:
        self._cache.clear()

    # The settings, one property each (see DEFAULTS for what each means).

    @property
    def APPS(self) -> Mapping[str, Mapping[str, Any]] | None:
        return cast("Mapping[str, Mapping[str, Any]] | None", self._setting("APPS"))

    @property
    def DEFAULT_APP(self) -> str | None:
        return cast("str | None", self._setting("DEFAULT_APP"))

    @property
    def ADAPTER(self) -> str:
        return cast(str, self._setting("ADAPTER"))

    @property
    def APP_ID(self) -> str:
        return cast(str, self._setting("APP_ID"))

    @property
    def APP_SECRET(self) -> str:
        return cast(str, self._setting("APP_SECRET"))

    @property
    def SCOPE(self) -> str:
        return cast(str, self._setting("SCOPE"))

    @property
    def AUTHORIZE_URL(self) -> str:
        return cast(str, self._setting("AUTHORIZE_URL"))

    @property
    def QRCONNECT_URL(self) -> str:
        return cast(str, self._setting("QRCONNECT_URL"))

    @property
    def API_BASE_URL(self) -> str:
        return cast(str, self._setting("API_BASE_URL"))

    @property
    def WECOM_API_BASE_URL(self) -> str:
        return cast(str, self._setting("WECOM_API_BASE_URL"))

    @property
    def WECOM_SSO_URL(self) -> str:
        return cast(str, self._setting("WECOM_SSO_URL"))

    @property
    def WECOM_TOKEN_REFRESH_MARGIN(self) -> float:
        return cast(float, self._setting("WECOM_TOKEN_REFRESH_MARGIN"))

    @property
    def WXLOGIN_JS_URL(self) -> str:
        return cast(str, self._setting("WXLOGIN_JS_URL"))

    @property
    def TIMEOUT(self) -> TimeoutValue:
        return cast(TimeoutValue, self._setting("TIMEOUT"))

    @property
    def CONNECT_REDIRECT(self) -> bool:
        return cast(bool, self._setting("CONNECT_REDIRECT"))

    @property
    def FORCE_POPUP(self) -> bool:
        return cast(bool, self._setting("FORCE_POPUP"))

    @property
    def USERINFO_LANG(self) -> str:
        return cast(str, self._setting("USERINFO_LANG"))

    @property
    def DEDUPE_WINDOW(self) -> float:
        return cast(float, self._setting("DEDUPE_WINDOW"))

    @property
    def WAIT_TIMEOUT(self) -> float | None:
        return cast("float | None", self._setting("WAIT_TIMEOUT"))

    @property
    def EXCHANGE_MARGIN(self) -> float:
        return cast(float, self._setting("EXCHANGE_MARGIN"))

    @property
    def SESSION_TOKEN_MAX_AGE(self) -> int:
        return cast(int, self._setting("SESSION_TOKEN_MAX_AGE"))

    @property
    def STATE_MAX_AGE(self) -> int:
        return cast(int, self._setting("STATE_MAX_AGE"))

    @property
    def ALLOWED_REDIRECT_HOSTS(self) -> Collection[str]:
        return cast("Collection[str]", self._setting("ALLOWED_REDIRECT_HOSTS"))

    @property
    def RETENTION(self) -> Duration:
        return cast(Duration, self._setting("RETENTION"))

    @property
    def GARBAGE_RETENTION(self) -> Duration:
        return cast(Duration, self._setting("GARBAGE_RETENTION"))

    @property
    def LINK_USERS(self) -> bool:
        return cast(bool, self._setting("LINK_USERS"))

    @property
    def CREATE_USER(self) -> CreateUser:
        """The hook itself (the import string imported)."""
        return cast("CreateUser", self._setting("CREATE_USER"))

    @property
    def AUTO_LOGIN_PATHS(self) -> Collection[str]:
        return cast("Collection[str]", self._setting("AUTO_LOGIN_PATHS"))

    @property
    def CACHE_ALIAS(self) -> str | None:
        return cast("str | None", self._setting("CACHE_ALIAS"))

    @property
    def BINDING_COOKIE_NAME(self) -> str:
        return cast(str, self._setting("BINDING_COOKIE_NAME"))

    @property
    def UNBOUND_USER_AGENTS(self) -> Collection[str]:
        return cast("Collection[str]", self._setting("UNBOUND_USER_AGENTS"))

    @property
    def CONFIRM_UNBOUND(self) -> bool:
        return cast(bool, self._setting("CONFIRM_UNBOUND"))

    @property
    def MAX_CODES_PER_LOGIN(self) -> int:
        return cast(int, self._setting("MAX_CODES_PER_LOGIN"))

    @property
    def GARBAGE_BUDGET(self) -> int:
        return cast(int, self._setting("GARBAGE_BUDGET"))

    @property
    def GARBAGE_PERIOD(self) -> int:
        return cast(int, self._setting("GARBAGE_PERIOD"))

    @property
    def CLIENT_KEY(self) -> ClientKey:
        """The function itself (the import string imported)."""
        return cast("ClientKey", self._setting("CLIENT_KEY"))

    @property
    def BUDGET_CACHE_ALIAS(self) -> str:
        return cast(str, self._setting("BUDGET_CACHE_ALIAS"))

    @property
    def ASYNC_VIEWS(self) -> bool | None:
        return cast("bool | None", self._setting("ASYNC_VIEWS"))

    @property
    def ASYNC_POLL_INTERVAL(self) -> float:
        return cast(float, self._setting("ASYNC_POLL_INTERVAL"))

    @property
    def HASH_KEY(self) -> str | bytes | None:
        return cast("str | bytes | None", self._setting("HASH_KEY"))

    # Derived values: computed from the settings above, never set directly.

    @property
    def timeout(self) -> tuple[float, float]:
        """TIMEOUT as a (connect, read) pair."""
        return timeout_pair(self.TIMEOUT)

    @property
    def hold_timeout(self) -> float:
        """Longest time the holder of an exchange keeps its transaction open, in seconds:
        two calls to WeChat (the exchange and, for snsapi_userinfo, the profile) plus margin,
        at the longest TIMEOUT of any app (an app of APPS may set its own)."""
        from .registry import configured_apps

        longest = max(
            [
                sum(self.timeout),
                *(sum(timeout_pair(app.setting("TIMEOUT"))) for app in configured_apps().values()),
            ]
        )
        return 2 * longest + float(self.EXCHANGE_MARGIN)

    @property
    def wait_timeout(self) -> float:
        """Longest time a duplicate waits for an exchange in flight, in seconds."""
        if self.WAIT_TIMEOUT is not None:
            return float(self.WAIT_TIMEOUT)
        return self.hold_timeout + 1.0


app_settings = AppSettings()


@receiver(setting_changed)
def _reload_app_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTINGS_NAME:
        app_settings.reload()
