"""The optional django-redis front of the exchange (setting ``CACHE_ALIAS``).

It saves work; it never decides. The ``OAuthCodeUse`` row stays the fence, so a Redis that
loses a key, restarts empty, expires a marker early or disagrees between servers can at worst
send a request down the database path, never cause a second exchange.

Per code (app id + code hash), under the cache's KEY_PREFIX:

``wechat_oauth:{s<n>}:<app id>:<code hash>:r``  the stored outcome (sealed JSON), written
         after the row commits, for DEDUPE_WINDOW
``…:f``  "in flight" marker, set by the first request to arrive, for the hold timeout
``…:w``  wake-up list: the holder pushes one token when it publishes; each waiter that pops
         it pushes it back for the next (a blocked BLPOP wakes within a round trip, where
         redis-py's ``Lock`` polls every 100 ms). A waiter blocks at most FRONT_WAIT (1 s),
         then waits in the database, which also notices a holder that died.
``…:n``  duplicates answered from Redis (count, latest arrival, re-sent variant), kept for
         COUNTER_RETENTION and folded into the row by :func:`fold_counters`
         (``purge_oauth_codes`` calls it)

and ``wechat_oauth:{s<n>}:pending``, the codes of shard ``n`` whose counters await folding.

``{s<n>}`` is a hash tag: Redis Cluster hashes only that part of a key, so a code's keys and
its shard's pending set live in one slot (``n``, a hash of the code, spreads codes over
SHARDS slots), and every script touches that one slot. It works the same on one Redis, on a
cluster, and on a cloud "cluster edition" behind a proxy. One Lua script answers a late
duplicate (GET + counters) or claims the marker: one round trip; the holder's publication
is a second.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from django.core.signals import setting_changed
from django.db.models import F
from django.dispatch import receiver
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from ..conf import app_settings
from ..hashing import keyed_hash, signing_keys
from ..models import OAuthCodeUse
from ..outcome import StoredOutcome
from ..throttled_log import ThrottledLog

logger = logging.getLogger("wechat_oauth.cache")

# Both scripts take KEYS = result, flight, counters, pending, wake (all of one slot) and
# ARGV = hold ms, arrival ms, re-sent (0/1), pending member, counters TTL ms.
COUNT_DUPLICATE = """
local function count_duplicate()
  redis.call('HINCRBY', KEYS[3], 'dups', 1)
  local last = tonumber(redis.call('HGET', KEYS[3], 'last') or '0')
  if tonumber(ARGV[2]) > last then redis.call('HSET', KEYS[3], 'last', ARGV[2]) end
  if ARGV[3] == '1' then redis.call('HSET', KEYS[3], 'resent', '1') end
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[5]))
end
"""
# A request arrives: replay a finished exchange, or claim the marker, or report it in flight.
ENTER_SCRIPT = (
    COUNT_DUPLICATE
    + """
local result = redis.call('GET', KEYS[1])
if result then
  count_duplicate()
  return {1, result}
end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[1]) then
  return {2, false}
end
return {3, redis.call('PTTL', KEYS[2])}
"""
)
# A waiter woke up: pass the token on to the next waiter and read the published outcome.
WAKE_SCRIPT = (
    COUNT_DUPLICATE
    + """
redis.call('LPUSH', KEYS[5], '1')
local result = redis.call('GET', KEYS[1])
if result then count_duplicate() end
return result
"""
)
# The holder is done: store its outcome (ARGV[1]; none when empty) for ARGV[2] ms, drop the
# in-flight marker and wake the waiters. KEYS = result, flight, wake; ARGV[3] = wake list TTL ms.
PUBLISH_SCRIPT = """
if ARGV[1] ~= '' then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
redis.call('DEL', KEYS[2])
redis.call('LPUSH', KEYS[3], '1')
redis.call('PEXPIRE', KEYS[3], ARGV[3])
"""
# Read a code's counters and delete them at once: no count is folded twice. KEYS = counters.
TAKE_COUNTERS_SCRIPT = """
local counters = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return counters
"""
REPLAY, CLAIMED, IN_FLIGHT, BYPASS = 1, 2, 3, 0
#: Extra seconds a waiter gives a holder beyond its marker's time left.
WAIT_MARGIN = 0.5
#: Longest wait (seconds) for a holder on Redis before a duplicate goes to the database, which
#: also wakes it promptly (on commit) and, unlike Redis, notices a holder that died.
FRONT_WAIT = 1.0
#: A blocking pop's client must outlast it: Redis checks blocking timeouts only every ~100 ms
#: (hz 10), so the pop may return that much after its timeout.
BLOCKING_SOCKET_MARGIN = 0.5
#: How many hash tags (``{s0}`` … ``{s63}``) the front spreads codes over: on Redis Cluster,
#: that many slots, spread over the masters; each has its own pending set.
SHARDS = 64
#: Seconds the duplicate counters of a code are kept for :func:`fold_counters` after its
#: latest duplicate: longer than any sensible ``purge_oauth_codes`` interval (the docs'
#: cron runs it every 5 minutes). They are statistics: what is not folded in time is lost,
#: never a login.
COUNTER_RETENTION = 3600


@dataclass(frozen=True)
class Entry:
    """What the front said about a code when a request arrived."""

    kind: int
    outcome: StoredOutcome | None = None
    #: For IN_FLIGHT: how long (ms) the holder's marker has left.
    flight_ttl_ms: int = 0


class CodeKeys:
    """The keys of one code, all under its shard's hash tag (one slot on Redis Cluster;
    system check E013 refuses a KEY_PREFIX that would put another ``{`` first)."""

    def __init__(self, make_key: Callable[[str], str], app_id: str, code_hash: str) -> None:
        self.member = f"{app_id}:{code_hash}"
        shard = shard_tag(zlib.crc32(self.member.encode()) % SHARDS)
        base = make_key(f"wechat_oauth:{shard}:{self.member}")
        self.result, self.flight, self.wake, self.counters = (
            f"{base}:r",
            f"{base}:f",
            f"{base}:w",
            f"{base}:n",
        )
        self.pending = pending_key(make_key, shard)


def shard_tag(shard: int) -> str:
    return f"{{s{shard}}}"


def pending_key(make_key: Callable[[str], str], tag: str) -> str:
    return make_key(f"wechat_oauth:{tag}:pending")


class CacheFront:
    def __init__(self, alias: str) -> None:
        from django.core.cache import caches
        from django_redis import get_redis_connection

        self.alias = alias
        self.cache = caches[alias]
        self.redis = get_redis_connection(alias)
        self._enter = self.redis.register_script(ENTER_SCRIPT)
        self._woken = self.redis.register_script(WAKE_SCRIPT)
        self._publish = self.redis.register_script(PUBLISH_SCRIPT)
        self._take_counters = self.redis.register_script(TAKE_COUNTERS_SCRIPT)
        self.waiting = blocking_client(self.redis)

    def keys(self, app_id: str, code_hash: str) -> CodeKeys:
        return CodeKeys(self.cache.make_key, app_id, code_hash)

    def pending_sets(self) -> list[str]:
        return [pending_key(self.cache.make_key, shard_tag(shard)) for shard in range(SHARDS)]

    def _script_arguments(self, keys: CodeKeys, arrival: datetime, resent: bool) -> dict[str, list[Any]]:
        return {
            "keys": [keys.result, keys.flight, keys.counters, keys.pending, keys.wake],
            "args": [
                round(app_settings.hold_timeout * 1000),
                _ms(arrival),
                int(resent),
                keys.member,
                COUNTER_RETENTION * 1000,
            ],
        }

    def enter(self, keys: CodeKeys, *, arrival: datetime, resent: bool) -> Entry:
        """Replay a finished exchange, claim the in-flight marker, or report one in flight."""
        with self._degrade():
            kind, value = self._enter(**self._script_arguments(keys, arrival, resent))
            if kind == REPLAY:
                outcome = open_outcome(value)
                return Entry(REPLAY, outcome=outcome) if outcome is not None else Entry(BYPASS)
            return Entry(kind, flight_ttl_ms=int(value or 0))
        return Entry(BYPASS)

    def wait(self, keys: CodeKeys, *, arrival: datetime, resent: bool, up_to: float) -> StoredOutcome | None:
        """Block until the holder publishes, for at most ``up_to`` seconds (and never more than
        FRONT_WAIT); None: go to the database.

        The database, not Redis, notices a holder that died (its lock goes with its connection),
        so a duplicate waits on Redis only as long as an exchange normally takes, then lets the
        database decide.
        """
        with self._degrade():
            popped = self.waiting.blpop([keys.wake], timeout=front_wait(up_to))
            if popped is None:
                return None
            return self.woken(keys, arrival=arrival, resent=resent)
        return None

    def woken(self, keys: CodeKeys, *, arrival: datetime, resent: bool) -> StoredOutcome | None:
        """After a waiter's pop: pass the wake-up on, count the duplicate, read the outcome
        (None: the holder released its claim, or Redis failed)."""
        with self._degrade():
            result = self._woken(**self._script_arguments(keys, arrival, resent))
            return open_outcome(result) if result is not None else None
        return None

    def publish(self, keys: CodeKeys, outcome: StoredOutcome) -> None:
        """Store a committed outcome until the window closes, and wake the waiters."""
        ttl_ms = round((outcome.window_closes_at - timezone.now()).total_seconds() * 1000)
        self._finish(keys, seal_outcome(outcome) if ttl_ms > 0 else "", ttl_ms)

    def release(self, keys: CodeKeys) -> None:
        """No outcome to publish (the claim was rolled back): send waiters to the database."""
        self._finish(keys, "", 0)

    def _finish(self, keys: CodeKeys, outcome_json: str, ttl_ms: int) -> None:
        with self._degrade():
            self._publish(
                keys=[keys.result, keys.flight, keys.wake],
                args=[outcome_json, ttl_ms, round(app_settings.wait_timeout * 1000) + 1000],
            )

    def _degrade(self) -> _Degrade:
        """Redis failing must cost at most a socket timeout and a (rate-limited) warning."""
        return _Degrade(self.alias)


class _Degrade:
    """CacheFront._degrade: a RedisError inside is warned about and swallowed (a class, not a
    generator context manager, so that type checkers know the block may end early)."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        from redis.exceptions import RedisError

        if isinstance(error, RedisError):
            _warn_unavailable(self.alias, error)
            return True
        return False


#: Hex characters of the MAC in front of each outcome the front stores.
_MAC_CHARS = 64


def seal_outcome(outcome: StoredOutcome) -> str:
    """The outcome's JSON behind its HMAC: Redis is not trusted to mint logins."""
    text = outcome.to_json()
    return keyed_hash("cache.outcome", text) + text


def open_outcome(value: str | bytes) -> StoredOutcome | None:
    """The outcome a sealed value holds, or None (logged) when its MAC does not verify under
    any signing key: whoever can write to the Redis server must not be able to log anyone in
    as any openid. The request then goes to the database, which decides."""
    text = value.decode() if isinstance(value, bytes) else value
    mac, body = text[:_MAC_CHARS], text[_MAC_CHARS:]
    if any(
        constant_time_compare(mac, keyed_hash("cache.outcome", body, secret=key)) for key in signing_keys()
    ):
        return StoredOutcome.from_json(body)
    _forged.log(
        logging.ERROR,
        "cache front: an outcome in Redis failed its MAC check and was "
        "ignored (someone else writes to this Redis, or HASH_KEY/SECRET_KEY differ "
        "between servers)",
    )
    return None


def front_wait(up_to: float) -> float:
    """How long one blocking pop waits: ``up_to``, never more than FRONT_WAIT."""
    return max(0.01, min(up_to, FRONT_WAIT))


def blocking_client(client: Any) -> Any:
    """A client of the same server(s) for blocking pops, on connections of its own, whose
    socket timeout outlasts FRONT_WAIT: the cache's own short SOCKET_TIMEOUT (right for every
    other call) would cut a blocking pop off and look like a dead Redis. For a plain Redis, a
    Sentinel-managed master and a Redis Cluster alike."""
    import redis
    from redis.cluster import ClusterNode, RedisCluster
    from redis.sentinel import SentinelConnectionPool

    socket_timeout = FRONT_WAIT + BLOCKING_SOCKET_MARGIN
    if isinstance(client, RedisCluster):
        kwargs = {**client.nodes_manager.connection_kwargs, "socket_timeout": socket_timeout}
        for name in ("host", "port", "connection_pool", "connection_class"):
            kwargs.pop(name, None)
        nodes = [ClusterNode(node.host, node.port) for node in client.get_primaries()]
        return RedisCluster(startup_nodes=nodes, **kwargs)
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "socket_timeout": socket_timeout}
    if isinstance(pool, SentinelConnectionPool):
        kwargs.pop("connection_pool", None)
        return redis.Redis(
            connection_pool=SentinelConnectionPool(
                pool.service_name, pool.sentinel_manager, is_master=True, **kwargs
            )
        )
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))


def fold_counters(alias: str | None = None, *, batch: int = 500) -> int:
    """Move the duplicate counts the front kept in Redis into the ``OAuthCodeUse`` rows.

    Returns how many rows were updated. Safe to run anywhere, any time, on several servers at
    once: each code's counters are read and deleted by one script, so no count is folded
    twice (a duplicate counted after its code was folded lists the code again).
    """
    front = cache_front(alias)
    if front is None:
        return 0
    folded = 0
    with front._degrade():
        for pending in front.pending_sets():
            while members := front.redis.zpopmin(pending, batch):
                for member, _score in members:
                    app_id, code_hash = member.decode().split(":", 1)
                    flat = front._take_counters(keys=[front.keys(app_id, code_hash).counters])
                    folded += _fold_one(app_id, code_hash, dict(zip(flat[::2], flat[1::2], strict=True)))
    return folded


def _fold_one(app_id: str, code_hash: str, counters: dict[bytes, bytes]) -> int:
    count = int(counters.get(b"dups", 0))
    if not count:
        return 0
    row = OAuthCodeUse.objects.filter(app_id=app_id, code_hash=code_hash).first()
    if row is None:
        return 0
    last = datetime.fromtimestamp(int(counters[b"last"]) / 1000, tz=row.first_seen_at.tzinfo)
    changes: dict[str, Any] = {
        "duplicates": F("duplicates") + count,
        "max_gap_ms": max(row.max_gap_ms, _ms(last) - _ms(row.first_seen_at)),
        "last_seen_at": max(row.last_seen_at, last),
    }
    if counters.get(b"resent"):
        changes["resent_variant_seen"] = True
    return OAuthCodeUse.objects.filter(pk=row.pk).update(**changes)


_unavailable = ThrottledLog(logger)
_forged = ThrottledLog(logger)


def _warn_unavailable(alias: str, error: Exception) -> None:
    _unavailable.log(
        logging.WARNING,
        "cache front %r unusable, using the database alone: %s: %s",
        alias,
        type(error).__name__,
        error,
    )


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


_fronts: dict[str, CacheFront | None] = {}


def cache_front(alias: str | None = None) -> CacheFront | None:
    """The front for ``alias`` (default: CACHE_ALIAS), one per alias and process; None when
    there is no alias or it is not a django-redis cache (see the system checks)."""
    alias = alias or app_settings.CACHE_ALIAS
    if not alias:
        return None
    if alias not in _fronts:
        _fronts[alias] = CacheFront(alias) if is_django_redis(alias) else None
    return _fronts[alias]


def is_django_redis(alias: str) -> bool:
    from django.conf import settings

    backend: str = settings.CACHES.get(alias, {}).get("BACKEND", "")
    return backend.startswith("django_redis.")


@receiver(setting_changed)
def _forget_fronts(*, setting: str, **kwargs: Any) -> None:
    if setting in ("CACHES", "WECHAT_OAUTH"):
        _fronts.clear()
