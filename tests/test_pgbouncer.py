"""The guard through PgBouncer in transaction pooling: one upstream call per code from threads
and from an event loop, the wait bound still a bound, and no session-level state left on a
server connection (the guard's bounds are ``set_config(..., true)``, local to the claim's
transaction: a session-level ``SET`` would stay on the server connection and reach whichever
client PgBouncer hands it to next).

A pgbouncer of the test's own (bench/storm/pgbouncer.py: a free loopback port,
``auth_type = trust``, ``pool_mode = transaction``, ``default_pool_size`` 2) fronts the run's
PostgreSQL; the alias :data:`ALIAS` is the PostgreSQL test database through it, with
``DISABLE_SERVER_SIDE_CURSORS = True``. Marked postgres; skipped, saying why, when the
pgbouncer program is absent (Debian's ``pgbouncer`` package; CI installs it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from functools import partial
from typing import Any

import psycopg
import pytest
from django.db import connections

from bench.storm import pgbouncer
from tests.concurrency import run_in_threads, run_together
from wechat_oauth.exceptions import ExchangeWaitTimeout
from wechat_oauth.guard import aexchange_once, exchange_once
from wechat_oauth.models import OAuthCodeUse

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases="__all__")]

ALIAS = "pgbouncer"
POOL_SIZE = 2
LATENCY = 0.3
SETTINGS_PROBED = ("lock_timeout", "idle_in_transaction_session_timeout", "statement_timeout")


def _postgres_alias() -> str | None:
    from django.conf import settings

    return next(
        (
            alias
            for alias, conf in settings.DATABASES.items()
            if conf["ENGINE"] == "django.db.backends.postgresql"
        ),
        None,
    )


@pytest.fixture(scope="module", autouse=True)
def pooled(django_db_setup: None) -> Iterator[pgbouncer.PgBouncer]:
    """A pgbouncer (transaction pooling, pool size 2) in front of the run's PostgreSQL, and the
    alias ALIAS to the test database through it. Module-scoped, so that the alias exists when
    each test's database access is set up (``databases="__all__"`` takes the aliases of that
    moment)."""
    pg_alias = _postgres_alias()
    if pg_alias is None:
        pytest.skip("no PostgreSQL database alias in this run")
    reason = pgbouncer.unavailable()
    if reason is not None:
        pytest.skip(reason)
    direct = connections[pg_alias].settings_dict
    bouncer = pgbouncer.PgBouncer(
        target_host=direct["HOST"] or "127.0.0.1",
        target_port=str(direct["PORT"] or 5432),
        pool_size=POOL_SIZE,
    )
    bouncer.start()
    connections.settings[ALIAS] = {
        **direct,
        "HOST": "127.0.0.1",
        "PORT": str(bouncer.port),
        "CONN_MAX_AGE": 0,
        "DISABLE_SERVER_SIDE_CURSORS": True,
        "TEST": {**direct["TEST"], "MIRROR": pg_alias},
    }
    try:
        yield bouncer
    finally:
        from wechat_oauth.guard.exchange_loop import claim_threads

        claim_threads.close_connections()
        with contextlib.suppress(Exception):
            connections[ALIAS].close()
        with contextlib.suppress(AttributeError):
            del connections[ALIAS]
        del connections.settings[ALIAS]
        bouncer.stop()


def _connect(bouncer: pgbouncer.PgBouncer | None, pg_alias: str) -> psycopg.Connection[Any]:
    conf = connections[pg_alias].settings_dict
    port = bouncer.port if bouncer is not None else conf["PORT"] or 5432
    host = "127.0.0.1" if bouncer is not None else conf["HOST"] or "127.0.0.1"
    return psycopg.connect(host=host, port=port, user=conf["USER"], dbname=conf["NAME"], connect_timeout=5)


def defaults(pg_alias: str) -> dict[str, str]:
    """The settings probed, as a new session on the server has them."""
    with contextlib.closing(_connect(None, pg_alias)) as conn:
        return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in SETTINGS_PROBED}


def server_connections(bouncer: pgbouncer.PgBouncer, pg_alias: str) -> list[tuple[int, dict[str, str]]]:
    """(backend pid, the settings probed) of every server connection of the pool: POOL_SIZE
    clients of the pgbouncer, each inside a transaction at the same time, so each has a server
    connection of its own."""
    clients = [_connect(bouncer, pg_alias) for _ in range(POOL_SIZE)]
    try:
        seen = []
        for conn in clients:  # not autocommit: each keeps its transaction (and server) open
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            seen.append((pid, {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in SETTINGS_PROBED}))
        return seen
    finally:
        for conn in clients:
            conn.close()


def backends(pg_alias: str) -> set[int]:
    with contextlib.closing(_connect(None, pg_alias)) as conn:
        name = connections[pg_alias].settings_dict["NAME"]
        return {pid for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [name])}


def assert_no_leftover_settings(bouncer: pgbouncer.PgBouncer, pg_alias: str) -> None:
    """Every server connection of the pool, each one that served the exchanges (it existed
    before the probe), has the server's defaults."""
    before = backends(pg_alias)
    seen = server_connections(bouncer, pg_alias)
    assert len({pid for pid, _ in seen}) == POOL_SIZE
    assert {pid for pid, _ in seen} <= before, "the probe did not reach the pool's server connections"
    expected = defaults(pg_alias)
    for _pid, values in seen:
        assert values == expected


def assert_one_exchange_shared(results: list[tuple[str, Any]], fake: Any, code: str) -> None:
    assert fake.exchange_calls(code) == 1
    assert {kind for kind, _ in results} == {"ok"}, [value for kind, value in results if kind == "error"]
    assert len({value.token.access_token for _, value in results}) == 1
    assert sum(not value.duplicate for _, value in results) == 1


def async_exchanges(code: str, count: int) -> list[Any]:
    """``count`` aexchange_once of one code, at once, on an event loop of this thread."""

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(aexchange_once(code, using=ALIAS) for _ in range(count))))

    return asyncio.run(main())


def test_threads_through_transaction_pooling_make_one_upstream_call(fake_wechat, pooled, pg_alias):
    fake_wechat.set_latency(LATENCY)
    code = fake_wechat.issue_code("o_pgbouncer_threads")

    results = run_in_threads(8, partial(exchange_once, code, using=ALIAS))

    assert_one_exchange_shared(results, fake_wechat, code)
    assert OAuthCodeUse.objects.using(pg_alias).get().duplicates == 7
    assert_no_leftover_settings(pooled, pg_alias)


def test_an_event_loop_and_threads_through_transaction_pooling_make_one_upstream_call(
    fake_wechat, pooled, pg_alias
):
    """The async guard's duplicates poll with a 1 ms lock_timeout: local to each try's
    transaction, it never reaches the next client of the server connection."""
    fake_wechat.set_latency(LATENCY)
    code = fake_wechat.issue_code("o_pgbouncer_async")

    calls = [partial(async_exchanges, code, 6), *[partial(exchange_once, code, using=ALIAS)] * 3]
    outcomes = run_together(calls)

    kind, exchanges = outcomes[0]
    assert kind == "ok", exchanges
    results = [("ok", exchange) for exchange in exchanges] + outcomes[1:]
    assert_one_exchange_shared(results, fake_wechat, code)
    assert OAuthCodeUse.objects.using(pg_alias).get().duplicates == 8
    assert_no_leftover_settings(pooled, pg_alias)


@pytest.mark.parametrize("duplicate", ["sync", "async"])
def test_a_waiting_duplicate_still_times_out_through_transaction_pooling(
    fake_wechat, pooled, pg_alias, settings, duplicate
):
    """The holder keeps its transaction (and a server connection) while WeChat takes 2.5 s;
    the duplicate gets ExchangeWaitTimeout after WAIT_TIMEOUT, and no bound stays behind."""
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "WAIT_TIMEOUT": 0.5, "TIMEOUT": (1, 5)}
    fake_wechat.set_latency(2.5)
    code = fake_wechat.issue_code(f"o_pgbouncer_patient_{duplicate}")
    holder = partial(exchange_once, code, using=ALIAS)

    def later_duplicate() -> Any:
        import time

        time.sleep(0.3)  # the holder has claimed the code
        if duplicate == "async":
            return async_exchanges(code, 1)[0]
        return exchange_once(code, using=ALIAS)

    (holder_kind, exchange), (kind, error) = run_together([holder, later_duplicate])

    assert holder_kind == "ok" and not exchange.duplicate, exchange
    assert kind == "error" and isinstance(error, ExchangeWaitTimeout), error
    assert fake_wechat.exchange_calls(code) == 1
    assert_no_leftover_settings(pooled, pg_alias)


def test_the_probe_sees_a_session_level_setting_left_on_a_server_connection(pooled, pg_alias):
    """What the tests above would catch: a plain ``SET`` through the pool (session-level,
    outside any transaction) stays on its server connection for the next client."""
    with contextlib.closing(_connect(pooled, pg_alias)) as conn:
        conn.autocommit = True
        conn.execute("SET lock_timeout = '1234ms'")
    seen = server_connections(pooled, pg_alias)
    assert "1234ms" in {values["lock_timeout"] for _pid, values in seen}
