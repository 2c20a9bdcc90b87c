"""Which real services this test run can reach, probed once per process; servers it starts.

PostgreSQL and Redis tests use these to skip with a clear reason on a machine without the
service, and to fail instead when ``WECHAT_OAUTH_REQUIRE_SERVICES=1`` (as in ``.ci/run``).
The rest serves the tests that run sites as child processes (free ports, readiness, logs).
Importing this module has no side effects: settings modules import it.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PG = {
    "HOST": os.environ.get("WECHAT_OAUTH_TEST_PG_HOST", "127.0.0.1"),
    "PORT": os.environ.get("WECHAT_OAUTH_TEST_PG_PORT", "5432"),
    "USER": os.environ.get("WECHAT_OAUTH_TEST_PG_USER", "postgres"),
    "NAME": os.environ.get("WECHAT_OAUTH_TEST_PG_NAME", "test"),
}
MARIADB = {
    "HOST": os.environ.get("WECHAT_OAUTH_TEST_MARIADB_HOST", "127.0.0.1"),
    "PORT": os.environ.get("WECHAT_OAUTH_TEST_MARIADB_PORT", "3306"),
    "USER": os.environ.get("WECHAT_OAUTH_TEST_MARIADB_USER", "root"),
    "PASSWORD": os.environ.get("WECHAT_OAUTH_TEST_MARIADB_PASSWORD", ""),
    "NAME": os.environ.get("WECHAT_OAUTH_TEST_MARIADB_NAME", "test"),
}
REDIS_URL = os.environ.get("WECHAT_OAUTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

REQUIRED = os.environ.get("WECHAT_OAUTH_REQUIRE_SERVICES") == "1"

#: The environment variable tests/server_settings.py reads its configuration from (JSON), set by
#: tests/live_servers.py for the servers it starts.
CONFIG_VARIABLE = "WECHAT_OAUTH_E2E_SERVER"


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
def mariadb_unavailable() -> str | None:
    """None when MariaDB (or MySQL) answers, else why not."""
    try:
        import MySQLdb
    except ImportError:
        return "mysqlclient is not installed (pip install -e '.[mysql]'; needs libmariadb-dev)"
    try:
        MySQLdb.connect(host=MARIADB["HOST"], port=int(MARIADB["PORT"]), user=MARIADB["USER"],
                        password=MARIADB["PASSWORD"], database=MARIADB["NAME"],
                        connect_timeout=2).close()
    except Exception as exc:  # any failure to connect means: not usable here
        return f"MariaDB at {MARIADB['HOST']}:{MARIADB['PORT']} is not reachable ({type(exc).__name__})"
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


def read_log(path: Path) -> str:
    """A child server's log so far ("" before it exists), to show when a test fails."""
    try:
        return path.read_text("utf-8", "replace")
    except FileNotFoundError:
        return ""


def wait_until_answering(process: subprocess.Popen[Any], url: str, *, name: str, log_path: Path,
                         timeout: float) -> None:
    """Return once ``url`` answers 200; RuntimeError with the log if ``process`` exits first, or
    after ``timeout`` s (the caller stops the process)."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{read_log(log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet, or not ready to answer 200
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not answer within {timeout:g} s:\n{read_log(log_path)}")
        time.sleep(0.05)
