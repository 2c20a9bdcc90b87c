"""What the storm runs on: databases, a private Redis, gunicorn instances, the fake WeChat.

Every process started here is started in its own session and stopped by its own id (the
gunicorn master's process group: the master and its workers); :class:`Services` stops
everything it started on exit, whatever happened.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests

from wechat_oauth.testing.process import stop_process

ROOT = Path(__file__).resolve().parents[2]
PG = {"host": os.environ.get("STORM_PG_HOST", "127.0.0.1"),
      "port": os.environ.get("STORM_PG_PORT", "5432"),
      "user": os.environ.get("STORM_PG_USER", "postgres")}
DATABASES = {"guarded": "wechat_oauth_storm", "naive": "wechat_oauth_storm_naive"}
SETTINGS = {"guarded": "bench.storm.guarded.settings", "naive": "bench.storm.naive.settings"}
APP_ID = "wxstormbench000001"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_connect(dbname: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(dbname=dbname, autocommit=True, connect_timeout=5, **PG)


def recreate_database(name: str) -> None:
    with pg_connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    with pg_connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class PrivateRedis:
    """A redis-server of our own (no persistence), so a scenario may stop it and restart it empty
    without touching the machine's shared Redis."""

    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + 10
        while not self.ping():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server did not start: {self.log_path.read_text()[-500:]}")
            time.sleep(0.02)

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5,
                                    socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def dbsize(self) -> int | None:
        import redis

        try:
            return int(redis.Redis(port=self.port, socket_timeout=1).dbsize())
        except redis.RedisError:
            return None

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


@dataclass
class Instance:
    """One gunicorn master (``workers`` gthread workers of ``threads`` threads) of one site."""

    site: str
    name: str
    env: dict[str, str]
    log_path: Path
    workers: int = 2
    threads: int = 8
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [sys.executable, "-m", "gunicorn", "bench.storm.wsgi:application",
                   "--bind", self.netloc, "--workers", str(self.workers),
                   "--worker-class", "gthread", "--threads", str(self.threads),
                   "--backlog", "2048", "--timeout", "60", "--graceful-timeout", "3",
                   "--keep-alive", "5", "--log-level", "warning",
                   "--error-logfile", "-", "--name", f"storm-{self.site}-{self.name}"]
        if _has_control_socket():  # gunicorn >= 24: four masters must not share one socket
            command.append("--no-control-socket")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.site} {self.name} exited:\n{self.log_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/whoami/", timeout=2).status_code == 200 \
                        and len(self.worker_pids()) >= self.workers:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.site} {self.name} not ready:\n{self.log_text()[-3000:]}")
            time.sleep(0.1)

    def worker_pids(self) -> list[int]:
        """The master's live children (its workers), from /proc."""
        if self.process is None:
            return []
        children = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == self.process.pid and fields[0] != "Z":
                children.append(int(entry))
        return sorted(children)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_process(self.process, group=True)
        self.process = None


def _has_control_socket() -> bool:
    from gunicorn import config

    return hasattr(config, "ControlSocketDisable") or any(
        getattr(setting, "name", "") == "control_socket_disable"
        for setting in vars(config).values() if isinstance(setting, type))


def site_environment(site: str, *, fake_url: str, app_secret: str, redis_url: str,
                     redis_socket_timeout: float = 0.05) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORM_")}
    env.update({
        "DJANGO_SETTINGS_MODULE": SETTINGS[site],
        "STORM_SITE": site,
        "STORM_DB_NAME": DATABASES[site],
        "STORM_FAKE_URL": fake_url,
        "STORM_APP_ID": APP_ID,
        "STORM_APP_SECRET": app_secret,
        "STORM_SECRET_KEY": f"storm-{secrets.token_hex(16)}",
        "STORM_PG_HOST": PG["host"], "STORM_PG_PORT": str(PG["port"]), "STORM_PG_USER": PG["user"],
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    })
    if site == "guarded" and redis_url:
        env["STORM_REDIS_URL"] = redis_url
        env["STORM_REDIS_SOCKET_TIMEOUT"] = str(redis_socket_timeout)
    return env


def migrate(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "django", "migrate", "--verbosity", "0"],
                            cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
