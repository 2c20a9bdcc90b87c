"""Skip-or-fail rules for tests that need real services, and the aliases they use."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from tests import services

# The fake WeChat's fixtures (fake_wechat, fake_wechat_server): opt-in, as for any site.
pytest_plugins = ["wechat_oauth.testing.pytest_plugin"]

SERVICE_MARKERS = {
    "postgres": services.postgres_unavailable,
    "mariadb": services.mariadb_unavailable,
    "redis": services.redis_unavailable,
    "redis_cluster": services.redis_cluster_unavailable,
    "browser": services.browser_unavailable,
}


#: Test modules of a drop-in, and the app their site's settings install: they run under that
#: site's settings only (tox's social/allauth envs, ``pytest --ds ...``), and are not collected
#: otherwise (not skipped: nothing is missing, they belong to another site).
SITE_MODULES = {
    "test_contrib_social.py": "social_django",
    "test_storm_social.py": "social_django",
    "test_contrib_allauth.py": "wechat_oauth.contrib.allauth",
    "test_contrib_allauth_sites.py": "wechat_oauth.contrib.allauth",
    "test_storm_allauth.py": "wechat_oauth.contrib.allauth",
    # The demo in each drop-in mode (its own server process and settings; run in the library's
    # envs, where it is installed).
    "test_demo_social.py": "social_django",
    "test_demo_allauth.py": "wechat_oauth.contrib.allauth",
}


@pytest.fixture(scope="session", autouse=True)
def close_claim_connections(django_db_setup: None) -> Iterator[None]:
    """The async guard's claim threads keep their connections a moment after each claim, and
    so does asgiref's thread for AsyncClient's steps: close them before the test databases are
    dropped (PostgreSQL refuses to drop a database with a session open)."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    from wechat_oauth.guard.exchange_loop import claim_threads

    claim_threads.close_connections()
    # AsyncClient's requests in asyncio.run() send thread-sensitive steps to asgiref's one
    # shared thread, whose connections outlive the tests too.
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


def pytest_ignore_collect(collection_path: Any, config: pytest.Config) -> bool | None:
    app = SITE_MODULES.get(collection_path.name)
    if app is not None and app not in settings.INSTALLED_APPS:
        return True
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    for name, unavailable in SERVICE_MARKERS.items():
        if item.get_closest_marker(name) is None:
            continue
        reason = unavailable()
        if reason is None:
            continue
        if services.REQUIRED:
            pytest.fail(f"{reason}; required because WECHAT_OAUTH_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(reason)


def _alias_of(engine: str) -> str:
    for alias, conf in settings.DATABASES.items():
        if conf["ENGINE"] == engine:
            return alias
    pytest.fail(f"no {engine} database alias in this run")


@pytest.fixture
def pg_alias() -> str:
    """The database alias that is PostgreSQL in this run (tests using it are marked postgres)."""
    return _alias_of("django.db.backends.postgresql")


@pytest.fixture
def mariadb_alias() -> str:
    """The database alias that is MariaDB in this run (tests using it are marked mariadb)."""
    return _alias_of("django.db.backends.mysql")


@pytest.fixture
def sqlite_alias() -> str:
    """The database alias that is a SQLite file in this run."""
    return _alias_of("django.db.backends.sqlite3")


DATABASE_FIXTURES = {"sqlite": "sqlite_alias", "postgres": "pg_alias", "mariadb": "mariadb_alias"}


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def alias(request: pytest.FixtureRequest) -> str:
    """Each database of the run in turn: a SQLite file, PostgreSQL, MariaDB."""
    return request.getfixturevalue(DATABASE_FIXTURES[request.param])


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def server_alias(request: pytest.FixtureRequest) -> str:
    """Each database server of the run in turn (PostgreSQL, MariaDB): what SQLite has no
    equivalent of (lock timeouts, a server that cuts a holder off)."""
    return request.getfixturevalue(DATABASE_FIXTURES[request.param])


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.LocalRedisCluster]:
    """A 3-master Redis Cluster on loopback, started once per test session on first use."""
    cluster = services.LocalRedisCluster(
        services.redis_cluster_ports(), tmp_path_factory.mktemp("redis-cluster")
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["redis", pytest.param("redis_cluster", marks=pytest.mark.redis_cluster)])
def redis_alias(request: pytest.FixtureRequest) -> str:
    """Each Redis of the run in turn, as a cache alias: one server, then a 3-master Redis
    Cluster through ClusterConnectionFactory (tests using it are marked redis)."""
    if request.param == "redis_cluster":
        request.getfixturevalue("redis_cluster")
    return request.param


@pytest.fixture
def front(settings: Any, fake_wechat: Any, redis_alias: str) -> Iterator[Any]:
    """WECHAT_OAUTH uses the suite's Redis as its front; its keys are removed afterwards."""
    from django.core.cache import caches

    from wechat_oauth.guard.cache import cache_front

    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "CACHE_ALIAS": redis_alias}
    caches[redis_alias].delete_pattern("wechat_oauth:*")
    yield cache_front()
    caches[redis_alias].delete_pattern("wechat_oauth:*")


@pytest.fixture
def unused_port() -> int:
    """A localhost port nothing listens on (connections to it are refused)."""
    return services.free_port()


@pytest.fixture(autouse=True)
def fresh_code_budgets() -> None:
    """Each test starts with the budgets of new codes unspent (they live in the cache, which
    outlives a test): one test's flood of made-up codes must not refuse the next test's logins."""
    from wechat_oauth.budget import forget_budgets

    forget_budgets()


class _RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.texts.append(text)


@pytest.fixture(autouse=True)
def no_secret_in_any_log_record(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every log record of every test, at DEBUG, is searched for the app secret and for every
    code and token the fake WeChat handed out during the test: none may appear."""
    fake = request.getfixturevalue("fake_wechat") if "fake_wechat" in request.fixturenames else None
    handler = _RecordingHandler()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
    # (the fake knows every app it was told of, secrets included; a site may have no APP_SECRET)
    secrets = {(getattr(settings, "WECHAT_OAUTH", None) or {}).get("APP_SECRET", "")}
    if fake is not None:
        secrets |= fake.issued_secrets()
    leaks = [(secret, text) for text in handler.texts for secret in secrets if secret and secret in text]
    assert not leaks, f"secrets in log records: {leaks[:3]}"
