"""``python -m bench.storm --pgbouncer``: both sites reach PostgreSQL through a PgBouncer of the
bench's own, in transaction pooling.

:class:`PgBouncer` is one pgbouncer process on a free loopback port, its ``pgbouncer.ini`` and
``userlist.txt`` in a temporary directory (``auth_type = trust``, ``pool_mode = transaction``,
``default_pool_size`` :data:`POOL_SIZE` per database and user, no reserve pool: fewer server
connections than the storm has browsers per site, so clients queue in PgBouncer for one), every
database name forwarded to the PostgreSQL it fronts (a ``*`` entry). As root it runs as the
``postgres`` OS user (pgbouncer refuses root), who owns the directory.

:class:`PooledPostgres` is the storm's :class:`~bench.storm.databases.Postgres` whose *sites*
connect through it (``environment``, ``django_database``: its port, and
``DISABLE_SERVER_SIDE_CURSORS = True``, which transaction pooling needs) while the bench's own
reads (creating and dropping databases, the rows, pg_stat_activity for the faults and the
connection sampler) go to PostgreSQL directly. The pgbouncer starts with the first site's
environment and stops with :meth:`PooledPostgres.close` (the stack's end). The
database_restart fault's private cluster gets a pgbouncer of its own in front of it
(:meth:`PooledPostgres.alongside`), which stays up while PostgreSQL restarts behind it
(``server_login_retry`` 0.1 s: it tries PostgreSQL again at once, instead of refusing
clients for the default 15 s after a failed login).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.storm import databases
from bench.storm.databases import Database, Postgres
from bench.storm.services import free_port

#: default_pool_size of the bench's pgbouncer: server connections per database (site) and user.
POOL_SIZE = 4
POOL_MODE = "transaction"


def pgbouncer_binary() -> str | None:
    """The pgbouncer program (PATH, then Debian's /usr/sbin), or None."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(p)), None)


def unavailable() -> str | None:
    """Why a pgbouncer cannot run here, or None."""
    if pgbouncer_binary() is None:
        return "pgbouncer is not installed (Debian: apt-get install pgbouncer)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root (pgbouncer refuses root) and no 'postgres' OS user to run it as"
    return None


def version() -> str:
    binary = pgbouncer_binary()
    if binary is None:
        return "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.split("\n", 1)[0].removeprefix("PgBouncer ").strip() or "?"
    return "?"


@dataclass
class PgBouncer:
    """One pgbouncer in front of the PostgreSQL at ``target`` (host, port)."""

    target_host: str = "127.0.0.1"
    target_port: str = "5432"
    pool_size: int = POOL_SIZE
    pool_mode: str = POOL_MODE
    port: int = field(default_factory=free_port)
    #: Where its log is copied when it stops (None: not kept).
    log_path: Path | None = None
    directory: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def config(self) -> str:
        assert self.directory is not None
        return "\n".join(
            [
                "[databases]",
                f"* = host={self.target_host} port={self.target_port}",
                "",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {self.port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {self.directory / 'userlist.txt'}",
                f"pool_mode = {self.pool_mode}",
                f"default_pool_size = {self.pool_size}",
                "min_pool_size = 0",
                "reserve_pool_size = 0",
                "max_client_conn = 1000",
                # After a failed server login (PostgreSQL restarting: "the database system is
                # starting up"), pgbouncer refuses every client at once ("server login has been
                # failing") until it tries again: 15 s by default, 0.1 s here.
                "server_login_retry = 0.1",
                # A client waits for a server connection at most this long, then gets an error.
                "query_wait_timeout = 30",
                "ignore_startup_parameters = extra_float_digits",
                "admin_users = postgres",
                f"logfile = {self.directory / 'pgbouncer.log'}",
                f"pidfile = {self.directory / 'pgbouncer.pid'}",
                "",
            ]
        )

    def start(self, timeout: float = 15) -> None:
        binary = pgbouncer_binary()
        reason = unavailable()
        if binary is None or reason is not None:
            raise RuntimeError(reason or "no pgbouncer")
        self.directory = Path(tempfile.mkdtemp(prefix="storm-pgbouncer-"))
        (self.directory / "userlist.txt").write_text('"postgres" ""\n')
        (self.directory / "pgbouncer.ini").write_text(self.config())
        as_postgres: dict[str, Any] = {}
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.directory, *self.directory.iterdir()):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            as_postgres = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        self.process = subprocess.Popen(
            [binary, str(self.directory / "pgbouncer.ini")],
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(self.directory / "stderr.log").open("ab"),
            start_new_session=True,
            **as_postgres,
        )
        deadline = time.monotonic() + timeout
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self.log_text()[-800:]
                self.stop()
                raise RuntimeError(f"pgbouncer did not start: {log}")
            time.sleep(0.02)

    def log_text(self) -> str:
        if self.directory is None:
            return ""
        parts = []
        for name in ("pgbouncer.log", "stderr.log"):
            with contextlib.suppress(OSError):
                parts.append((self.directory / name).read_text(errors="replace"))
        return "".join(parts)

    def stop(self) -> None:
        """SIGTERM (pgbouncer's immediate shutdown), wait; keep the log; delete the directory."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
            self.process = None
        if self.directory is not None:
            if self.log_path is not None:
                with contextlib.suppress(OSError):
                    self.log_path.parent.mkdir(parents=True, exist_ok=True)
                    self.log_path.write_text(self.log_text())
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def facts(self) -> dict[str, Any]:
        return {
            "version": version(),
            "pool_mode": self.pool_mode,
            "default_pool_size": self.pool_size,
            "reserve_pool_size": 0,
            "port": self.port,
            "in_front_of": f"{self.target_host}:{self.target_port}",
            "auth_type": "trust",
        }


class PooledPostgres(Postgres):
    """PostgreSQL whose sites connect through a :class:`PgBouncer` (the bench: directly)."""

    def __init__(self, direct: Postgres, pool_size: int = POOL_SIZE, log_path: Path | None = None) -> None:
        super().__init__(dict(direct.server))
        self.pgbouncer = PgBouncer(
            target_host=self.server["host"],
            target_port=str(self.server["port"]),
            pool_size=pool_size,
            log_path=log_path,
        )
        #: The pgbouncers of other servers' databases (:meth:`alongside`).
        self.others: list[PooledPostgres] = []

    def unavailable(self) -> str | None:
        return unavailable() or super().unavailable()

    def _started(self) -> PgBouncer:
        if not self.pgbouncer.running:
            self.pgbouncer.stop()  # a pgbouncer that died: its log kept, a new one started
            self.pgbouncer.start()
        return self.pgbouncer

    def environment(self, site: str) -> dict[str, str]:
        pgbouncer = self._started()
        return {
            **super().environment(site),
            "STORM_DB_HOST": "127.0.0.1",
            "STORM_DB_PORT": str(pgbouncer.port),
            "STORM_DB_DISABLE_SERVER_SIDE_CURSORS": "1",
        }

    def django_database(self, site: str, conn_max_age: int = 0) -> dict[str, Any]:
        pgbouncer = self._started()
        return {
            **super().django_database(site, conn_max_age),
            "HOST": "127.0.0.1",
            "PORT": str(pgbouncer.port),
            "DISABLE_SERVER_SIDE_CURSORS": True,
        }

    def describe(self, sites: tuple[str, ...] = ("guarded", "naive")) -> str:
        return (
            f"{super().describe(sites)}; the sites through PgBouncer {version()} at "
            f"127.0.0.1:{self.pgbouncer.port} (pool_mode {self.pgbouncer.pool_mode}, "
            f"default_pool_size {self.pgbouncer.pool_size} per database, no reserve pool; "
            "DISABLE_SERVER_SIDE_CURSORS True); the bench's own queries direct"
        )

    def alongside(self, other: Database) -> Database:
        """Another PostgreSQL (the restart fault's private cluster), through a pgbouncer of its
        own with the same settings."""
        if not isinstance(other, Postgres) or isinstance(other, PooledPostgres):
            return other
        log = self.pgbouncer.log_path
        pooled = PooledPostgres(
            other,
            self.pgbouncer.pool_size,
            log.with_name(f"{log.stem}-{other.server['port']}{log.suffix}") if log else None,
        )
        self.others.append(pooled)
        return pooled

    def close(self) -> None:
        for pooled in self.others:
            pooled.close()
        self.others.clear()
        self.pgbouncer.stop()

    def facts(self) -> dict[str, Any]:
        return {
            **self.pgbouncer.facts(),
            "sites": "guarded and naive, DISABLE_SERVER_SIDE_CURSORS True, CONN_MAX_AGE as the run's",
            "databases": [databases.name_of(site) for site in ("guarded", "naive")],
            "bench_queries": "direct to PostgreSQL (database setup, rows, pg_stat_activity)",
            "database_restart_fault": "a pgbouncer of its own (same settings) in front of the "
            "private cluster, up while PostgreSQL restarts behind it",
        }


#: The sites' databases of a --pgbouncer run: names of their own, so that it may run beside a
#: storm without pgbouncer on the same PostgreSQL.
OWN_NAMES = {"guarded": "wechat_oauth_storm_pgbouncer", "naive": "wechat_oauth_storm_naive_pgbouncer"}


def use_own_names() -> None:
    """The storm's databases (bench/storm/databases.py: NAMES) for this process: OWN_NAMES."""
    databases.NAMES.update(OWN_NAMES)
