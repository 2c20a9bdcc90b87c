"""The storm through PgBouncer (``python -m bench.storm --pgbouncer``): its command line, and
the storm's own stack with both sites on PostgreSQL through the bench's pgbouncer
(bench/storm/pgbouncer.py: transaction pooling, ``default_pool_size`` 4 per database) through
every Official Account pattern at 8 browsers, and a worker killed while it holds an exchange.

The served tests need PostgreSQL (marker ``postgres``), the pgbouncer program (Debian's
``pgbouncer``), ``redis-server`` on the PATH and gunicorn; they skip, saying which, otherwise.
Their databases have names of their own, so a ``python -m bench.storm`` running beside them is
not disturbed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from bench.storm import databases, faults, pgbouncer
from bench.storm.__main__ import parse_args
from bench.storm.databases import database
from bench.storm.passes import Storm
from bench.storm.runner import ConnectionSampler
from tests.storm_checks import assert_no_guarded_login_failed_and_every_code_exchanged_once

pytestmark = pytest.mark.bench

POOL_SIZE = 4


def test_pgbouncer_is_asked_for_and_postgres_only():
    args = parse_args(["--pgbouncer", "--quick"])
    assert (args.pgbouncer, args.pgbouncer_pool_size, args.concurrency) == (True, 4, 8)
    assert parse_args([]).concurrency == 4 and not parse_args([]).pgbouncer
    assert parse_args(["--pgbouncer", "--pgbouncer-pool-size", "2", "--concurrency", "5"]).concurrency == 5
    with pytest.raises(SystemExit):
        parse_args(["--pgbouncer", "--db", "sqlite"])


def test_the_sites_settings_point_at_the_pgbouncer_without_server_side_cursors(monkeypatch):
    pooled = pgbouncer.PooledPostgres(databases.Postgres({"host": "127.0.0.1", "port": "5432", "user": "u"}))
    monkeypatch.setattr(pooled, "_started", lambda: pooled.pgbouncer)  # no process needed here
    env = pooled.environment("guarded")
    assert (env["STORM_DB_HOST"], env["STORM_DB_PORT"]) == ("127.0.0.1", str(pooled.pgbouncer.port))
    assert env["STORM_DB_DISABLE_SERVER_SIDE_CURSORS"] == "1"
    conf = pooled.django_database("naive", conn_max_age=60)
    assert (conf["PORT"], conf["DISABLE_SERVER_SIDE_CURSORS"], conf["CONN_MAX_AGE"]) == (
        str(pooled.pgbouncer.port),
        True,
        60,
    )
    # The bench's own queries stay direct; the pgbouncer forwards every database name.
    assert pooled.server["port"] == "5432"
    pooled.pgbouncer.directory = pgbouncer.Path("/nonexistent")
    config = pooled.pgbouncer.config()
    pooled.pgbouncer.directory = None
    for line in (
        "* = host=127.0.0.1 port=5432",
        "pool_mode = transaction",
        "default_pool_size = 4",
        "reserve_pool_size = 0",
        "auth_type = trust",
    ):
        assert line in config.splitlines()


def stack_unavailable() -> str | None:
    if shutil.which("redis-server") is None:
        return "redis-server is not on the PATH (the storm starts a private one)"
    return pgbouncer.unavailable() or database("postgres").unavailable()


@pytest.fixture(scope="module")
def pooled_storm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Storm, dict[str, Any]]]:
    """The storm's stack with both sites through a pgbouncer (databases of this test's own
    names), warmed up, every Official Account pattern run once at 8 browsers: 2 logins per
    pattern and site; the peak server connections per database meanwhile."""
    from bench.storm.stack import Stack

    reason = stack_unavailable()
    if reason is not None:
        pytest.skip(reason)
    names = pytest.MonkeyPatch()
    for site in ("guarded", "naive"):
        names.setitem(databases.NAMES, site, f"wechat_oauth_test_storm_pgb_{site}_{os.getpid()}")
    args = parse_args(["--pgbouncer", "--kind", "mp", "--logins", "11", "--only", "patterns"])
    db = pgbouncer.PooledPostgres(database("postgres"), POOL_SIZE)  # type: ignore[arg-type]
    try:
        with Stack(db, tmp_path_factory.mktemp("storm-pgbouncer"), latency=0.08) as stack:
            storm = Storm(args, stack, lambda *parts: None)
            storm.warm_up()
            with ConnectionSampler(db) as sampler:
                storm.patterns()
            yield stack, storm, sampler.figures()
    finally:
        names.undo()


@pytest.mark.postgres
def test_through_pgbouncer_no_guarded_login_fails_and_every_code_is_exchanged_once(pooled_storm):
    stack, storm, connections = pooled_storm
    assert stack.db.pgbouncer.running and stack.envs["guarded"]["STORM_DB_PORT"] == str(
        stack.db.pgbouncer.port
    )
    assert_no_guarded_login_failed_and_every_code_exchanged_once(stack, storm)
    assert storm.logs_after_patterns["guarded"]["tracebacks"] == 0
    # The sites' server connections stayed within the pool: at most POOL_SIZE per database,
    # plus one of the bench's own direct reads of the rows (the sampler's is on "postgres").
    peaks = connections["peak_connections_per_database"]
    assert 0 < peaks[databases.name_of("guarded")] <= POOL_SIZE + 1, connections
    assert peaks[databases.name_of("naive")] <= POOL_SIZE + 1, connections


@pytest.mark.postgres
def test_through_pgbouncer_a_worker_killed_holding_an_exchange_lets_no_500_reach_a_user(pooled_storm):
    stack, _, _ = pooled_storm
    record = faults.worker_kill_round(stack, 0, label="kill_pgbouncer")
    assert "not_run" not in record, record
    assert record["http_500_reached_a_user"] == 0, record
    assert record["exchanges_of_code"] == 1 or record["second_exchange_after_holder_died_ended_spent"]
