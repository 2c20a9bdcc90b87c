"""The cache front through django-redis's Sentinel client, with the settings the README gives:
a master, a replica and a Sentinel of the test's own, and a failover in the middle."""

from __future__ import annotations

import time
from functools import partial

import pytest
from django.core.cache import caches
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests import services
from tests.concurrency import run_in_threads, start_thread, wait_until
from wechat_oauth import signals
from wechat_oauth.guard import exchange_once

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


class SentinelSetup:
    """A master, its replica and one Sentinel (quorum 1) watching them, as service
    ``wechat<master port>``: django-redis keeps its connection pools per LOCATION for the
    whole process, so each test's LOCATION must be its own."""

    def __init__(self, directory):
        self.master = services.DisposableRedis()
        self.master.start()
        self.service = f"wechat{self.master.port}"
        self.replica = services.DisposableRedis("--replicaof", "127.0.0.1", str(self.master.port))
        self.replica.start()
        config = directory / "sentinel.conf"
        config.write_text(
            f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {self.service} 1000\n"
            f"sentinel failover-timeout {self.service} 5000\n"
        )
        self.sentinel = services.DisposableRedis(str(config), "--sentinel")
        self.sentinel.start()
        wait_until(lambda: self.master_port() == self.master.port, timeout=10)
        wait_until(lambda: self._sentinel().sentinel_slaves(self.service), timeout=10)

    def master_port(self) -> int:
        _host, port = self._sentinel().sentinel_get_master_addr_by_name(self.service)
        return int(port)

    def fail_over(self) -> None:
        """SENTINEL FAILOVER, retried while Sentinel does not yet know the replica well enough
        to promote it (NOGOODSLAVE: it learns a replica's link state every few seconds)."""
        import redis

        def promoted() -> bool:
            try:
                self._sentinel().sentinel_failover(self.service)
            except redis.exceptions.ResponseError as error:
                if "NOGOODSLAVE" not in str(error):
                    raise
                time.sleep(0.2)
                return False
            return True

        wait_until(promoted, timeout=30)
        wait_until(lambda: self.master_port() == self.replica.port, timeout=20)

    def stop(self) -> None:
        for server in (self.sentinel, self.replica, self.master):
            server.kill()

    def _sentinel(self):
        import redis

        return redis.Redis(port=self.sentinel.port, socket_timeout=1)


@pytest.fixture
def sentinel_front(settings, fake_wechat, tmp_path):
    setup = SentinelSetup(tmp_path)
    # The README's settings (Redis behind Sentinel).
    settings.CACHES = {
        **settings.CACHES,
        "sentinel": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://{setup.service}/0",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                "SENTINELS": [("127.0.0.1", setup.sentinel.port)],
                # Ask each Sentinel once: redis-py's default retries a dead one with backoff for
                # seconds, on every request that needs the master's address.
                "SENTINEL_KWARGS": {
                    "socket_connect_timeout": 0.05,
                    "socket_timeout": 0.05,
                    "retry": Retry(NoBackoff(), 0),
                },
                "SOCKET_CONNECT_TIMEOUT": 0.05,
                "SOCKET_TIMEOUT": 0.05,
            },
        },
    }
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "CACHE_ALIAS": "sentinel"}
    yield setup
    caches["sentinel"].close()
    setup.stop()


def absorbed_sources() -> tuple[list[str], object]:
    sources: list[str] = []

    def record(sender, **kwargs):
        sources.append(kwargs["source"])

    signals.duplicate_absorbed.connect(record)
    return sources, record


def test_duplicates_are_answered_through_sentinel(sentinel_front, fake_wechat):
    fake_wechat.set_latency(0.3)
    code = fake_wechat.issue_code("o_sentinel")
    sources, record = absorbed_sources()
    try:
        holder, holder_outcome = start_thread(partial(exchange_once, code))
        wait_until(lambda: fake_wechat.exchange_calls(code) == 1)
        waiters = run_in_threads(4, partial(exchange_once, code))
        holder.join(10)
        late = exchange_once(code)
    finally:
        signals.duplicate_absorbed.disconnect(record)

    assert holder_outcome[0][0] == "ok"
    assert {kind for kind, _ in waiters} == {"ok"} and late.duplicate is True
    assert sources == ["cache"] * 5, "a duplicate was not answered through Sentinel's master"
    assert fake_wechat.exchange_calls(code) == 1


def test_after_a_failover_the_front_follows_the_new_master(sentinel_front, fake_wechat):
    before = fake_wechat.issue_code("o_before_failover")
    exchange_once(before)

    sentinel_front.fail_over()

    # Whatever the first requests after the switch meet (a connection to the old master, now a
    # replica), every login is answered and every code is exchanged once; and soon the late
    # duplicates are answered from the new master again.
    sources, record = absorbed_sources()
    try:
        assert exchange_once(before).duplicate is True
        for attempt in range(20):
            code = fake_wechat.issue_code(f"o_after_failover_{attempt}")
            assert exchange_once(code).duplicate is False
            assert exchange_once(code).duplicate is True
            assert fake_wechat.exchange_calls(code) == 1
            if sources[-1] == "cache":
                break
    finally:
        signals.duplicate_absorbed.disconnect(record)
    assert sources[-1] == "cache", f"never answered from the new master: {sources}"
    assert fake_wechat.exchange_calls(before) == 1


def test_sentinel_and_master_gone_cost_a_login_no_more_than_a_moment(sentinel_front, fake_wechat):
    """With no Sentinel to ask and no master to reach, the front gives up at once (a warning)
    and the database answers."""
    first = fake_wechat.issue_code("o_sentinel_alive")
    exchange_once(first)
    sentinel_front.sentinel.kill()
    sentinel_front.master.kill()

    started = time.monotonic()
    code = fake_wechat.issue_code("o_sentinel_gone")
    assert exchange_once(code).duplicate is False
    assert exchange_once(code).duplicate is True
    assert fake_wechat.exchange_calls(code) == 1
    assert time.monotonic() - started < 2
