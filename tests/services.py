"""Which real services this test run can reach, probed once per process; servers it starts.

PostgreSQL and Redis tests use these to skip with a clear reason on a machine without the
service, and to fail instead when ``WECHAT_OAUTH_REQUIRE_SERVICES=1`` (as in ``.ci/run``).
The rest serves the tests that run sites as child processes (free ports, readiness, logs).
Importing this module has no side effects: settings modules import it.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import tempfile
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
        psycopg.connect(
            host=PG["HOST"], port=PG["PORT"], user=PG["USER"], dbname=PG["NAME"], connect_timeout=2
        ).close()
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
        MySQLdb.connect(
            host=MARIADB["HOST"],
            port=int(MARIADB["PORT"]),
            user=MARIADB["USER"],
            password=MARIADB["PASSWORD"],
            database=MARIADB["NAME"],
            connect_timeout=2,
        ).close()
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
def redis_cluster_unavailable() -> str | None:
    """None when this machine can start a local Redis Cluster (LocalRedisCluster)."""
    missing = [name for name in ("redis-server", "redis-cli") if shutil.which(name) is None]
    if missing:
        return f"{' and '.join(missing)} not on PATH (Debian: apt-get install redis-server)"
    try:
        import django_redis  # noqa: F401
        from redis.cluster import RedisCluster  # noqa: F401
    except ImportError:
        return "django-redis / redis-py with cluster support is not installed (pip install -e '.[test]')"
    return None


class DisposableRedis:
    """A redis-server of a test's own on a free port, that the test may kill and restart
    empty; ``args``: more of its command line (``--replicaof``, ``--sentinel`` ...)."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None
        self.directory = ""

    def start(self) -> None:
        import redis

        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        # Its own directory: a master serving a replica writes an RDB file there.
        self.directory = tempfile.mkdtemp(prefix="wechat-oauth-redis-")
        self.process = subprocess.Popen(
            [
                binary,
                *self.args,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.exceptions.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def restart_empty(self) -> None:
        self.kill()
        self.start()


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@functools.cache
def redis_cluster_ports() -> list[int]:
    """Three loopback ports for LocalRedisCluster, the same for the whole test process. Each
    node also listens on its port + 10000 (the cluster bus), so both must be free: searched
    upwards from a point that depends on the process id (runs side by side do not collide),
    below Linux's ephemeral range (32768 and up) for both: an outgoing connection of anything
    on the machine could otherwise take a bus port between this check and the node's start."""
    ports: list[int] = []
    port = 12000 + (os.getpid() % 1500) * 5
    while len(ports) < 3:
        if _bindable(port) and _bindable(port + 10000):
            ports.append(port)
        port += 1
    return ports


class LocalRedisCluster:
    """Three masters (no replicas) on loopback, started as `redis-server --cluster-enabled yes`
    and joined by `redis-cli --cluster create`: slots 0-5460, 5461-10922, 10923-16383."""

    def __init__(self, ports: list[int], directory: Path) -> None:
        self.ports = ports
        self.directory = directory
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for port in self.ports:
            node_dir = self.directory / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            self.processes.append(
                subprocess.Popen(
                    [
                        "redis-server",
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(node_dir),
                        "--logfile",
                        "redis.log",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in self.ports:
            self._wait(lambda port=port: self._cli(port, "ping") == "PONG", f"node {port} to start")
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in self.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for port in self.ports:
            self._wait(
                lambda port=port: "cluster_state:ok" in self._cli(port, "cluster", "info"),
                f"node {port} to see the cluster ok",
            )

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()
        self.processes.clear()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}"

    @staticmethod
    def _cli(port: int, *command: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(port), *command], capture_output=True, text=True, timeout=5
        )
        return done.stdout.strip()

    @staticmethod
    def _wait(ready: Any, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for Redis Cluster {what}")
            time.sleep(0.05)


@functools.cache
def browser_unavailable() -> str | None:
    missing = [path for path in ("/usr/bin/chromium", "/usr/bin/chromedriver") if not os.path.exists(path)]
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


def wait_until_answering(
    process: subprocess.Popen[Any], url: str, *, name: str, log_path: Path, timeout: float
) -> None:
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
