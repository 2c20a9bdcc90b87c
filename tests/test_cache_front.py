"""The django-redis front (CACHE_ALIAS) against real Redis servers.

Redis may only save work: whatever it does (answers, loses keys, dies, restarts empty), the
database row keeps every code to one upstream exchange.
"""

from __future__ import annotations

import os
import threading
import time
from functools import partial

import pytest
import redis
from django.core.cache import caches
from django.db import connections
from django.utils import timezone

from tests import services
from tests.concurrency import run_in_threads, start_thread, wait_until
from wechat_oauth import signals
from wechat_oauth.client import WeChatClient
from wechat_oauth.exceptions import UpstreamUnavailable
from wechat_oauth.guard import exchange_once
from wechat_oauth.guard.cache import CacheFront, cache_front, fold_counters
from wechat_oauth.hashing import code_hash
from wechat_oauth.models import OAuthCodeUse
from wechat_oauth.outcome import StoredOutcome

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


class RedisCommands:
    """Counts the round trips this process makes to Redis: a command (a script call is one),
    or a pipeline; on a plain Redis and on a Redis Cluster alike."""

    def __init__(self, monkeypatch):
        import redis
        from redis.cluster import ClusterPipeline, RedisCluster

        self.sent = []
        for cls, method, name in (
            (redis.Redis, "execute_command", None),
            (RedisCluster, "execute_command", None),
            (redis.client.Pipeline, "execute", "PIPELINE"),
            (ClusterPipeline, "execute", "PIPELINE"),
        ):
            monkeypatch.setattr(cls, method, self._recording(getattr(cls, method), name))

    def _recording(self, original, name):
        def recording(client, *args, **options):
            self.sent.append(name or args[0])
            return original(client, *args, **options)

        return recording


def test_late_duplicate_is_answered_from_redis_with_no_sql(
    front, fake_wechat, django_assert_num_queries, monkeypatch
):
    code = fake_wechat.issue_code("o_cached")
    first = exchange_once(code)
    commands = RedisCommands(monkeypatch)

    with django_assert_num_queries(0):
        duplicate = exchange_once(code, resent=True)

    assert duplicate.duplicate is True
    assert duplicate.token == first.token
    assert duplicate.code_use_id == first.code_use_id
    assert commands.sent == ["EVALSHA"]  # one round trip
    assert fake_wechat.exchange_calls(code) == 1


def test_first_request_costs_two_redis_round_trips(front, fake_wechat, monkeypatch):
    code = fake_wechat.issue_code("o_first")
    commands = RedisCommands(monkeypatch)

    exchange_once(code)

    assert commands.sent == ["EVALSHA", "EVALSHA"]  # enter (claim the marker), publish


def test_cached_failure_is_replayed_as_the_same_error(front, fake_wechat):
    from wechat_oauth.exceptions import UpstreamBusy

    code = fake_wechat.issue_code("o_busy")
    fake_wechat.add_fault("access_token", errcode=-1, errmsg="system error, rid: 77aa-01")
    with pytest.raises(UpstreamBusy):
        exchange_once(code)

    with pytest.raises(UpstreamBusy) as replayed:
        exchange_once(code)

    assert replayed.value.request_id == "77aa-01"
    assert fake_wechat.exchange_calls(code) == 1


def test_duplicates_counted_in_redis_are_folded_into_the_row(front, fake_wechat):
    code = fake_wechat.issue_code("o_folded")
    exchange_once(code)
    for resent in (False, True, False):
        exchange_once(code, resent=resent)
    assert OAuthCodeUse.objects.get().duplicates == 0  # counted in Redis so far

    assert fold_counters() == 1

    row = OAuthCodeUse.objects.get()
    assert (row.duplicates, row.resent_variant_seen) == (3, True)
    assert row.last_seen_at >= row.first_seen_at
    assert fold_counters() == 0  # nothing is folded twice


def test_counts_wait_for_a_purge_every_few_minutes_and_a_later_duplicate_is_folded_too(front, fake_wechat):
    """The counters must outlive the README's 5-minute purge interval (they once expired
    after two minutes), and a duplicate counted after a fold lists its code again."""
    from wechat_oauth.guard.cache import COUNTER_RETENTION

    code = fake_wechat.issue_code("o_refolded")
    exchange_once(code)
    exchange_once(code)
    keys = front.keys(WeChatClient().app_id, code_hash(code))
    assert front.redis.pttl(keys.counters) > (COUNTER_RETENTION - 60) * 1000 > 10 * 60 * 1000
    assert fold_counters() == 1

    exchange_once(code, resent=True)

    assert fold_counters() == 1
    row = OAuthCodeUse.objects.get()
    assert (row.duplicates, row.resent_variant_seen) == (2, True)
    assert fold_counters() == 0


def test_a_codes_keys_share_one_cluster_slot_and_codes_spread_over_many(front):
    """Redis Cluster runs a script only when all its keys are in one slot."""
    from redis.crc import key_slot

    slots_of_codes = set()
    for number in range(200):
        keys = front.keys("wxapp", code_hash(f"code-{number}"))
        slots = {
            key_slot(key.encode())
            for key in (keys.result, keys.flight, keys.wake, keys.counters, keys.pending)
        }
        assert len(slots) == 1, keys.__dict__
        slots_of_codes |= slots
    assert len(slots_of_codes) > 32  # SHARDS tags: many slots, so every master gets codes


def test_in_flight_duplicates_wait_on_redis_and_share_one_exchange(front, fake_wechat):
    fake_wechat.set_latency(0.3)
    code = fake_wechat.issue_code("o_waiting")
    sources = []

    def record(sender, **kwargs):
        sources.append((kwargs["source"], kwargs["waited"]))

    signals.duplicate_absorbed.connect(record)
    try:
        results = run_in_threads(12, partial(exchange_once, code))
    finally:
        signals.duplicate_absorbed.disconnect(record)

    assert {kind for kind, _ in results} == {"ok"}
    assert len({value.token for _, value in results}) == 1
    assert fake_wechat.exchange_calls(code) == 1
    assert len(sources) == 11
    assert ("cache", True) in sources  # woken through Redis, not only by the database


# -- the holder's order of work, seen from Redis ----------------------------------------------


def gated_client(gate: threading.Event, *, refuse: bool = False) -> WeChatClient:
    """A client for the fake that asks it only once ``gate`` is set; with ``refuse``, it fails
    then as a refused connection does (before the request left the host)."""
    client = WeChatClient()  # its own: get_client() is shared by the whole process
    exchange = client.exchange_code

    def exchange_code(code):
        assert gate.wait(10), "the test never opened the gate"
        if refuse:
            raise UpstreamUnavailable("Could not connect to WeChat", request_sent=False)
        return exchange(code)

    client.exchange_code = exchange_code
    return client


def blocked_on_redis(front, keys) -> int:
    """How many of this test's waiters sit in a blocking pop on the Redis server holding
    ``keys`` right now. On the suite's one server (which other test runs may share) that is
    the blocked clients carrying this process's name (see ``record_blocking_pops``); on the
    run's own Redis Cluster, every blocked client of the key's master."""
    if hasattr(front.redis, "get_node_from_key"):  # a RedisCluster
        node = front.redis.get_node_from_key(keys.wake)
        return front.redis.info("clients", target_nodes=node)["blocked_clients"]
    return sum(
        1
        for client in front.redis.client_list()
        if client["name"] == WAITER_CLIENT_NAME and "b" in client["flags"]
    )


WAITER_CLIENT_NAME = f"wechat-oauth-test-waiter-{os.getpid()}"


def record_blocking_pops(front, monkeypatch) -> list:
    """What each of the front's blocking pops returned: a wake token, or None (it timed out).
    On a plain Redis the pops run on connections named ``WAITER_CLIENT_NAME``, so
    ``blocked_on_redis`` counts this test's waiters and no other run's."""
    if not hasattr(front.waiting, "get_node_from_key"):
        pool = front.waiting.connection_pool
        kwargs = {**pool.connection_kwargs, "client_name": WAITER_CLIENT_NAME}
        named_pool = redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
        monkeypatch.setattr(front, "waiting", redis.Redis(connection_pool=named_pool))
    popped = []
    blpop = front.waiting.blpop

    def recording_blpop(*args, **kwargs):
        result = blpop(*args, **kwargs)
        popped.append(result)
        return result

    monkeypatch.setattr(front.waiting, "blpop", recording_blpop)
    return popped


def holding_claim(front, code: str, client: WeChatClient):
    """Start ``exchange_once`` with ``client`` in a thread; return once it holds the marker."""
    keys = front.keys(client.app_id, code_hash(code))
    thread, outcomes = start_thread(partial(exchange_once, code, client=client))
    wait_until(lambda: front.redis.exists(keys.flight))
    return thread, outcomes, keys


def test_outcome_reaches_redis_only_after_its_row_is_committed(front, fake_wechat, monkeypatch):
    """Published before the commit, a duplicate could be answered with an outcome whose row
    then rolls back. At the moment of publishing, another connection must see the row done."""
    code = fake_wechat.issue_code("o_ordered")
    committed_when_published = []
    publish = CacheFront.publish

    def observing_publish(self, keys, outcome):
        look, seen = start_thread(
            lambda: OAuthCodeUse.objects.filter(
                code_hash=code_hash(code), status=OAuthCodeUse.Status.EXCHANGED
            ).exists()
        )
        look.join(10)
        committed_when_published.append(seen[0])
        return publish(self, keys, outcome)

    monkeypatch.setattr(CacheFront, "publish", observing_publish)
    exchange_once(code)

    assert committed_when_published == [("ok", True)]


def test_released_claim_leaves_no_in_flight_marker(front, fake_wechat, monkeypatch):
    """The exchange failed before WeChat saw the code: the next request must claim the code at
    once, not wait on Redis for a holder that is gone."""
    code = fake_wechat.issue_code("o_released")
    opened = threading.Event()
    opened.set()
    with pytest.raises(UpstreamUnavailable):
        exchange_once(code, client=gated_client(opened, refuse=True))
    popped = record_blocking_pops(front, monkeypatch)

    retry = exchange_once(code)

    assert not front.redis.exists(front.keys(WeChatClient().app_id, code_hash(code)).flight)
    assert (retry.duplicate, retry.token.openid) == (False, "o_released")
    assert popped == [], "the retry waited on Redis for a released claim"
    assert fake_wechat.exchange_calls(code) == 1


def test_released_claim_wakes_the_duplicate_waiting_on_redis(front, fake_wechat, monkeypatch):
    code = fake_wechat.issue_code("o_woken")
    gate = threading.Event()
    popped = record_blocking_pops(front, monkeypatch)
    holder, holder_outcome, keys = holding_claim(front, code, gated_client(gate, refuse=True))
    already_blocked = blocked_on_redis(front, keys)
    waiter, waiter_outcome = start_thread(partial(exchange_once, code))
    wait_until(lambda: blocked_on_redis(front, keys) >= already_blocked + 1)

    gate.set()
    holder.join(10)
    waiter.join(10)

    assert holder_outcome[0][0] == "error" and isinstance(holder_outcome[0][1], UpstreamUnavailable)
    assert waiter_outcome[0][0] == "ok" and waiter_outcome[0][1].token.openid == "o_woken"
    assert len(popped) == 1 and popped[0] is not None, "the waiter was not woken, it timed out"
    assert fake_wechat.exchange_calls(code) == 1


def test_every_duplicate_waiting_on_redis_is_woken_by_one_publication(front, fake_wechat, monkeypatch):
    """The holder pushes one wake token; each woken waiter passes it on to the next."""
    code = fake_wechat.issue_code("o_all_woken")
    gate = threading.Event()
    popped = record_blocking_pops(front, monkeypatch)
    sources = []
    signals.duplicate_absorbed.connect(record := lambda sender, **kw: sources.append(kw["source"]))
    try:
        holder, holder_outcome, keys = holding_claim(front, code, gated_client(gate))
        already_blocked = blocked_on_redis(front, keys)
        waiters = [start_thread(partial(exchange_once, code)) for _ in range(4)]
        wait_until(lambda: blocked_on_redis(front, keys) >= already_blocked + 4)
        gate.set()
        for thread, _ in [(holder, None), *waiters]:
            thread.join(10)
    finally:
        signals.duplicate_absorbed.disconnect(record)

    assert holder_outcome[0][0] == "ok"
    assert [outcomes[0][0] for _, outcomes in waiters] == ["ok"] * 4
    assert sources == ["cache"] * 4, "a waiter fell through to the database"
    assert len(popped) == 4 and None not in popped
    assert fake_wechat.exchange_calls(code) == 1


def test_an_outcome_written_into_redis_by_someone_else_is_not_believed(
    front, fake_wechat, caplog, monkeypatch
):
    """Whoever can write to the Redis server must not be able to mint a login for any openid:
    a stored outcome without a valid MAC is ignored, and the database decides."""
    from wechat_oauth.guard import cache
    from wechat_oauth.throttled_log import ThrottledLog

    monkeypatch.setattr(cache, "_forged", ThrottledLog(cache.logger))  # not throttled by an earlier test
    code = fake_wechat.issue_code("o_genuine")
    keys = front.keys(WeChatClient().app_id, code_hash(code))
    forged = StoredOutcome(
        code_use_id=1,
        first_seen_at=timezone.now(),
        status="exchanged",
        openid="o_admin",
        access_token="x",
        refresh_token="y",
        access_token_expires_at=timezone.now(),
        refresh_token_expires_at=timezone.now(),
    )
    for sealed in (forged.to_json(), "0" * 64 + forged.to_json()):
        front.redis.set(keys.result, sealed)

        outcome = exchange_once(code)

        assert outcome.token.openid == "o_genuine"
    assert fake_wechat.exchange_calls(code) == 1
    assert any("failed its MAC check" in r.getMessage() for r in caplog.records)


def test_front_off_without_the_setting(settings, fake_wechat):
    assert cache_front() is None


# -- Redis failing ---------------------------------------------------------------------------


@pytest.fixture
def disposable_redis(settings, fake_wechat):
    server = services.DisposableRedis()
    server.start()
    settings.CACHES = {
        **settings.CACHES,
        "disposable": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{server.port}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.05, "SOCKET_TIMEOUT": 0.05},
        },
    }
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "CACHE_ALIAS": "disposable"}
    yield server
    if server.process.poll() is None:
        server.kill()
    caches["disposable"].close()


def test_redis_killed_between_claim_and_duplicates(disposable_redis, fake_wechat, caplog):
    fake_wechat.set_latency(0.4)
    code = fake_wechat.issue_code("o_redis_dies")
    holder, holder_outcome = start_thread(partial(exchange_once, code))
    wait_until(lambda: fake_wechat.exchange_calls(code) == 1)

    disposable_redis.kill()
    results = run_in_threads(4, partial(exchange_once, code))
    holder.join(10)

    assert holder_outcome[0][0] == "ok"
    assert {kind for kind, _ in results} == {"ok"}
    assert {value.token for _, value in results} == {holder_outcome[0][1].token}
    assert fake_wechat.exchange_calls(code) == 1
    warnings = [r for r in caplog.records if r.name == "wechat_oauth.cache"]
    assert len(warnings) <= 1  # rate-limited: not one per request


def test_redis_restarted_empty_mid_exchange(disposable_redis, fake_wechat):
    fake_wechat.set_latency(0.4)
    code = fake_wechat.issue_code("o_redis_forgets")
    holder, holder_outcome = start_thread(partial(exchange_once, code))
    wait_until(lambda: fake_wechat.exchange_calls(code) == 1)

    disposable_redis.restart_empty()  # the in-flight marker is gone
    results = run_in_threads(4, partial(exchange_once, code))
    holder.join(10)

    assert holder_outcome[0][0] == "ok"
    assert {kind for kind, _ in results} == {"ok"}
    assert fake_wechat.exchange_calls(code) == 1
    # After the restart the holder's publication repopulated Redis: a late duplicate is
    # answered from it again.
    assert exchange_once(code).duplicate is True
    assert fake_wechat.exchange_calls(code) == 1


def test_waiters_are_answered_by_redis_even_with_a_short_socket_timeout(
    disposable_redis, fake_wechat, caplog
):
    """The cache's 50 ms SOCKET_TIMEOUT must not cut off a blocking wait (Redis checks blocking
    timeouts only every ~100 ms): found by the storm benchmark."""
    fake_wechat.set_latency(0.3)
    code = fake_wechat.issue_code("o_short_timeout")
    sources = []

    def record(sender, **kwargs):
        sources.append(kwargs["source"])

    signals.duplicate_absorbed.connect(record)
    try:
        holder, _ = start_thread(partial(exchange_once, code))
        wait_until(lambda: fake_wechat.exchange_calls(code) == 1)
        run_in_threads(4, partial(exchange_once, code))
        holder.join(10)
    finally:
        signals.duplicate_absorbed.disconnect(record)

    assert sources == ["cache"] * 4
    assert not [r for r in caplog.records if r.name == "wechat_oauth.cache"]


def test_redis_down_from_the_start_costs_no_error(disposable_redis, fake_wechat):
    disposable_redis.kill()
    code = fake_wechat.issue_code("o_no_redis")

    first = exchange_once(code)
    second = exchange_once(code)

    assert (first.duplicate, second.duplicate) == (False, True)
    assert fake_wechat.exchange_calls(code) == 1


# -- several servers -------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_killed_holder_does_not_stall_duplicates_waiting_on_redis(
    fake_wechat, pg_alias, redis_alias, settings
):
    """Redis cannot tell that a holder died (its marker lives for the hold limit, ~17 s); the
    database can. So duplicates wait on Redis for at most FRONT_WAIT, then in the database."""
    import os
    import signal

    from tests import workers
    from tests.concurrency import start_processes
    from wechat_oauth.exceptions import CodeSpent
    from wechat_oauth.guard.cache import FRONT_WAIT

    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "CACHE_ALIAS": redis_alias}
    caches[redis_alias].delete_pattern("wechat_oauth:*")
    code = fake_wechat.issue_code("o_holder_killed")
    fake_wechat.add_fault("access_token", delay=5.0, code=code)  # only the holder's is slow
    holder = start_processes(
        1,
        workers.exchange_after_barrier,
        dict(connections[pg_alias].settings_dict),
        settings.WECHAT_OAUTH,
        code,
        {"default": settings.CACHES["default"], redis_alias: settings.CACHES[redis_alias]},
    )
    wait_until(lambda: fake_wechat.exchange_calls(code) == 1)
    duplicates = [start_thread(partial(exchange_once, code, using=pg_alias)) for _ in range(3)]
    time.sleep(0.2)
    os.kill(holder.pids[0], signal.SIGKILL)
    killed_at = time.monotonic()
    for thread, _ in duplicates:
        thread.join(30)
    finished_after = time.monotonic() - killed_at

    outcomes = [outcome for _, found in duplicates for outcome in found]
    assert [type(value) for _, value in outcomes] == [CodeSpent] * 3
    assert fake_wechat.exchange_calls(code) == 2  # the dead holder's, and one takeover
    assert finished_after < FRONT_WAIT + 3  # not the marker's ~17 s
    caches[redis_alias].delete_pattern("wechat_oauth:*")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_two_servers_sharing_postgresql_and_redis_make_one_exchange(
    fake_wechat, pg_alias, redis_alias, settings, tmp_path
):
    from tests.live_servers import Browser, Tally, on_server, run_together, running_servers

    fake_wechat.set_latency(0.3)
    config = {
        "database": dict(connections[pg_alias].settings_dict),
        "wechat_oauth": {**settings.WECHAT_OAUTH, "CACHE_ALIAS": redis_alias},
        "caches": {redis_alias: settings.CACHES[redis_alias]},
    }
    caches[redis_alias].delete_pattern("wechat_oauth:*")
    tally = Tally("two servers, one Redis")
    with running_servers(["A", "B"], config, tmp_path) as servers:
        browser = Browser(tally)
        callback = browser.authorize(browser.start_login(servers["A"]), "o_two_servers")
        targets = [servers[name] for name in "ABABAB"]
        responses = run_together(
            [partial(browser.copy().get, on_server(callback, server), "callback") for server in targets]
        )

    assert [response.status_code for response in responses] == [302] * 6
    assert {response.headers["Location"] for response in responses} == {"/whoami/"}
    code = tally.code_of(callback)
    assert fake_wechat.exchange_calls(code) == 1
    assert OAuthCodeUse.objects.using(pg_alias).get().status == "exchanged"
    caches[redis_alias].delete_pattern("wechat_oauth:*")
