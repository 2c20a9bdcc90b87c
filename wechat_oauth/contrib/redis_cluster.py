"""A django-redis connection factory for Redis Cluster (django-redis has none of its own).

.. code-block:: python

    CACHES["wechat"] = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://10.0.0.11:6379",  # any one node: the client finds the others
        "OPTIONS": {
            "CONNECTION_FACTORY": "wechat_oauth.contrib.redis_cluster.ClusterConnectionFactory",
            "SOCKET_CONNECT_TIMEOUT": 0.05,
            "SOCKET_TIMEOUT": 0.05,
        },
    }

The client is redis-py's :class:`~redis.cluster.RedisCluster`, which follows MOVED/ASK
redirections and the cluster's topology. django-redis's single-key calls work through it; its
multi-key calls (``get_many``, ``set_many``, ``delete_many``) need all their keys in one slot
there, so give the front (and, if you like, the code budgets) an alias of their own rather
than the site's general cache. The front itself sends each script only keys of one slot (see
:mod:`wechat_oauth.guard.cache`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django_redis.pool import ConnectionFactory
from redis.cluster import RedisCluster

__all__ = ["ClusterConnectionFactory"]


class ClusterConnectionFactory(ConnectionFactory):
    """One :class:`RedisCluster` client per LOCATION and connection options, per process
    (each keeps a pool per node), as django-redis keeps one pool per LOCATION."""

    _clusters: ClassVar[dict[tuple[Any, ...], RedisCluster]] = {}

    def connect(self, url: str) -> RedisCluster:
        params = self.make_connection_params(url)
        params.pop("parser_class", None)  # RedisCluster picks its own parser per node
        key = tuple(sorted((name, repr(value)) for name, value in params.items()))
        if key not in self._clusters:
            self._clusters[key] = RedisCluster.from_url(params.pop("url"), **params, **self.pool_cls_kwargs)
        return self._clusters[key]

    def disconnect(self, connection: RedisCluster) -> None:
        connection.disconnect_connection_pools()
