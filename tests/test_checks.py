"""Every system check id fires on the misconfiguration it names, and only then."""

from __future__ import annotations

import pytest
from django.core import checks

from wechat_oauth.checks import MIDDLEWARE_PATH

# Django 6.1 runs the database-tagged checks of every alias in run_checks(), and on MariaDB
# Django's own (mysql.W002: sql_mode) query the server.
pytestmark = pytest.mark.django_db(databases="__all__")


def ids() -> set[str]:
    """The app's warnings and errors (advice, level INFO, is asserted where it is tested)."""
    return {
        message.id
        for message in checks.run_checks()
        if message.id.startswith("wechat_oauth.") and message.level > checks.INFO
    }


def sqlite_advice() -> set[str]:
    """The database check's advice (level INFO), called directly: which database checks
    run_checks() includes without ``databases`` differs between Django 5.2 and 6.1."""
    from wechat_oauth.checks import check_sqlite_transaction_mode

    return {message.id for message in check_sqlite_transaction_mode() if message.level == checks.INFO}


def test_the_test_settings_pass_every_check():
    assert ids() == set()


@pytest.mark.parametrize("override", [{"APP_ID": ""}, {"APP_SECRET": ""}])
def test_missing_credentials(settings, override):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, **override}
    assert ids() == {"wechat_oauth.E001"}


def test_unknown_scope(settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "SCOPE": "snsapi_everything"}
    assert ids() == {"wechat_oauth.E002"}


@pytest.mark.parametrize(
    "before",
    [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ],
)
def test_middleware_before_session_or_auth(settings, before):
    order = [path for path in settings.MIDDLEWARE if path != MIDDLEWARE_PATH]
    order.insert(order.index(before), MIDDLEWARE_PATH)
    settings.MIDDLEWARE = order
    assert ids() == {"wechat_oauth.E003"}


def test_backend_missing(settings):
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    assert ids() == {"wechat_oauth.E004"}


def test_backend_not_needed_without_django_users(settings):
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "LINK_USERS": False}
    assert ids() == set()


@pytest.mark.parametrize(
    "backend, expected",
    [
        ("django.core.cache.backends.locmem.LocMemCache", "wechat_oauth.W001"),
        ("django.core.cache.backends.dummy.DummyCache", "wechat_oauth.W001"),
        ("django.core.cache.backends.redis.RedisCache", "wechat_oauth.W002"),
    ],
)
def test_cache_alias_that_cannot_front_the_exchange(settings, backend, expected):
    settings.CACHES = {**settings.CACHES, "front": {"BACKEND": backend, "LOCATION": "redis://x"}}
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "CACHE_ALIAS": "front"}
    assert ids() == {expected}


def test_cache_alias_that_does_not_exist(settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "CACHE_ALIAS": "nowhere"}
    assert ids() == {"wechat_oauth.E005"}


def test_django_redis_alias_passes(settings):
    settings.CACHES = {
        **settings.CACHES,
        "front": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:6379/15"},
    }
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "CACHE_ALIAS": "front"}
    assert ids() == set()


@pytest.mark.parametrize(
    "prefix, expected",
    [
        ("shop", set()),
        ("shop:{eu}", {"wechat_oauth.E013"}),  # every code in one slot: the tag would be "eu"
        ("shop{", {"wechat_oauth.E013"}),  # the tag would run from the prefix into the key
        ("shop}", set()),  # a lone closing brace opens no tag
    ],
)
def test_key_prefix_with_braces_is_refused(settings, prefix, expected):
    settings.CACHES = {
        **settings.CACHES,
        "front": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/15",
            "KEY_PREFIX": prefix,
        },
    }
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "CACHE_ALIAS": "front"}
    assert ids() == expected


def test_key_function_that_adds_a_hash_tag_is_refused(settings):
    settings.CACHES = {
        **settings.CACHES,
        "front": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/15",
            "KEY_FUNCTION": "tests.test_checks.tagged_key",
        },
    }
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "CACHE_ALIAS": "front"}
    assert ids() == {"wechat_oauth.E013"}


def tagged_key(key: str, key_prefix: str, version: int) -> str:
    return f"{{tenant}}:{key}"


def test_auto_login_path_that_is_not_a_regex(settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "AUTO_LOGIN_PATHS": ["^/shop/(", r"^/ok/"]}
    assert ids() == {"wechat_oauth.E006"}


def test_auto_login_without_the_middleware(settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "AUTO_LOGIN_PATHS": [r"^/shop/"]}
    settings.MIDDLEWARE = [path for path in settings.MIDDLEWARE if path != MIDDLEWARE_PATH]
    assert ids() == {"wechat_oauth.W007"}


def test_create_user_hook_that_cannot_be_imported(settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "CREATE_USER": "myapp.users.nothing_here"}
    assert ids() == {"wechat_oauth.E007"}


def test_urls_not_included(settings):
    settings.ROOT_URLCONF = "tests.urls_without_wechat"
    assert "wechat_oauth.E008" in ids()


def test_plain_http_wechat_urls_outside_debug(settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "API_BASE_URL": "http://api.weixin.qq.com"}
    assert ids() == {"wechat_oauth.W003"}
    settings.DEBUG = True
    assert ids() == set()


def test_wait_timeout_shorter_than_the_hold(settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "WAIT_TIMEOUT": 1}
    assert ids() == {"wechat_oauth.W005"}


def test_strict_session_cookie(settings):
    settings.SESSION_COOKIE_SAMESITE = "Strict"
    assert ids() == {"wechat_oauth.W006"}


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")  # only the check reads it
def test_sqlite_without_immediate_transactions_is_advice_only(settings):
    sqlite = next(
        conf for conf in settings.DATABASES.values() if conf["ENGINE"] == "django.db.backends.sqlite3"
    )
    # A new dict: the settings fixture restores attributes, not nested objects changed in place.
    settings.DATABASES = {**settings.DATABASES, "default": {**sqlite, "OPTIONS": {"timeout": 20}}}
    assert sqlite_advice() == {"wechat_oauth.I004"} and ids() == set()


def test_default_login_redirect_that_leads_nowhere(settings):
    settings.LOGIN_REDIRECT_URL = "/accounts/profile/"
    assert ids() == {"wechat_oauth.W008"}


def test_retention_shorter_than_the_dedupe_window(settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "RETENTION": 30, "DEDUPE_WINDOW": 60}
    assert ids() == {"wechat_oauth.E009"}


def test_client_key_that_cannot_be_imported(settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "CLIENT_KEY": "nowhere.client_key"}
    assert ids() == {"wechat_oauth.E011"}


def test_budget_cache_alias_that_names_no_cache(settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "BUDGET_CACHE_ALIAS": "budgets"}
    assert ids() == {"wechat_oauth.E012"}


def test_budget_cache_that_counts_nothing(settings):
    settings.CACHES = {
        **settings.CACHES,
        "budgets": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
    }
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "BUDGET_CACHE_ALIAS": "budgets"}
    assert ids() == {"wechat_oauth.W010"}


def test_dedupe_window_shorter_than_a_duplicates_wait(settings):
    settings.WECHAT_OAUTH = {
        **settings.WECHAT_OAUTH,
        "DEDUPE_WINDOW": 10,
        "RETENTION": 3600,
        "GARBAGE_RETENTION": 3600,
    }
    assert ids() == {"wechat_oauth.W009"}


class _Everything:
    def __init__(self, alias):
        self.alias = alias

    def db_for_read(self, model, **hints):
        return self.alias

    db_for_write = db_for_read


def mysql_ids(alias):
    return {
        m.id
        for m in checks.run_checks(tags=[checks.Tags.database], databases=[alias])
        if m.id.startswith("wechat_oauth.")
    }


@pytest.mark.mariadb
@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("read committed", set()),
        ("repeatable read", set()),
        (None, set()),  # the server's own, REPEATABLE READ
        ("read uncommitted", {"wechat_oauth.E014"}),
        ("serializable", {"wechat_oauth.W011"}),
    ],
)
def test_mariadb_isolation_level(settings, mariadb_alias, monkeypatch, level, expected):
    from django.db import connections

    settings.DATABASE_ROUTERS = [_Everything(mariadb_alias)]
    monkeypatch.setitem(connections[mariadb_alias].settings_dict["OPTIONS"], "isolation_level", level)
    assert mysql_ids(mariadb_alias) == expected


@pytest.mark.mariadb
def test_mariadb_checks_run_in_a_process_that_has_not_connected_yet():
    """``migrate`` runs the checks before anything has connected: the check must not read
    what the MySQL backend only sets on connecting (it crashed migrate with AttributeError)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "WECHAT_OAUTH_TEST_DB": "mariadb", "DJANGO_SETTINGS_MODULE": "tests.settings"}
    command = [sys.executable, "-m", "django", "check", "--database", "default", "--tag", "database"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "System check identified no issues" in done.stdout


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_mariadb_table_without_transactions(settings, mariadb_alias):
    from django.db import connections

    settings.DATABASE_ROUTERS = [_Everything(mariadb_alias)]
    with connections[mariadb_alias].cursor() as cursor:
        cursor.execute("ALTER TABLE wechat_oauth_oauthcodeuse ENGINE=MyISAM")
    try:
        assert mysql_ids(mariadb_alias) == {"wechat_oauth.E015"}
    finally:
        with connections[mariadb_alias].cursor() as cursor:
            cursor.execute("ALTER TABLE wechat_oauth_oauthcodeuse ENGINE=InnoDB")
    assert mysql_ids(mariadb_alias) == set()


TWO_APPS = {
    "mp": {"KIND": "mp", "APP_ID": "wxmp0000000000001", "APP_SECRET": "s1", "SCOPE": "snsapi_userinfo"},
    "web": {"KIND": "open", "APP_ID": "wxweb000000000001", "APP_SECRET": "s2"},
}


def with_apps(settings, apps, **more):
    settings.WECHAT_OAUTH = {"APPS": apps, **more}


def test_two_apps_pass_every_check(settings):
    with_apps(settings, TWO_APPS, DEFAULT_APP="mp")
    assert ids() == set()


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"mp": {**TWO_APPS["mp"], "KIND": "official"}}, "wechat_oauth.E016"),
        ({"web": {**TWO_APPS["web"], "APP_SECRET": ""}}, "wechat_oauth.E017"),
        ({"web": {**TWO_APPS["web"], "APP_ID": TWO_APPS["mp"]["APP_ID"]}}, "wechat_oauth.E018"),
        ({"web": {**TWO_APPS["web"], "SCOPE": "snsapi_base"}}, "wechat_oauth.E020"),
        ({"mp": {**TWO_APPS["mp"], "SCOPE": "snsapi_login"}}, "wechat_oauth.E020"),
        ({"mp": {**TWO_APPS["mp"], "APP_SCERET": "typo"}}, "wechat_oauth.E021"),
        ({"web": None, "we b": TWO_APPS["web"]}, "wechat_oauth.E021"),
    ],
)
def test_each_app_is_whole_and_its_scope_fits_its_kind(settings, change, expected):
    apps = {name: conf for name, conf in {**TWO_APPS, **change}.items() if conf is not None}
    with_apps(settings, apps)
    assert ids() == {expected}


def test_default_app_must_be_one_of_the_apps(settings):
    with_apps(settings, TWO_APPS, DEFAULT_APP="shop")
    assert ids() == {"wechat_oauth.E019"}


def test_per_app_overrides_are_known_keys(settings):
    with_apps(
        settings,
        {**TWO_APPS, "web": {**TWO_APPS["web"], "TIMEOUT": 2, "QRCONNECT_URL": "https://example.com/qr"}},
    )
    assert ids() == set()


@pytest.mark.parametrize(
    "overrides", [{"ASYNC_VIEWS": "yes"}, {"ASYNC_POLL_INTERVAL": 0}, {"ASYNC_POLL_INTERVAL": "fast"}]
)
def test_async_settings_of_the_wrong_kind_are_e023(settings, overrides):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, **overrides}
    assert "wechat_oauth.E023" in ids()


def test_async_views_forced_without_httpx_is_e023(settings, monkeypatch):
    from wechat_oauth import async_client

    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "ASYNC_VIEWS": True}
    assert "wechat_oauth.E023" not in ids()
    monkeypatch.setattr(async_client, "httpx_installed", lambda: False)
    assert "wechat_oauth.E023" in ids()


def test_retention_may_be_a_duration_as_purge_reads_it(settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "RETENTION": "7d"}
    assert "wechat_oauth.E009" not in ids()
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "RETENTION": "20s", "DEDUPE_WINDOW": 30}
    assert ids() == {"wechat_oauth.E009"}
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "RETENTION": "a week"}
    assert ids() == {"wechat_oauth.E009"}
