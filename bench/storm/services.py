"""What the storm runs on besides its databases (bench/storm/databases.py): a private Redis and
PostgreSQL, gunicorn instances, the fake WeChat.

Every process started here is started in its own session and stopped by its own id (the
gunicorn master's process group: the master and its workers; the private PostgreSQL through
pg_ctl on its own data directory); :class:`~bench.storm.stack.Stack` stops everything it started on exit,
whatever happened.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.storm.apps import KINDS, WECOM_AGENT_ID, app_id
from bench.storm.databases import Database, MariaDB, Postgres
from bench.storm.serving import application, worker_arguments
from wechat_oauth.testing.process import stop_process

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {"guarded": "bench.storm.guarded.settings", "naive": "bench.storm.naive.settings"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while not self.ping():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server did not start: {self.log_path.read_text()[-500:]}")
            time.sleep(0.02)

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5).ping())
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


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl are: pg_config's bindir, else the newest Debian-style
    /usr/lib/postgresql/<version>/bin, else next to the initdb on the PATH."""
    candidates: list[Path] = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        candidates.append(
            Path(
                subprocess.run(
                    ["pg_config", "--bindir"], capture_output=True, text=True, timeout=10, check=True
                ).stdout.strip()
            )
        )
    candidates += sorted(
        (Path(d) for d in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda d: _version_key(d.parent.name),
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    return next((d for d in candidates if (d / "initdb").exists() and (d / "pg_ctl").exists()), None)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


@dataclass
class PrivatePostgres:
    """A disposable PostgreSQL cluster of our own (initdb into a temporary directory, fsync off),
    so a scenario may stop and restart it without touching the machine's shared cluster.

    PostgreSQL refuses to run as root: as root, initdb and pg_ctl run as the ``postgres`` OS
    user, who owns the directory. :meth:`remove` stops it, keeps its log, deletes the rest.
    """

    log_path: Path
    port: int = field(default_factory=free_port)
    bindir: Path | None = field(default_factory=postgres_bindir)
    directory: Path | None = None
    how_stopped: str = "pg_ctl stop -m fast (every session ended, open transactions rolled back)"

    def database(self) -> Postgres:
        """The storm's databases on this cluster."""
        return Postgres({"host": "127.0.0.1", "port": str(self.port), "user": "postgres"})

    @property
    def data(self) -> Path:
        assert self.directory is not None
        return self.directory / "data"

    def unavailable(self) -> str | None:
        """Why the cluster cannot run here, or None."""
        if self.bindir is None:
            return "no initdb/pg_ctl found (pg_config --bindir, /usr/lib/postgresql/*/bin, PATH)"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root (PostgreSQL refuses root) and no 'postgres' OS user to run it as"
        return None

    def start(self) -> None:
        """Create the cluster on the first call; start it and wait until it accepts connections."""
        if self.directory is None:
            self._create()
        self._run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "30",
            "-D",
            str(self.data),
            "-l",
            str(self.data.parent / "postgres.log"),
        )

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop``; "fast" ends every session at once (open transactions roll back)."""
        self._run("pg_ctl", "stop", "-w", "-t", "30", "-m", mode, "-D", str(self.data))

    def remove(self) -> None:
        """Stop it if it runs, copy its log to ``log_path``, delete the directory."""
        if self.directory is None:
            return
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop()
            except RuntimeError:
                with contextlib.suppress(RuntimeError):
                    self.stop("immediate")
        with contextlib.suppress(OSError):
            shutil.copyfile(self.directory / "postgres.log", self.log_path)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None

    def _create(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="storm-pg-"))
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--locale=C",
            "--encoding=UTF8",
            "--no-sync",
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.directory}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 60\nshared_buffers = 16MB\n"
            )

    def _run(self, program: str, *args: str) -> None:
        """One of PostgreSQL's programs, as ``postgres`` if we are root; RuntimeError with its
        output if it fails."""
        assert self.bindir is not None and self.directory is not None
        as_postgres: dict[str, Any] = {}
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            as_postgres = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        command = [str(self.bindir / program), *args]
        try:
            done = subprocess.run(
                command,
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=90,
                start_new_session=True,
                check=False,
                **as_postgres,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:  # not executable, or hung
            raise RuntimeError(f"{' '.join(command)}: {exc}") from None
        if done.returncode:
            raise RuntimeError(
                f"{' '.join(command)} failed (exit {done.returncode}): "
                f"{(done.stdout + done.stderr).strip()[-500:]}"
            )


@dataclass
class PrivateMariaDB:
    """A disposable MariaDB server of our own (mariadb-install-db into a temporary directory,
    binary log off, no flush at commit), so a scenario may stop and restart it without touching
    the machine's shared server. As root, mariadbd runs as the ``mysql`` OS user, who owns the
    directory. :meth:`stop` is SIGTERM and a wait for the process to end: MariaDB's normal
    shutdown, which ends every session (open transactions roll back), like ``pg_ctl stop -m
    fast``. :meth:`remove` stops it, keeps its error log, deletes the rest."""

    log_path: Path
    port: int = field(default_factory=free_port)
    directory: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    how_stopped: str = "SIGTERM to mariadbd (normal shutdown: sessions ended, open transactions rolled back)"

    INSTALL = "mariadb-install-db"
    SERVER = "mariadbd"

    def database(self) -> MariaDB:
        """The storm's databases on this server."""
        return MariaDB({"host": "127.0.0.1", "port": str(self.port), "user": "root", "password": ""})

    def _program(self, name: str) -> str | None:
        return shutil.which(name) or next(
            (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
        )

    def unavailable(self) -> str | None:
        for name in (self.INSTALL, self.SERVER):
            if self._program(name) is None:
                return f"no {name} found (PATH, /usr/sbin, /usr/bin)"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("mysql")
            except KeyError:
                return "running as root and no 'mysql' OS user to run mariadbd as"
        return None

    def _as_user(self) -> list[str]:
        return ["--user=mysql"] if os.geteuid() == 0 else []

    def start(self, timeout: float = 30) -> None:
        """Create the server's data on the first call; start it and wait until it answers."""
        if self.directory is None:
            self._create()
        assert self.directory is not None
        data = self.directory / "data"
        with (self.directory / "mariadbd.out").open("ab") as out:
            self.process = subprocess.Popen(
                [
                    str(self._program(self.SERVER)),
                    "--no-defaults",
                    f"--datadir={data}",
                    *self._as_user(),
                    f"--port={self.port}",
                    "--bind-address=127.0.0.1",
                    f"--socket={self.directory / 'mariadbd.sock'}",
                    f"--pid-file={self.directory / 'mariadbd.pid'}",
                    f"--log-error={self.directory / 'error.log'}",
                    "--skip-log-bin",
                    "--innodb-flush-log-at-trx-commit=0",
                    "--innodb-buffer-pool-size=32M",
                    "--max-connections=80",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.database().version()
                return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mariadbd did not start: {self._log_tail()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, and wait until it has exited (SIGKILL if it takes over a minute)."""
        stop_process(self.process, grace=60)
        self.process = None

    def remove(self) -> None:
        if self.directory is None:
            return
        self.stop()
        with contextlib.suppress(OSError):
            shutil.copyfile(self.directory / "error.log", self.log_path)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None

    def _log_tail(self) -> str:
        assert self.directory is not None
        with contextlib.suppress(OSError):
            return (self.directory / "error.log").read_text(errors="replace")[-500:]
        return "(no log)"

    def _create(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="storm-mariadb-"))
        if os.geteuid() == 0:
            owner = pwd.getpwnam("mysql")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        command = [
            str(self._program(self.INSTALL)),
            "--no-defaults",
            f"--datadir={self.directory / 'data'}",
            *self._as_user(),
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=90,
                start_new_session=True,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f"{' '.join(command)}: {exc}") from None
        if done.returncode:
            raise RuntimeError(
                f"{' '.join(command)} failed (exit {done.returncode}): "
                f"{(done.stdout + done.stderr).strip()[-500:]}"
            )


@dataclass
class Instance:
    """One gunicorn master of one site: ``workers`` gthread workers of ``threads`` threads
    serving ``wsgi`` (the storm's sites: bench/storm/wsgi.py; a library site: its own), or with
    ``server="asgi"`` uvicorn workers serving bench/storm/asgi.py (bench/storm/serving.py)."""

    site: str
    name: str
    env: dict[str, str]
    log_path: Path
    workers: int = 2
    threads: int = 8
    wsgi: str = "bench.storm.wsgi:application"
    server: str = "wsgi"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            application(self.server, self.wsgi),
            "--bind",
            self.netloc,
            "--workers",
            str(self.workers),
            *worker_arguments(self.server, self.threads),
            "--backlog",
            "2048",
            "--timeout",
            "60",
            "--graceful-timeout",
            "3",
            "--keep-alive",
            "5",
            "--log-level",
            "warning",
            "--error-logfile",
            "-",
            "--name",
            f"storm-{self.site}-{self.name}",
        ]
        if _has_control_socket():  # gunicorn >= 24: four masters must not share one socket
            command.append("--no-control-socket")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.site} {self.name} exited:\n{self.log_text()[-3000:]}")
            try:
                if (
                    requests.get(f"{self.url}/whoami/", timeout=2).status_code == 200
                    and len(self.worker_pids()) >= self.workers
                ):
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
        for setting in vars(config).values()
        if isinstance(setting, type)
    )


def server_environment(settings_module: str) -> dict[str, str]:
    """This process's environment without the storm's own variables (``STORM_*``), for a server
    of ``settings_module`` run from this checkout (first on its path)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORM_")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": settings_module,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def site_environment(
    site: str,
    db: Database,
    *,
    fake_url: str,
    app_secrets: dict[str, str],
    redis_url: str,
    redis_socket_timeout: float = 0.05,
    conn_max_age: int = 0,
    async_views: bool | None = None,
) -> dict[str, str]:
    """The site's environment, its database in ``db``; ``app_secrets``: the secret of the
    site's app of each kind (bench/storm/apps.py); ``async_views``: the guarded site's
    ``ASYNC_VIEWS`` (``STORM_ASYNC_VIEWS`` 1 or 0; None: the setting left out, its default)."""
    env = server_environment(SETTINGS[site])
    env.update(
        {
            "STORM_SITE": site,
            **db.environment(site),
            "STORM_FAKE_URL": fake_url,
            **{f"{KINDS[kind].env}_APP_ID": app_id(site, kind) for kind in KINDS},
            **{f"{KINDS[kind].env}_APP_SECRET": app_secrets[kind] for kind in KINDS},
            "STORM_WECOM_AGENT_ID": WECOM_AGENT_ID,
            "STORM_SECRET_KEY": f"storm-{secrets.token_hex(16)}",
            "STORM_CONN_MAX_AGE": str(conn_max_age),
        }
    )
    if async_views is not None:
        env["STORM_ASYNC_VIEWS"] = "1" if async_views else "0"
    if site == "guarded" and redis_url:
        env["STORM_REDIS_URL"] = redis_url
        env["STORM_REDIS_SOCKET_TIMEOUT"] = str(redis_socket_timeout)
    return env


def migrate(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "django", "migrate", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def finish_migration(process: subprocess.Popen[bytes]) -> None:
    """Wait for a :func:`migrate` process; RuntimeError with the end of its output if it failed."""
    output, _ = process.communicate(timeout=120)
    if process.returncode:
        raise RuntimeError(f"migrate failed: {output.decode(errors='replace')[-2000:]}")
