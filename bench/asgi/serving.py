"""The three servings of the storm's guarded site compared by ``python -m bench.asgi``, and the
one-site stack each runs on.

Each serving gets a fresh :class:`~bench.storm.stack.Stack` (its own database, private Redis
and fake WeChat) with only the guarded site, one gunicorn instance of one worker: the worker
process is then the only process serving the site, so its thread count and the site
database's connection count belong to the one burst measured. The fake is served the same way
(its threaded WSGI server) for all three, so only the site's serving differs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.storm.databases import Database
from bench.storm.patterns import SiteHandle
from bench.storm.stack import Stack

SITE = "guarded"


@dataclass(frozen=True)
class Serving:
    name: str
    #: bench/storm/serving.py's server: "wsgi" (gthread) or "asgi" (uvicorn worker).
    server: str
    #: The guarded site's ASYNC_VIEWS.
    async_views: bool
    label: str


SERVINGS: tuple[Serving, ...] = (
    Serving("wsgi", "wsgi", False, "WSGI (gunicorn gthread, sync views)"),
    Serving("asgi_sync", "asgi", False, "ASGI (gunicorn + uvicorn worker), ASYNC_VIEWS False"),
    Serving("asgi_async", "asgi", True, "ASGI (gunicorn + uvicorn worker), ASYNC_VIEWS True"),
)


#: The guarded site's front: the storm's django-redis cache (``CACHE_ALIAS``: duplicates wait
#: on Redis) or none (the database alone: duplicates wait on the database).
FRONTS = ("redis", "none")


@dataclass
class GuardedOnlyStack(Stack):
    """The storm's stack with the guarded site alone (no naive site to start or migrate);
    ``front`` False: the site without its Redis front (the private Redis still runs)."""

    front: bool = True

    def environment(self, site: str, db: Database | None = None) -> dict[str, str]:
        env = super().environment(site, db)
        if not self.front:
            env.pop("STORM_REDIS_URL", None)
            env.pop("STORM_REDIS_SOCKET_TIMEOUT", None)
        return env

    @property
    def sites(self) -> tuple[str, ...]:
        return (SITE,)

    def site(self) -> SiteHandle:
        """The guarded site's handle; its one URL twice, for the patterns' alternating
        instances (``Context.home`` / ``other``)."""
        url = self.instances[SITE][0].url
        return SiteHandle(SITE, [url, url], self.fake.base_url)

    def worker_pid(self) -> int:
        """The one worker process serving the site."""
        pids = self.instances[SITE][0].worker_pids()
        if len(pids) != 1:
            raise RuntimeError(f"expected one worker, found {pids}")
        return pids[0]


def stack_for(
    serving: Serving, db: Database, log_dir: Path, *, latency: float, threads: int, front: str = "redis"
) -> GuardedOnlyStack:
    """One instance x one worker; ``threads``: gthread's threads (WSGI only: uvicorn runs each
    request's sync code in a thread of its own)."""
    logs = log_dir / front / serving.name
    shutil.rmtree(logs, ignore_errors=True)  # the instances append: this run's logs only
    return GuardedOnlyStack(
        db,
        logs,
        latency=latency,
        workers=1,
        threads=threads,
        server=serving.server,
        async_views=serving.async_views,
        instance_names=("A",),
        fake_server="wsgi",
        front=front == "redis",
    )
