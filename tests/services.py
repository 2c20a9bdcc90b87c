"""Which real services this test run can reach, probed once per process.

PostgreSQL and Redis tests use these to skip with a clear reason on a machine without the
service, and to fail instead when ``WECHAT_OAUTH_REQUIRE_SERVICES=1`` (as in ``.ci/run``).
"""

from __future__ import annotations

import functools
import os
import shutil
import socket

PG = {
    "HOST": os.environ.get("WECHAT_OAUTH_TEST_PG_HOST", "127.0.0.1"),
    "PORT": os.environ.get("WECHAT_OAUTH_TEST_PG_PORT", "5432"),
    "USER": os.environ.get("WECHAT_OAUTH_TEST_PG_USER", "postgres"),
    "NAME": os.environ.get("WECHAT_OAUTH_TEST_PG_NAME", "test"),
}
REDIS_URL = os.environ.get("WECHAT_OAUTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

REQUIRED = os.environ.get("WECHAT_OAUTH_REQUIRE_SERVICES") == "1"


@functools.cache
def postgres_unavailable() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    try:
        psycopg.connect(host=PG["HOST"], port=PG["PORT"], user=PG["USER"], dbname=PG["NAME"],
                        connect_timeout=2).close()
    except Exception as exc:  # any failure to connect means: not usable here
        return f"PostgreSQL at {PG['HOST']}:{PG['PORT']} is not reachable ({type(exc).__name__})"
    return None


@functools.cache
def redis_unavailable() -> str | None:
    try:
        import django_redis  # noqa: F401
        import redis
    except ImportError:
        return "django-redis is not installed (pip install -e '.[test]')"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1).ping()
    except Exception as exc:
        return f"Redis at {REDIS_URL} is not reachable ({type(exc).__name__})"
    return None


@functools.cache
def browser_unavailable() -> str | None:
    missing = [path for path in ("/usr/bin/chromium", "/usr/bin/chromedriver")
               if not os.path.exists(path)]
    if missing:
        return "Chromium is not installed (apt-get install chromium chromium-driver): " + ", ".join(missing)
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def which(name: str) -> str | None:
    return shutil.which(name)
