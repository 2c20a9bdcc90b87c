"""System checks: misconfiguration is reported by ``manage.py check`` with an id and a hint.

========================= =================================================================
wechat_oauth.E001         APP_ID or APP_SECRET missing
wechat_oauth.E002         SCOPE is not one WeChat knows
wechat_oauth.E003         WeChatOAuthMiddleware placed before session or auth middleware
wechat_oauth.E004         LINK_USERS without WeChatBackend in AUTHENTICATION_BACKENDS
wechat_oauth.E005         CACHE_ALIAS names no cache in CACHES
wechat_oauth.W001         CACHE_ALIAS is a per-process cache (local memory, dummy)
wechat_oauth.W002         CACHE_ALIAS is not a django-redis cache (the front stays off)
wechat_oauth.E013         CACHE_ALIAS's KEY_PREFIX (or KEY_FUNCTION) puts a brace before the
                          front's hash tag (a code's keys would not share a Redis Cluster slot)
wechat_oauth.E006         an AUTO_LOGIN_PATHS entry is not a valid regular expression
wechat_oauth.E007         CREATE_USER cannot be imported
wechat_oauth.E008         wechat_oauth.urls is not included (the login view has no URL)
wechat_oauth.E009         RETENTION not a duration, or shorter than DEDUPE_WINDOW
wechat_oauth.E010         GARBAGE_RETENTION not a duration, or shorter than DEDUPE_WINDOW
wechat_oauth.W003         WeChat URLs are not https while DEBUG is off
wechat_oauth.I004         SQLite without transaction_mode IMMEDIATE (advice; was W004)
wechat_oauth.W005         WAIT_TIMEOUT shorter than the holder's limit
wechat_oauth.W006         SESSION_COOKIE_SAMESITE = "Strict"
wechat_oauth.W007         AUTO_LOGIN_PATHS set but WeChatOAuthMiddleware not installed
wechat_oauth.W008         LOGIN_REDIRECT_URL is Django's default and leads nowhere
wechat_oauth.E011         CLIENT_KEY cannot be imported
wechat_oauth.E012         BUDGET_CACHE_ALIAS names no cache in CACHES
wechat_oauth.W009         DEDUPE_WINDOW shorter than WAIT_TIMEOUT
wechat_oauth.W010         BUDGET_CACHE_ALIAS is a dummy cache (the budgets count nothing)
wechat_oauth.E014         MariaDB/MySQL at READ UNCOMMITTED (a twin could read a claim in flight)
wechat_oauth.W011         MariaDB/MySQL at SERIALIZABLE (every read of the code's row locks it)
wechat_oauth.E015         OAuthCodeUse's table is not InnoDB (no transactions: no fence)
wechat_oauth.E016         an app of APPS has an unknown KIND
wechat_oauth.E017         an app of APPS has no APP_ID or no APP_SECRET (WeCom: CORP_ID, SECRET)
wechat_oauth.E018         two apps of APPS have the same APP_ID
wechat_oauth.E019         DEFAULT_APP is not an app of APPS
wechat_oauth.E020         an app's SCOPE is not one its KIND allows
wechat_oauth.E021         an app's name is not a URL slug, or its dict has an unknown key
wechat_oauth.E022         a WeCom app has no AGENT_ID (or one that is not a number)
wechat_oauth.E023         ASYNC_VIEWS is True but httpx is not installed (extra [async]), or
                          ASYNC_VIEWS / ASYNC_POLL_INTERVAL has a value of the wrong kind
========================= =================================================================
"""

from __future__ import annotations

import re
from typing import Any

from django.apps import apps as django_apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Info, Tags, Warning, register
from django.db import connections, router
from django.urls import NoReverseMatch, Resolver404, resolve, reverse

from .backends import BACKEND_PATH
from .conf import app_settings
from .guard.cache import is_django_redis
from .models import OAuthCodeUse, WeChatAccount
from .purge import garbage_retention, parse_duration
from .registry import APP_KEYS, KIND_SCOPES, PER_APP_KEYS, WeChatApp, configured_apps
from .results import SCOPES

MIDDLEWARE_PATH = "wechat_oauth.middleware.WeChatOAuthMiddleware"
MUST_COME_BEFORE = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
)


#: Where the drop-ins live: a site whose logins all go through one needs no app of its own.
DROP_IN_BACKENDS = ("wechat_oauth.contrib.social.",)
#: The drop-ins that are installed apps (django-allauth's: its providers replace allauth's).
DROP_IN_APPS = ("wechat_oauth.contrib.allauth",)


def drop_in_only() -> bool:
    """Whether the site logs in only through a drop-in (python-social-auth's backends in
    AUTHENTICATION_BACKENDS, django-allauth's providers in INSTALLED_APPS) and configures no app
    of its own: then APP_ID, WeChatBackend and this app's URLs are not needed (E001, E004 and
    E008 stay silent)."""
    if app_settings.APPS or app_settings.APP_ID:
        return False
    return any(str(path).startswith(DROP_IN_BACKENDS) for path in settings.AUTHENTICATION_BACKENDS) or any(
        django_apps.is_installed(name) for name in DROP_IN_APPS
    )


@register(Tags.security)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if (
        not app_settings.APPS
        and (not app_settings.APP_ID or not app_settings.APP_SECRET)
        and not drop_in_only()
    ):
        messages.append(
            Error(
                "WECHAT_OAUTH has no APP_ID or no APP_SECRET.",
                hint="Set WECHAT_OAUTH = {'APP_ID': 'wx...', 'APP_SECRET': '...'} in settings.",
                id="wechat_oauth.E001",
            )
        )
    messages += _check_retention()
    messages += _check_garbage_retention()
    if not app_settings.APPS and app_settings.SCOPE not in SCOPES:
        messages.append(
            Error(
                f"WECHAT_OAUTH['SCOPE'] is {app_settings.SCOPE!r}.",
                hint="Use one of: " + ", ".join(SCOPES) + ".",
                id="wechat_oauth.E002",
            )
        )
    return messages


_SLUG = re.compile(r"[-a-zA-Z0-9_]+")


@register(Tags.security)
def check_apps(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """WECHAT_OAUTH["APPS"] (registry.py): each app whole, its kind and scope agreeing."""
    configured = app_settings.APPS
    if not configured:
        return []
    messages: list[CheckMessage] = []
    known_keys = {*APP_KEYS, *PER_APP_KEYS}
    for name, conf in configured.items():
        unknown = sorted(set(conf) - known_keys)
        if not _SLUG.fullmatch(str(name)) or unknown:
            messages.append(
                Error(
                    f"WECHAT_OAUTH['APPS'][{name!r}]: "
                    + (f"unknown keys {', '.join(unknown)}" if unknown else "the name is not a URL slug"),
                    hint="App names appear in URLs (<app>/login/): letters, digits, - and _. App keys: "
                    + ", ".join(sorted(known_keys))
                    + ".",
                    id="wechat_oauth.E021",
                )
            )
    for app in configured_apps().values():
        where = f"WECHAT_OAUTH['APPS'][{app.name!r}]"
        if app.kind not in KIND_SCOPES:
            messages.append(
                Error(
                    f"{where} has KIND {app.kind!r}.",
                    hint="Use one of: " + ", ".join(KIND_SCOPES) + ".",
                    id="wechat_oauth.E016",
                )
            )
        elif app.scope not in KIND_SCOPES[app.kind]:
            messages.append(
                Error(
                    f"{where} asks for SCOPE {app.scope!r}, which a {app.kind!r} app cannot.",
                    hint=f"A {app.kind!r} app's scopes: " + ", ".join(KIND_SCOPES[app.kind]) + ".",
                    id="wechat_oauth.E020",
                )
            )
        if app.is_wecom:
            messages.extend(_check_wecom_app(app, where))
        elif not app.app_id or not app.app_secret:
            messages.append(
                Error(
                    f"{where} has no APP_ID or no APP_SECRET.",
                    hint="Copy both from the WeChat console of that app.",
                    id="wechat_oauth.E017",
                )
            )
    ids = [app.app_id for app in configured_apps().values() if app.app_id]
    for app_id in sorted({app_id for app_id in ids if ids.count(app_id) > 1}):
        messages.append(
            Error(
                f"Several apps of WECHAT_OAUTH['APPS'] have APP_ID {app_id!r}.",
                hint="Each WeChat app is configured once: its codes, states and accounts are its own.",
                id="wechat_oauth.E018",
            )
        )
    default = app_settings.DEFAULT_APP
    if default is not None and default not in configured:
        messages.append(
            Error(
                f"WECHAT_OAUTH['DEFAULT_APP'] is {default!r}, which is not in APPS.",
                hint="Name one of: " + ", ".join(map(str, configured)) + " (or remove DEFAULT_APP: "
                "the first app is then the default).",
                id="wechat_oauth.E019",
            )
        )
    return messages


def _check_wecom_app(app: WeChatApp, where: str) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if not app.app_id or not app.app_secret:
        messages.append(
            Error(
                f"{where} has no CORP_ID or no SECRET.",
                hint="The corp id is under My Company in WeCom's admin console; "
                "the secret is the self-built app's own.",
                id="wechat_oauth.E017",
            )
        )
    if not app.agent_id.isdigit():
        messages.append(
            Error(
                f"{where} has no AGENT_ID (or one that is not a number).",
                hint='The AgentId of the self-built app, e.g. "1000002" '
                "(App Management in WeCom's admin console).",
                id="wechat_oauth.E022",
            )
        )
    return messages


@register()
def check_async_views(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from .async_client import httpx_installed

    errors: list[CheckMessage] = []
    choice = app_settings.ASYNC_VIEWS
    if choice not in (None, True, False):
        errors.append(
            Error(f"ASYNC_VIEWS must be None, True or False, not {choice!r}", id="wechat_oauth.E023")
        )
    elif choice is True and not httpx_installed():
        errors.append(
            Error(
                "ASYNC_VIEWS is True, but the async views need httpx",
                hint="pip install 'django-wechat-oauth[async]', or set ASYNC_VIEWS to None "
                "(async views under ASGI when httpx is installed)",
                id="wechat_oauth.E023",
            )
        )
    interval = app_settings.ASYNC_POLL_INTERVAL
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
        errors.append(
            Error(
                f"ASYNC_POLL_INTERVAL must be a positive number of seconds, not {interval!r}",
                id="wechat_oauth.E023",
            )
        )
    return errors


def _check_retention() -> list[CheckMessage]:
    """RETENTION as purge_oauth_codes reads it (a number of seconds or "7d", "12h", ...)."""
    try:
        retention = parse_duration(app_settings.RETENTION).total_seconds()
    except ValueError as error:
        return [Error(f"WECHAT_OAUTH['RETENTION']: {error}", id="wechat_oauth.E009")]
    if retention >= app_settings.DEDUPE_WINDOW:
        return []
    return [
        Error(
            f"WECHAT_OAUTH['RETENTION'] ({retention:g} s) is shorter than "
            f"DEDUPE_WINDOW ({app_settings.DEDUPE_WINDOW} s).",
            hint="purge_oauth_codes refuses to run: deleting a row inside the window would "
            "let a late duplicate spend its code a second time.",
            id="wechat_oauth.E009",
        )
    ]


def _check_garbage_retention() -> list[CheckMessage]:
    try:
        garbage_retention()
    except ValueError as error:
        return [
            Error(
                f"WECHAT_OAUTH {error}.",
                hint="purge_oauth_codes refuses to run: a duplicate of a rejected code within the "
                "window must still find its row and replay the failure.",
                id="wechat_oauth.E010",
            )
        ]
    return []


@register()
def check_middleware_and_backend(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    middleware = list(settings.MIDDLEWARE)
    if MIDDLEWARE_PATH in middleware:
        position = middleware.index(MIDDLEWARE_PATH)
        late = [path for path in MUST_COME_BEFORE if path not in middleware[:position]]
        if late:
            messages.append(
                Error(
                    "WeChatOAuthMiddleware must come after " + " and ".join(late) + ".",
                    hint="It stores the login in the session and logs the user in: move it below "
                    "SessionMiddleware and AuthenticationMiddleware in MIDDLEWARE.",
                    id="wechat_oauth.E003",
                )
            )
    if (
        app_settings.LINK_USERS
        and BACKEND_PATH not in settings.AUTHENTICATION_BACKENDS
        and not drop_in_only()
    ):
        messages.append(
            Error(
                f"{BACKEND_PATH} is not in AUTHENTICATION_BACKENDS.",
                hint="Without it a WeChat login does not survive the next request. Add it, or set "
                "WECHAT_OAUTH['LINK_USERS'] = False to keep only request.wechat.",
                id="wechat_oauth.E004",
            )
        )
    return messages


PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@register(Tags.caches)
def check_cache_front(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    alias = app_settings.CACHE_ALIAS
    if not alias:
        return []
    if alias not in settings.CACHES:
        return [
            Error(
                f"WECHAT_OAUTH['CACHE_ALIAS'] is {alias!r}, which is not in CACHES.",
                hint="Name a django-redis cache shared by every server, or remove CACHE_ALIAS.",
                id="wechat_oauth.E005",
            )
        ]
    backend = settings.CACHES[alias].get("BACKEND", "")
    if backend in PER_PROCESS_CACHES:
        return [
            Warning(
                f"CACHE_ALIAS {alias!r} is a per-process cache ({backend}): other workers and "
                "servers cannot see it, so the cache front stays off.",
                hint="Point CACHE_ALIAS at a django-redis cache (pip install django-wechat-oauth[redis]).",
                id="wechat_oauth.W001",
            )
        ]
    if not is_django_redis(alias):
        return [
            Warning(
                f"CACHE_ALIAS {alias!r} uses {backend}; the cache front needs django-redis "
                "(Lua scripts and blocking pops), so it stays off and the database works alone.",
                hint="Use django_redis.cache.RedisCache for this alias.",
                id="wechat_oauth.W002",
            )
        ]
    return _hash_tag_errors(alias)


def _hash_tag_errors(alias: str) -> list[CheckMessage]:
    """Redis Cluster hashes only a key's first ``{…}``: the front's keys carry their own tag
    (``{s<n>}``), which a brace in KEY_PREFIX (or a KEY_FUNCTION) would take the place of."""
    from django.core.cache import caches

    probe = caches[alias].make_key("wechat_oauth:{probe}:r")
    if _redis_hash_tag(probe) == "probe":
        return []
    prefix = settings.CACHES[alias].get("KEY_PREFIX", "")
    return [
        Error(
            f"CACHE_ALIAS {alias!r} makes keys like {probe!r}: Redis Cluster would hash "
            f"{_redis_hash_tag(probe) or 'the whole key'!r} instead of the front's own hash tag, "
            "so the keys of one code would not share a slot (or every code would share one).",
            hint=f"Remove the braces from this cache's KEY_PREFIX ({prefix!r})"
            + (" and KEY_FUNCTION" if settings.CACHES[alias].get("KEY_FUNCTION") else "")
            + "; on a single Redis they are harmless, but a cluster refuses the scripts.",
            id="wechat_oauth.E013",
        )
    ]


def _redis_hash_tag(key: str) -> str | None:
    """What Redis Cluster hashes of ``key``: the text between its first ``{`` and the next
    ``}``, if not empty; else (None) the whole key."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start + 1 : end] if end > start + 1 else None


@register(Tags.security)
def check_budgets_and_replay(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The budgets of new codes (budget.py) and the replay window (binding.py)."""
    messages = _import_errors("CLIENT_KEY", "client_key(request) -> str", "wechat_oauth.E011")
    alias = app_settings.BUDGET_CACHE_ALIAS
    if alias not in settings.CACHES:
        messages.append(
            Error(
                f"BUDGET_CACHE_ALIAS {alias!r} is not in CACHES.",
                hint="Name a cache shared by your servers (or the default one).",
                id="wechat_oauth.E012",
            )
        )
    elif settings.CACHES[alias].get("BACKEND", "").endswith(".DummyCache"):
        messages.append(
            Warning(
                f"BUDGET_CACHE_ALIAS {alias!r} is a DummyCache: the budgets of new codes count "
                "nothing, so a flood of made-up codes costs a row and a call to WeChat each.",
                hint="Point BUDGET_CACHE_ALIAS at a real cache, shared by your servers.",
                id="wechat_oauth.W010",
            )
        )
    if float(app_settings.DEDUPE_WINDOW) < app_settings.wait_timeout:
        messages.append(
            Warning(
                f"DEDUPE_WINDOW ({app_settings.DEDUPE_WINDOW:g} s) is shorter than WAIT_TIMEOUT "
                f"({app_settings.wait_timeout:g} s).",
                hint="A duplicate that waited for a slow exchange finds the window closed and must "
                "log in again. Leave DEDUPE_WINDOW at its default or above WAIT_TIMEOUT.",
                id="wechat_oauth.W009",
            )
        )
    return messages


@register()
def check_site_integration(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """What went wrong while the demo was built, and what a new site gets wrong."""
    messages: list[CheckMessage] = []
    messages += _check_auto_login_paths()
    messages += _import_errors("CREATE_USER", "create_user(token, profile) -> user", "wechat_oauth.E007")
    if not drop_in_only():
        try:
            reverse("wechat_oauth:login")
        except NoReverseMatch:
            messages.append(
                Error(
                    "The wechat_oauth URLs are not included in the URLconf.",
                    hint='Add path("wechat/", include("wechat_oauth.urls")) to your urlpatterns.',
                    id="wechat_oauth.E008",
                )
            )
    if not settings.DEBUG:
        plain = [
            name
            for name in (
                "API_BASE_URL",
                "AUTHORIZE_URL",
                "QRCONNECT_URL",
                "WECOM_API_BASE_URL",
                "WECOM_SSO_URL",
            )
            if not str(getattr(app_settings, name)).startswith("https://")
        ]
        if plain:
            messages.append(
                Warning(
                    f"WECHAT_OAUTH {', '.join(plain)} not https while DEBUG is off.",
                    hint="The app secret and tokens travel in these requests: use WeChat's https URLs "
                    "(the defaults) outside development.",
                    id="wechat_oauth.W003",
                )
            )
    if app_settings.WAIT_TIMEOUT is not None and app_settings.wait_timeout < app_settings.hold_timeout:
        messages.append(
            Warning(
                f"WAIT_TIMEOUT ({app_settings.wait_timeout:g} s) is shorter than the time the first "
                f"request may hold a code ({app_settings.hold_timeout:g} s).",
                hint="Duplicates may give up (503) while the exchange is still going. Leave "
                "WAIT_TIMEOUT unset to derive it from TIMEOUT.",
                id="wechat_oauth.W005",
            )
        )
    if settings.SESSION_COOKIE_SAMESITE == "Strict":
        messages.append(
            Warning(
                'SESSION_COOKIE_SAMESITE = "Strict": the browser does not send the session cookie '
                "when WeChat redirects back to the callback.",
                hint="Use \"Lax\" (Django's default): the callback then sees the browser's session, "
                "keeps its data and recognises a refresh by a logged-in user.",
                id="wechat_oauth.W006",
            )
        )
    if settings.LOGIN_REDIRECT_URL == "/accounts/profile/":
        try:
            resolve("/accounts/profile/")
        except Resolver404:
            messages.append(
                Warning(
                    "LOGIN_REDIRECT_URL is Django's default /accounts/profile/, which this site "
                    "does not serve: a login without ?next= ends on a 404.",
                    hint='Set LOGIN_REDIRECT_URL (e.g. "/"), or always pass ?next= to the login view.',
                    id="wechat_oauth.W008",
                )
            )
    return messages


def _import_errors(name: str, signature: str, check_id: str) -> list[CheckMessage]:
    """An import-string setting (conf.IMPORT_STRINGS, imported on access) that does not import."""
    try:
        getattr(app_settings, name)
    except ImportError as error:
        return [
            Error(
                f"WECHAT_OAUTH[{name!r}] cannot be imported: {error}.",
                hint=f"Give the dotted path of a function {signature}.",
                id=check_id,
            )
        ]
    return []


def _check_auto_login_paths() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for pattern in app_settings.AUTO_LOGIN_PATHS:
        try:
            re.compile(pattern)
        except (re.error, TypeError) as error:
            messages.append(
                Error(
                    f"WECHAT_OAUTH['AUTO_LOGIN_PATHS'] entry {pattern!r} is not a regular expression: "
                    f"{error}.",
                    hint=r'Write path patterns such as r"^/shop/".',
                    id="wechat_oauth.E006",
                )
            )
    if app_settings.AUTO_LOGIN_PATHS and MIDDLEWARE_PATH not in settings.MIDDLEWARE:
        messages.append(
            Warning(
                "AUTO_LOGIN_PATHS is set but WeChatOAuthMiddleware is not in MIDDLEWARE: nobody is "
                "sent to login automatically.",
                hint=f"Add {MIDDLEWARE_PATH!r} after AuthenticationMiddleware.",
                id="wechat_oauth.W007",
            )
        )
    return messages


@register(Tags.database)
def check_sqlite_transaction_mode(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    alias = router.db_for_write(WeChatAccount)
    database = settings.DATABASES.get(alias, {})
    if database.get("ENGINE") != "django.db.backends.sqlite3":
        return []
    if database.get("OPTIONS", {}).get("transaction_mode") == "IMMEDIATE":
        return []
    return [
        Info(
            f"Database {alias!r} is SQLite without transaction_mode IMMEDIATE.",
            hint='Advice for your own code: add "OPTIONS": {"transaction_mode": "IMMEDIATE"} so '
            "that *your* read-then-write transactions wait their turn instead of failing with "
            '"database is locked" while another request commits. This app does not need it: '
            "its own transactions take the write lock first.",
            id="wechat_oauth.I004",
        )
    ]


@register(Tags.database)
def check_mysql(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """MariaDB/MySQL: what the fence needs (run by ``manage.py check --database ...`` and by
    ``migrate``). Strict ``sql_mode`` is Django's own check, ``mysql.W002``."""
    alias = router.db_for_write(OAuthCodeUse)
    if not databases or alias not in databases or connections[alias].vendor != "mysql":
        return []
    connection = connections[alias]
    messages: list[CheckMessage] = []
    # Read as the MySQL backend reads it on connecting (its isolation_level attribute only
    # exists once connected, and migrate runs the checks before that): Django's default is
    # READ COMMITTED; an empty value leaves the server's, REPEATABLE READ.
    configured = connection.settings_dict.get("OPTIONS", {}).get("isolation_level", "read committed")
    level = str(configured or "repeatable read").lower()
    if level == "read uncommitted":
        messages.append(
            Error(
                f"Database {alias!r} runs at READ UNCOMMITTED.",
                hint="A duplicate could read the first request's claim before it commits. Remove "
                "OPTIONS['isolation_level'] (Django's default is READ COMMITTED).",
                id="wechat_oauth.E014",
            )
        )
    elif level == "serializable":
        messages.append(
            Warning(
                f"Database {alias!r} runs at SERIALIZABLE.",
                hint="Every read of a code's row then takes a lock; logins still work but wait "
                "for each other. READ COMMITTED (Django's default) is what the app is tested on.",
                id="wechat_oauth.W011",
            )
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ENGINE FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            [OAuthCodeUse._meta.db_table],
        )
        row = cursor.fetchone()
    if row is not None and str(row[0]).lower() != "innodb":
        messages.append(
            Error(
                f"Table {OAuthCodeUse._meta.db_table} is {row[0]}, not InnoDB.",
                hint="Without transactions the first request's claim is visible at once and its "
                f"twins fail instead of waiting: ALTER TABLE {OAuthCodeUse._meta.db_table} "
                "ENGINE=InnoDB (and make InnoDB the default_storage_engine).",
                id="wechat_oauth.E015",
            )
        )
    return messages
