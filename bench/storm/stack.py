"""Bring the whole storm up and down on one database: fake WeChat, private Redis, the sites'
databases, 2 x 2 gunicorns (gthread workers, or uvicorn workers with ``server="asgi"``, which
also serves the fake WeChat under ASGI).

:class:`Stack` serves the guarded and naive sites; a subclass serves other sites through its
hooks (:attr:`~Stack.sites`, :meth:`~Stack.wsgi`, :meth:`~Stack.start_upstream`,
:meth:`~Stack.environment`): a library's stock and drop-in sites,
bench/storm/library_storm.py."""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.storm.apps import APP_IDS, KINDS, WECOM_AGENT_ID
from bench.storm.databases import Database
from bench.storm.patterns import SiteHandle
from bench.storm.services import (
    Instance,
    PrivateRedis,
    finish_migration,
    migrate,
    site_environment,
)

SITES = ("guarded", "naive")


@dataclass
class Stack:
    db: Database
    log_dir: Path
    latency: float
    workers: int = 2
    threads: int = 8
    keep_databases: bool = False
    redis_socket_timeout: float = 0.05
    conn_max_age: int = 0
    #: "wsgi" or "asgi" (bench/storm/serving.py): the sites' workers and the fake's server.
    server: str = "wsgi"
    #: The guarded site's ASYNC_VIEWS (None: not set, the app's default).
    async_views: bool | None = None
    #: The gunicorn instances of each site (bench/asgi: one, "A").
    instance_names: tuple[str, ...] = ("A", "B")
    #: How the fake WeChat is served ("wsgi" or "asgi"; None: as the sites, ``server``).
    fake_server: str | None = None
    fake: Any = None
    redis: PrivateRedis | None = None
    instances: dict[str, list[Instance]] = field(default_factory=dict)
    envs: dict[str, dict[str, str]] = field(default_factory=dict)
    #: The secret of each site's app of each kind (bench/storm/apps.py; WeCom: its agent's),
    #: all on the one fake.
    app_secrets: dict[str, dict[str, str]] = field(
        default_factory=lambda: {site: {kind: secrets.token_hex(16) for kind in KINDS} for site in SITES}
    )

    def handle(self, site: str) -> SiteHandle:
        return SiteHandle(site, [instance.url for instance in self.instances[site]], self.fake.base_url)

    def environment(self, site: str, db: Database | None = None) -> dict[str, str]:
        """The site's environment, with this stack's fake WeChat and Redis; its database in
        ``db`` (default: the stack's)."""
        assert self.redis is not None
        return site_environment(
            site,
            self.db if db is None else self.db.alongside(db),
            fake_url=self.fake.base_url,
            app_secrets=self.app_secrets[site],
            redis_url=self.redis.url,
            redis_socket_timeout=self.redis_socket_timeout,
            conn_max_age=self.conn_max_age,
            async_views=self.async_views,
        )

    @property
    def sites(self) -> tuple[str, ...]:
        """The sites this stack serves (their databases, two gunicorn instances each)."""
        return SITES

    def wsgi(self, site: str) -> str:
        """The WSGI application gunicorn serves for ``site``."""
        return "bench.storm.wsgi:application"

    def start_upstream(self) -> None:
        """What the sites talk to: the fake WeChat with every app of both sites, a private
        Redis for the guarded site's front."""
        from wechat_oauth.testing import FakeAgent, FakeApp, FakeWeChatProcess

        # The guarded site's Official Account is the fake's default app; the other WeChat apps
        # are added to it (every one bound to the Open Platform account: one unionid per
        # person), and each site's WeCom app is an agent of a corp of its own.
        others = [
            FakeApp(APP_IDS[site][kind], self.app_secrets[site][kind])
            for site in SITES
            for kind in KINDS
            if kind != "wecom" and (site, kind) != ("guarded", "mp")
        ]
        corps = [
            FakeAgent(APP_IDS[site]["wecom"], WECOM_AGENT_ID, self.app_secrets[site]["wecom"])
            for site in SITES
        ]
        self.fake = FakeWeChatProcess(
            app_id=APP_IDS["guarded"]["mp"],
            app_secret=self.app_secrets["guarded"]["mp"],
            apps=others,
            corps=corps,
            latency=self.latency,
            asgi=(self.fake_server or self.server) == "asgi",
        )
        self.fake.start()
        self.redis = PrivateRedis(self.log_dir / "redis.log")
        self.redis.start()

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.start_upstream()
        for site in self.sites:
            self.db.create(site)
            self.envs[site] = self.environment(site)
        migrations = [migrate(self.envs[site]) for site in self.sites]
        for process in migrations:
            finish_migration(process)
        for site in self.sites:
            self.instances[site] = [
                Instance(
                    site,
                    name,
                    self.envs[site],
                    self.log_dir / f"{site}-{name}.log",
                    workers=self.workers,
                    threads=self.threads,
                    wsgi=self.wsgi(site),
                    server=self.server,
                )
                for name in self.instance_names
            ]
            for instance in self.instances[site]:
                instance.start()
        for site in self.sites:
            for instance in self.instances[site]:
                instance.wait_ready()

    def stop(self) -> None:
        for instances in self.instances.values():
            for instance in instances:
                with contextlib.suppress(Exception):
                    instance.stop()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                self.redis.stop()
        if self.fake is not None:
            with contextlib.suppress(Exception):
                self.fake.stop()
        if not self.keep_databases:
            for site in self.sites:
                with contextlib.suppress(Exception):
                    self.db.drop(site)
            self.db.remove()
        with contextlib.suppress(Exception):
            self.db.close()

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def gettoken_calls(self) -> dict[str, int]:
        """cgi-bin/gettoken requests of each site's WeCom agent so far (the fake's counter)."""
        return {site: self.fake.gettoken_calls(APP_IDS[site]["wecom"], WECOM_AGENT_ID) for site in SITES}

    def logs(self, site: str) -> str:
        return "\n".join(instance.log_text() for instance in self.instances.get(site, []))


def layout() -> dict[str, int]:
    """The shape every storm's stack has (the report's setup says it): instances of each site,
    workers of each instance."""
    return {"instances": len(Stack.instance_names), "workers": Stack.workers}
