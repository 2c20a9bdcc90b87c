"""The databases the storm runs on, one interface for the three it supports:

* ``postgres``: Django's postgresql backend (psycopg), a database per site on the shared
  cluster (``STORM_PG_HOST``/``PORT``/``USER``, default 127.0.0.1:5432, postgres);
* ``mariadb``: Django's mysql backend with mysqlclient, a database per site (utf8mb4,
  utf8mb4_bin as the test suite has it) on the shared server (``STORM_MARIADB_HOST``/``PORT``/
  ``USER``/``PASSWORD``, default 127.0.0.1:3306, root, no password);
* ``sqlite``: Django's default settings (``ENGINE`` and ``NAME`` only: no ``transaction_mode``,
  the default ``timeout``), a file per site in a temporary directory, shared by every
  instance and worker of that site.

The bench reads each site's database through :meth:`Database.rows` (SQL with ``%s``
placeholders, whatever the driver) and asks the database, where it can say, which worker holds
a claim (:meth:`Database.claim_holders`: the worker-kill fault), how many claims are held and
waited on (:meth:`Database.claims`: the restart fault, servers only) and how many connections
each site has open (:meth:`Database.connections`: None on SQLite, which has no server; the
figure then says so).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

#: Database (or file) name of each site of the guarded-vs-naive storm; any other site (a library
#: site, bench/storm/libraries.py) gets ``wechat_oauth_storm_<site>`` (:func:`name_of`).
NAMES = {"guarded": "wechat_oauth_storm", "naive": "wechat_oauth_storm_naive"}
#: The sites :meth:`Database.describe` names by default.
STORM_SITES = ("guarded", "naive")
KINDS = ("postgres", "mariadb", "sqlite")
LABELS = {"postgres": "PostgreSQL", "mariadb": "MariaDB", "sqlite": "SQLite"}


def name_of(site: str) -> str:
    """The database (SQLite: file) name of ``site``."""
    return NAMES.get(site, f"wechat_oauth_storm_{site}")


def _names(sites: tuple[str, ...]) -> str:
    return " and ".join(name_of(site) for site in sites)


class Database:
    """One kind of database, holding both sites' databases."""

    kind: ClassVar[str]
    #: Bind parameter of the driver (the bench writes ``%s``).
    paramstyle: ClassVar[str] = "%s"
    #: Seconds between two looks at :meth:`claim_holders` or :meth:`claims` while waiting.
    poll_interval: ClassVar[float] = 0.01

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    def unavailable(self) -> str | None:
        """Why the storm cannot run on this database here, or None."""
        try:
            self.version()
        except Exception as exc:  # any failure to connect means: not usable here
            return f"{self.label} is not reachable ({type(exc).__name__}: {exc})"[:300]
        return None

    def version(self) -> str:
        raise NotImplementedError

    def create(self, site: str) -> None:
        """The site's database, empty (dropped first if it exists)."""
        raise NotImplementedError

    def drop(self, site: str) -> None:
        raise NotImplementedError

    def remove(self) -> None:
        """After both sites' databases are dropped: what else this database left (SQLite: the
        directory of its files)."""

    def environment(self, site: str) -> dict[str, str]:
        """``STORM_DB_*`` for bench/storm/server_settings.py."""
        raise NotImplementedError

    def alongside(self, other: Database) -> Database:
        """``other`` (another server's databases: the restart fault's private one), reached
        as the sites reach this one (--pgbouncer: through a pgbouncer of its own)."""
        return other

    def close(self) -> None:
        """At the stack's end: stop what this database started for the sites (a pgbouncer)."""

    def django_database(self, site: str, conn_max_age: int = 0) -> dict[str, Any]:
        """The site's database as a Django ``DATABASES`` entry (for a site whose settings take
        one whole, such as the library sites')."""
        raise NotImplementedError

    def describe(self, sites: tuple[str, ...] = STORM_SITES) -> str:
        """Where the sites' databases are and how they are configured, for the report."""
        raise NotImplementedError

    @contextlib.contextmanager
    def connect(self, site: str | None = None) -> Iterator[Any]:
        """An autocommit DB-API connection to the site's database (None: the server's)."""
        raise NotImplementedError
        yield

    def rows(
        self, site: str | None, sql: str, params: list[Any] | tuple[Any, ...] = ()
    ) -> list[tuple[Any, ...]]:
        with self.connect(site) as conn:
            return self.query(conn, sql, params)

    def query(self, conn: Any, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = conn.cursor()
        try:
            cursor.execute(sql.replace("%s", self.paramstyle), tuple(params))
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    # -- what the faults and the statistics ask; None where this database cannot say --------

    def counters(self, site: str) -> dict[str, int]:
        """Transaction and row counters of the site's database (PostgreSQL's pg_stat_database);
        {} where the database keeps none per database."""
        return {}

    def claim_holders(self, conn: Any, site: str, workers: list[int]) -> list[int]:
        """Worker pids (among ``workers``) with an open write transaction on the site's database
        and nothing running in it: a claim held while WeChat answers."""
        raise NotImplementedError

    def claims(self, conn: Any, site: str) -> dict[str, int]:
        """Connections of the site's database holding a claim and waiting on one (the servers
        only: SQLite's waiters sleep in their own busy handler, and it has no restart fault)."""
        raise NotImplementedError

    def connections(self, conn: Any) -> dict[str, int] | None:
        """Open connections per site's database, or None where there is no server to ask."""
        return None

    def max_connections(self, conn: Any) -> int | None:
        return None


class ServerDatabase(Database):
    """A database server the sites reach over TCP (``server``: host, port, user, password)."""

    server: dict[str, str]
    #: Django's backend for :meth:`django_database`.
    engine: ClassVar[str]

    def environment(self, site: str) -> dict[str, str]:
        return {
            "STORM_DB_ENGINE": self.kind,
            "STORM_DB_NAME": name_of(site),
            "STORM_DB_HOST": self.server["host"],
            "STORM_DB_PORT": str(self.server["port"]),
            "STORM_DB_USER": self.server["user"],
            "STORM_DB_PASSWORD": self.server.get("password", ""),
        }

    def django_database(self, site: str, conn_max_age: int = 0) -> dict[str, Any]:
        return {
            "ENGINE": self.engine,
            "NAME": name_of(site),
            "HOST": self.server["host"],
            "PORT": str(self.server["port"]),
            "USER": self.server["user"],
            "PASSWORD": self.server.get("password", ""),
            "CONN_MAX_AGE": conn_max_age,
        }


class Postgres(ServerDatabase):
    kind = "postgres"
    engine = "django.db.backends.postgresql"

    def __init__(self, server: dict[str, str] | None = None) -> None:
        self.server = server or {
            "host": os.environ.get("STORM_PG_HOST", "127.0.0.1"),
            "port": os.environ.get("STORM_PG_PORT", "5432"),
            "user": os.environ.get("STORM_PG_USER", "postgres"),
        }

    @contextlib.contextmanager
    def connect(self, site: str | None = None) -> Iterator[Any]:
        import psycopg

        with psycopg.connect(
            dbname=name_of(site) if site else "postgres", autocommit=True, connect_timeout=5, **self.server
        ) as conn:
            yield conn

    def version(self) -> str:
        return str(self.rows(None, "SHOW server_version")[0][0])

    def create(self, site: str) -> None:
        self.drop(site)
        self.rows(None, f'CREATE DATABASE "{name_of(site)}"')

    def drop(self, site: str) -> None:
        self.rows(None, f'DROP DATABASE IF EXISTS "{name_of(site)}" WITH (FORCE)')

    def query(self, conn: Any, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = conn.execute(sql, params or None)
        return cursor.fetchall() if cursor.description else []

    def describe(self, sites: tuple[str, ...] = STORM_SITES) -> str:
        return f"PostgreSQL at {self.server['host']}:{self.server['port']}, databases {_names(sites)}"

    def counters(self, site: str) -> dict[str, int]:
        keys = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted", "tup_fetched")
        rows = self.rows(
            None, f"SELECT {', '.join(keys)} FROM pg_stat_database WHERE datname = %s", [name_of(site)]
        )
        return dict(zip(keys, rows[0], strict=True)) if rows else {}

    def claim_holders(self, conn: Any, site: str, workers: list[int]) -> list[int]:
        # settings: application_name storm-<site>-<worker pid> (set after gunicorn's fork).
        rows = self.query(
            conn,
            "SELECT application_name FROM pg_stat_activity"
            " WHERE datname = %s AND state = 'idle in transaction'",
            [name_of(site)],
        )
        pids = [int(name.rsplit("-", 1)[1]) for (name,) in rows if name.startswith("storm-")]
        return [pid for pid in pids if pid in workers]

    def claims(self, conn: Any, site: str) -> dict[str, int]:
        holding, waiting = self.query(
            conn,
            "SELECT count(*) FILTER (WHERE state = 'idle in transaction'),"
            " count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock')"
            " FROM pg_stat_activity WHERE datname = %s",
            [name_of(site)],
        )[0]
        return {"holding_a_claim": holding, "waiting_on_a_claim": waiting}

    def connections(self, conn: Any) -> dict[str, int] | None:
        rows = self.query(
            conn,
            "SELECT datname, count(*) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' GROUP BY datname",
        )
        return {str(name): int(n) for name, n in rows}

    def max_connections(self, conn: Any) -> int | None:
        return int(self.query(conn, "SHOW max_connections")[0][0])


class MariaDB(ServerDatabase):
    kind = "mariadb"
    engine = "django.db.backends.mysql"
    #: information_schema.INNODB_TRX is a cache that InnoDB refreshes only when it has not been
    #: read for 0.1 s (trx0i_s.cc, CACHE_MIN_IDLE_TIME_US): polled faster, it never changes.
    poll_interval = 0.15

    def __init__(self, server: dict[str, str] | None = None) -> None:
        self.server = server or {
            "host": os.environ.get("STORM_MARIADB_HOST", "127.0.0.1"),
            "port": os.environ.get("STORM_MARIADB_PORT", "3306"),
            "user": os.environ.get("STORM_MARIADB_USER", "root"),
            "password": os.environ.get("STORM_MARIADB_PASSWORD", ""),
        }

    @contextlib.contextmanager
    def connect(self, site: str | None = None) -> Iterator[Any]:
        import MySQLdb

        conn = MySQLdb.connect(
            host=self.server["host"],
            port=int(self.server["port"]),
            user=self.server["user"],
            password=self.server.get("password", ""),
            database=name_of(site) if site else "",
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=5,
        )
        try:
            yield conn
        finally:
            conn.close()

    def unavailable(self) -> str | None:
        try:
            import MySQLdb  # noqa: F401
        except ImportError:
            return "mysqlclient is not installed (pip install -e '.[bench,mysql]'; needs libmariadb-dev)"
        return super().unavailable()

    def version(self) -> str:
        return str(self.rows(None, "SELECT VERSION()")[0][0])

    def create(self, site: str) -> None:
        self.drop(site)
        self.rows(None, f"CREATE DATABASE `{name_of(site)}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")

    def drop(self, site: str) -> None:
        self.rows(None, f"DROP DATABASE IF EXISTS `{name_of(site)}`")

    def django_database(self, site: str, conn_max_age: int = 0) -> dict[str, Any]:
        return {**super().django_database(site, conn_max_age), "OPTIONS": {"charset": "utf8mb4"}}

    def describe(self, sites: tuple[str, ...] = STORM_SITES) -> str:
        return (
            f"MariaDB at {self.server['host']}:{self.server['port']} (mysqlclient, InnoDB, "
            f"utf8mb4), databases {_names(sites)}"
        )

    def _transactions(self, conn: Any, site: str) -> list[tuple[Any, ...]]:
        """(trx_state, processlist command, client host:port) of each open InnoDB transaction
        on the site's database."""
        return self.query(
            conn,
            "SELECT t.trx_state, p.COMMAND, p.HOST"
            " FROM information_schema.INNODB_TRX t"
            " JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id"
            " WHERE p.DB = %s",
            [name_of(site)],
        )

    def claim_holders(self, conn: Any, site: str, workers: list[int]) -> list[int]:
        # No application_name here (and performance_schema is off by default): the client's
        # port, from the process list, names the worker that has that socket open.
        ports = [
            int(host.rsplit(":", 1)[1])
            for state, command, host in self._transactions(conn, site)
            if state == "RUNNING" and command == "Sleep" and ":" in host
        ]
        owners = tcp_port_owners(workers)
        return [owners[port] for port in ports if port in owners]

    def claims(self, conn: Any, site: str) -> dict[str, int]:
        rows = self._transactions(conn, site)
        return {
            "holding_a_claim": sum(state == "RUNNING" and command == "Sleep" for state, command, _ in rows),
            "waiting_on_a_claim": sum(state == "LOCK WAIT" for state, _, _ in rows),
        }

    def connections(self, conn: Any) -> dict[str, int] | None:
        rows = self.query(
            conn, "SELECT DB, count(*) FROM information_schema.PROCESSLIST WHERE DB IS NOT NULL GROUP BY DB"
        )
        return {str(name): int(n) for name, n in rows}

    def max_connections(self, conn: Any) -> int | None:
        return int(self.query(conn, "SELECT @@max_connections")[0][0])


class SQLite(Database):
    """Django's default SQLite settings, a file per site. SQLite's locks are POSIX locks on the
    file: /proc/locks names the process that holds the write (RESERVED) lock."""

    kind = "sqlite"
    paramstyle = "?"

    #: SQLite's lock bytes (os_unix.c): PENDING_BYTE = 0x40000000, RESERVED_BYTE after it.
    RESERVED_BYTE = 0x40000001

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or Path(tempfile.mkdtemp(prefix="storm-sqlite-"))

    def path(self, site: str) -> Path:
        return self.directory / f"{name_of(site)}.sqlite3"

    @contextlib.contextmanager
    def connect(self, site: str | None = None) -> Iterator[Any]:
        if site is None:
            conn = sqlite3.connect(":memory:")
        else:
            # The bench only reads (not read-only mode: a reader may have to roll back the hot
            # journal a SIGKILLed writer left).
            conn = sqlite3.connect(self.path(site), timeout=5, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    def version(self) -> str:
        return sqlite3.sqlite_version

    def create(self, site: str) -> None:
        self.drop(site)
        self.directory.mkdir(parents=True, exist_ok=True)

    def drop(self, site: str) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path(site)}{suffix}")

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def environment(self, site: str) -> dict[str, str]:
        return {"STORM_DB_ENGINE": self.kind, "STORM_DB_NAME": str(self.path(site))}

    def django_database(self, site: str, conn_max_age: int = 0) -> dict[str, Any]:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(self.path(site)),
            "CONN_MAX_AGE": conn_max_age,
        }

    def describe(self, sites: tuple[str, ...] = STORM_SITES) -> str:
        return (
            f"SQLite {sqlite3.sqlite_version} with Django's default settings (no OPTIONS: "
            f"no transaction_mode, the default timeout), one file per site "
            f"({_names(sites)}) in {self.directory}, shared by all its instances and workers"
        )

    def claim_holders(self, conn: Any, site: str, workers: list[int]) -> list[int]:
        try:
            inode = os.stat(self.path(site)).st_ino
        except FileNotFoundError:
            return []
        holders = []
        with open("/proc/locks") as locks:
            for line in locks:
                fields = line.split()
                # "1: POSIX  ADVISORY  WRITE 1234 08:01:5678 1073741825 1073741825"
                if (
                    len(fields) >= 8
                    and fields[1] == "POSIX"
                    and fields[3] == "WRITE"
                    and int(fields[5].rsplit(":", 1)[1]) == inode
                    and fields[6] == str(self.RESERVED_BYTE)
                ):
                    holders.append(int(fields[4]))
        return [pid for pid in holders if pid in workers]


def database(kind: str) -> Database:
    return {"postgres": Postgres, "mariadb": MariaDB, "sqlite": SQLite}[kind]()


def tcp_port_owners(pids: list[int]) -> dict[int, int]:
    """Local TCP port -> pid, for the sockets that the processes ``pids`` have open (from
    /proc/net/tcp{,6} and /proc/<pid>/fd)."""
    inodes: dict[int, int] = {}  # socket inode -> local port
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                inodes[int(fields[9])] = int(fields[1].rsplit(":", 1)[1], 16)
    owners: dict[int, int] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        port = inodes.get(int(target[8:-1]))
                        if port is not None:
                            owners[port] = pid
    return owners
