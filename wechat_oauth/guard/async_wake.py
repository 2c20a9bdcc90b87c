"""A duplicate's wait on the Redis front's wake-up list, in the event loop (async views).

The sync front blocks a thread in BLPOP (:meth:`CacheFront.wait`); here the same pop runs on
an asyncio Redis client, so a waiting duplicate holds no thread. The client is built from the
django-redis connection's own settings (host, port, database, credentials, TLS, socket) with
the blocking pop's longer socket timeout, one per event loop (an asyncio client belongs to its
loop). For a Sentinel-managed master or a Redis Cluster there is no such client: the duplicate
then skips the Redis wait and waits in the database poll, which answers just as well, a few
milliseconds later.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from .cache import BLOCKING_SOCKET_MARGIN, FRONT_WAIT, CacheFront, CodeKeys, front_wait

logger = logging.getLogger("wechat_oauth.cache")

#: Connection settings an asyncio connection takes as the sync one does.
_PORTABLE = (
    "host",
    "port",
    "db",
    "username",
    "password",
    "socket_connect_timeout",
    "client_name",
    "path",
    "ssl_keyfile",
    "ssl_certfile",
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_ca_data",
    "ssl_check_hostname",
)

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = weakref.WeakKeyDictionary()


def async_redis_for(front: CacheFront) -> Any | None:
    """The asyncio Redis client of ``front``'s server for the running loop, or None when the
    server is not a plain Redis (Sentinel, Cluster) or its connection class is unknown."""
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    if front.alias not in per_loop:
        per_loop[front.alias] = _build(front.redis)
    return per_loop[front.alias]


def _build(client: Any) -> Any | None:
    import redis
    import redis.asyncio as aioredis
    from redis.sentinel import SentinelConnectionPool

    pool = getattr(client, "connection_pool", None)  # a RedisCluster has none
    if not isinstance(pool, redis.ConnectionPool) or isinstance(pool, SentinelConnectionPool):
        return None
    classes = {
        redis.Connection: aioredis.Connection,
        redis.SSLConnection: aioredis.SSLConnection,
        redis.UnixDomainSocketConnection: aioredis.UnixDomainSocketConnection,
    }
    connection_class = classes.get(pool.connection_class)
    if connection_class is None:
        return None
    kwargs = {name: value for name, value in pool.connection_kwargs.items() if name in _PORTABLE}
    kwargs["socket_timeout"] = FRONT_WAIT + BLOCKING_SOCKET_MARGIN
    return aioredis.Redis(
        connection_pool=aioredis.ConnectionPool(connection_class=connection_class, **kwargs)
    )


async def wait_for_wake(front: CacheFront, keys: CodeKeys, up_to: float) -> bool:
    """Whether the holder's wake-up came within ``up_to`` seconds (never more than
    FRONT_WAIT). False also when Redis fails or cannot be waited on here: the database
    decides then."""
    from redis.exceptions import RedisError

    client = async_redis_for(front)
    if client is None:
        return False
    try:
        return await client.blpop([keys.wake], timeout=front_wait(up_to)) is not None
    except (RedisError, OSError) as error:
        logger.debug("cache front: async wait failed (%s), waiting in the database", type(error).__name__)
        return False
