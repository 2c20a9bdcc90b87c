"""Skip-or-fail rules for tests that need real services, and the aliases they use."""

from __future__ import annotations

import pytest
from django.conf import settings

from tests import services

SERVICE_MARKERS = {
    "postgres": services.postgres_unavailable,
    "redis": services.redis_unavailable,
    "browser": services.browser_unavailable,
}


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
def sqlite_alias() -> str:
    """The database alias that is a SQLite file in this run."""
    return _alias_of("django.db.backends.sqlite3")


@pytest.fixture
def redis_alias() -> str:
    """The cache alias that is Redis in this run (tests using it are marked redis)."""
    return "redis"


@pytest.fixture
def unused_port() -> int:
    """A localhost port nothing listens on (connections to it are refused)."""
    return services.free_port()
