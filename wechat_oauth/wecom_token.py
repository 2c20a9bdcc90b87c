"""A WeCom app's access token, single-flight: one ``gettoken`` per app per token lifetime,
across every thread, worker and server.

WeCom's ``cgi-bin/gettoken?corpid&corpsecret`` answers a token valid 7200 s (the same token
while it lives) and is rate limited, so the token is kept where every server sees it: the
cache of CACHE_ALIAS when one is configured, else the ``WeComAccessToken`` table. Each process
also remembers it in memory until its refresh time, so a login reads neither.

Refreshing is single-flight. In the database the refresher holds the app's row lock
(``SELECT ... FOR UPDATE``; on SQLite the write lock) while WeCom answers; in the cache it holds
a lock key (``add``). Whoever waited then finds the new token and uses it.

A token is refreshed WECOM_TOKEN_REFRESH_MARGIN seconds before it expires. WeCom answers the same
token while it lives, so one that comes back inside the margin is used until it expires.

WeCom may end a token early (40014 invalid, 42001 expired). The caller then :meth:`drops
<AppTokens.drop>` the token it used, compare-and-delete: the stored token goes only if it is
still that stale one (another worker may already have stored a new one, which must survive),
and asks again: many workers hitting one stale token cause one ``gettoken``.

The token is never logged, never shown in the admin, never part of an error.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from django.core.cache import caches
from django.db import OperationalError, router

from .conf import app_settings
from .results import UTC, utc_now
from .transactions import is_deadlock, write_transaction

logger = logging.getLogger("wechat_oauth.wecom")

#: What ``gettoken`` gives: the token and its lifetime in seconds.
Fetch = Callable[[], tuple[str, int]]
#: A time long past: the refresh time of a token that must not be used.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: How often a process waiting for another's refresh in the cache looks again.
CACHE_POLL = 0.02
#: How many times a refresh that ended in a database deadlock is tried again.
DEADLOCK_RETRIES = 3


@dataclass(frozen=True)
class AppToken:
    value: str = field(repr=False)
    expires_at: datetime
    #: Past this moment the next request fetches a new token.
    refresh_at: datetime

    def usable(self, now: datetime) -> bool:
        return bool(self.value) and now < self.refresh_at

    @classmethod
    def fetched(cls, value: str, expires_in: int, *, now: datetime) -> AppToken:
        expires_at = now + timedelta(seconds=max(0, expires_in))
        refresh_at = expires_at - timedelta(seconds=float(app_settings.WECOM_TOKEN_REFRESH_MARGIN))
        # Inside the margin already (WeCom gave back the live token): use it to its end.
        return cls(value, expires_at, refresh_at if refresh_at > now else expires_at)


class TokenStore(Protocol):
    """Where the token of every app is shared between processes."""

    def load(self, key: str) -> AppToken | None: ...

    def refresh(self, key: str, fetch: Fetch, *, bound: float) -> AppToken:
        """The stored token if it is usable, else a new one from ``fetch``, one process at a
        time; ``bound`` is how long a fetch can take (seconds)."""

    def discard(self, key: str, stale: str) -> None:
        """Delete the stored token if (and only if) it is still ``stale``."""


class DatabaseTokenStore:
    """The ``WeComAccessToken`` table: one row per app, locked by whoever refreshes it."""

    def __init__(self, using: str | None = None) -> None:
        from .models import WeComAccessToken

        self.using = using or router.db_for_write(WeComAccessToken)

    def load(self, key: str) -> AppToken | None:
        from .models import WeComAccessToken

        row = (
            WeComAccessToken.objects.using(self.using)
            .filter(key=key)
            .values_list("access_token", "expires_at", "refresh_at")
            .first()
        )
        return AppToken(*row) if row is not None else None

    def refresh(self, key: str, fetch: Fetch, *, bound: float) -> AppToken:
        from .models import WeComAccessToken

        # The row exists before anyone locks it: concurrent first refreshes then queue on one
        # row lock instead of racing to insert it (a duplicate-key error, or an InnoDB deadlock).
        WeComAccessToken.objects.using(self.using).bulk_create(
            [WeComAccessToken(key=key, expires_at=EPOCH, refresh_at=EPOCH)], ignore_conflicts=True
        )
        for attempt in range(DEADLOCK_RETRIES + 1):
            try:
                with write_transaction(WeComAccessToken, self.using) as using:
                    row = WeComAccessToken.objects.using(using).select_for_update().get(key=key)
                    now = utc_now()
                    current = AppToken(row.access_token, row.expires_at, row.refresh_at)
                    if current.usable(now):  # a process before us refreshed it
                        return current
                    token = _fetch(key, fetch)
                    row.access_token, row.expires_at, row.refresh_at = (
                        token.value,
                        token.expires_at,
                        token.refresh_at,
                    )
                    row.fetched_at, row.fetches = now, row.fetches + 1
                    row.save(using=using)
                    return token
            except OperationalError as error:
                if not is_deadlock(error) or attempt == DEADLOCK_RETRIES:
                    raise
                logger.info("refreshing the WeCom token of %s ended in a deadlock: again", key)
        raise AssertionError("unreachable")

    def discard(self, key: str, stale: str) -> None:
        from .models import WeComAccessToken

        WeComAccessToken.objects.using(self.using).filter(key=key, access_token=stale).update(
            access_token="", expires_at=EPOCH, refresh_at=EPOCH
        )


class CacheTokenStore:
    """A shared Django cache (CACHE_ALIAS): the token under one key, a lock under another.

    Single keys only (``get``/``set``/``add``/``delete``): it works on one Redis, a Redis
    Cluster and memcached alike.
    """

    def __init__(self, alias: str) -> None:
        self.cache = caches[alias]

    @staticmethod
    def _keys(key: str) -> tuple[str, str]:
        base = f"wechat_oauth:wecom_token:{key}"
        return base, base + ":lock"

    def load(self, key: str) -> AppToken | None:
        stored = self.cache.get(self._keys(key)[0])
        if not isinstance(stored, dict):
            return None
        try:
            return AppToken(
                str(stored["v"]),
                datetime.fromtimestamp(stored["e"], UTC),
                datetime.fromtimestamp(stored["r"], UTC),
            )
        except (KeyError, TypeError, ValueError, OverflowError):
            return None

    def refresh(self, key: str, fetch: Fetch, *, bound: float) -> AppToken:
        token_key, lock_key = self._keys(key)
        lock_ttl = max(1, round(bound + 1))
        deadline = time.monotonic() + 2 * lock_ttl + 1
        while True:
            with self._locked(lock_key, lock_ttl) as held:
                current = self.load(key)
                if current is not None and current.usable(utc_now()):
                    return current
                if held:
                    token = _fetch(key, fetch)
                    ttl = max(1, round((token.expires_at - utc_now()).total_seconds()))
                    self.cache.set(
                        token_key,
                        {
                            "v": token.value,
                            "e": token.expires_at.timestamp(),
                            "r": token.refresh_at.timestamp(),
                        },
                        ttl,
                    )
                    return token
            if time.monotonic() > deadline:  # the lock outlived its holder twice: go alone
                return _fetch(key, fetch)
            time.sleep(CACHE_POLL)

    def discard(self, key: str, stale: str) -> None:
        token_key, lock_key = self._keys(key)
        deadline = time.monotonic() + 5
        while True:
            with self._locked(lock_key, 5) as held:
                if held:
                    current = self.load(key)
                    if current is not None and current.value == stale:
                        self.cache.delete(token_key)
                    return
            if time.monotonic() > deadline:
                return  # a refresher holds the lock: it replaces the token anyway
            time.sleep(CACHE_POLL)

    @contextmanager
    def _locked(self, lock_key: str, ttl: int) -> Iterator[bool]:
        """Try once to take the lock; yields whether this process holds it, and releases it
        on the way out if so (only if it is still ours: it may have expired meanwhile)."""
        owner = secrets.token_hex(8)
        held = bool(self.cache.add(lock_key, owner, ttl))
        try:
            yield held
        finally:
            if held and self.cache.get(lock_key) == owner:
                self.cache.delete(lock_key)


def _fetch(key: str, fetch: Fetch) -> AppToken:
    now = utc_now()
    value, expires_in = fetch()
    logger.info("fetched a new WeCom access token for %s (valid %d s)", key, expires_in)
    return AppToken.fetched(value, expires_in, now=now)


def token_store() -> TokenStore:
    """The cache of CACHE_ALIAS when one is configured, else the database."""
    alias = app_settings.CACHE_ALIAS
    return CacheTokenStore(alias) if alias else DatabaseTokenStore()


class AppTokens:
    """The access token of one WeCom app, as one client (one process) sees it."""

    def __init__(
        self, key: str, fetch: Fetch, *, bound: float, store: Callable[[], TokenStore] = token_store
    ) -> None:
        self.key, self.fetch, self.bound, self._store = key, fetch, bound, store
        self._memory: AppToken | None = None
        self._lock = threading.Lock()

    def get(self) -> str:
        """A usable token: from memory, else the shared store, else a single-flight refresh."""
        now = utc_now()
        memory = self._memory
        if memory is not None and memory.usable(now):
            return memory.value
        store = self._store()
        token = store.load(self.key)
        if token is None or not token.usable(now):
            with self._lock:  # this process's threads queue here, not on the store's lock
                memory = self._memory
                if memory is not None and memory.usable(utc_now()):
                    return memory.value
                token = store.refresh(self.key, self.fetch, bound=self.bound)
        self._memory = token
        return token.value

    def peek(self) -> str | None:
        """The token this process holds in memory, if it is still usable (no I/O)."""
        memory = self._memory
        return memory.value if memory is not None and memory.usable(utc_now()) else None

    def drop(self, stale: str) -> None:
        """WeCom refused ``stale``: forget it here, and in the store if it is still there."""
        memory = self._memory
        if memory is not None and memory.value == stale:
            self._memory = None
        self._store().discard(self.key, stale)
