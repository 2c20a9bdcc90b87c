"""The async guard: the same fence, rows and outcomes as :mod:`.database`, for async views.

A sync and an async server may share one database: both claim a code with the same INSERT
into the same unique constraint, and replay the same stored outcome. What differs is how a
request waits.

* **The holder** claims the code in a transaction held open while WeChat answers, as the sync
  guard does, on a claim thread of its own (:mod:`.exchange_loop`); the call to WeChat goes
  through httpx, on the exchange loop, so that a cancelled request (WeChat's client aborts the
  first callback) cannot stop the exchange it started.
* **A duplicate never waits inside the database.** Its INSERT is told not to wait for a lock
  (PostgreSQL ``lock_timeout`` 1 ms, MariaDB ``innodb_lock_wait_timeout`` 0, SQLite
  ``busy_timeout`` 20 ms, as its one write lock is also taken by other requests' short
  writes): it fails at once while the holder is at work (a plain read then finds no committed
  row; it finds one when the lock was a replaying twin's count), and the duplicate waits in the event
  loop instead, holding no thread and no connection: on the Redis front's wake-up list through
  an asyncio Redis client where there is one, otherwise by trying again after a short sleep
  (5 ms, doubling up to ASYNC_POLL_INTERVAL) until WAIT_TIMEOUT. One duplicate per process and
  code polls; the others wait for it, then try once more. When the holder commits, the next
  try fails on the constraint and replays the outcome, exactly like the sync path; when the
  holder's transaction is gone without an outcome, the next try becomes the holder.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import IntegrityError, OperationalError, connections, transaction

from ..conf import app_settings
from ..exceptions import ExchangeWaitTimeout, WeChatOAuthError
from ..models import OAuthCodeUse
from ..outcome import StoredOutcome
from ..transactions import is_deadlock
from .async_wake import wait_for_wake
from .cache import CLAIMED, IN_FLIGHT, REPLAY, WAIT_MARGIN, CacheFront, CodeKeys
from .database import (
    DatabaseGuard,
    _ReleaseClaim,
    _session_bounds,
    final_error,
    record_outcome,
)
from .duplicates import Claim, Exchange, answer_duplicate
from .exchange_loop import ClaimThread, claim_threads, run_on_exchange_loop

if TYPE_CHECKING:
    from ..results import TokenResult

logger = logging.getLogger("wechat_oauth.exchange")

UpstreamCall = Callable[[], Awaitable["TokenResult"]]

#: A twin's INSERT on PostgreSQL gives up after this long, s (lock_timeout 1 ms; 0 would mean
#: "wait forever").
NO_WAIT_LOCK_WAIT = 0.001
#: SQLite has one write lock for the whole database: a claim's INSERT waits this long (ms) for
#: it, long enough for another request's short write (a duplicate's counters, a session) and
#: far shorter than a holder's exchange.
SQLITE_CLAIM_BUSY_MS = 20
#: The first pause between a duplicate's tries; it doubles up to ASYNC_POLL_INTERVAL.
FIRST_POLL_INTERVAL = 0.005


class _Busy:
    """The code is held by a transaction in progress (or the database broke a deadlock)."""


BUSY = _Busy()


@dataclass
class _Held:
    """A claim whose INSERT succeeded: its transaction (and session bounds) stay open."""

    row: OAuthCodeUse
    stack: ExitStack

    def commit(self) -> None:
        self.stack.close()

    def roll_back(self, error: BaseException) -> None:
        self.stack.__exit__(type(error), error, error.__traceback__)


class AsyncDatabaseGuard(DatabaseGuard):
    """:class:`DatabaseGuard` for the event loop (see the module's docstring)."""

    async def aexchange(self, call: UpstreamCall, claim: Claim) -> Exchange:
        deadline = time.monotonic() + app_settings.wait_timeout
        while True:
            attempt = await run_on_exchange_loop(self._attempt(call, claim))
            if not isinstance(attempt, _Busy):
                return attempt
            left = deadline - time.monotonic()
            watch = _watches().get(self._watch_key(claim))
            if watch is not None and left > 0:
                # Another duplicate of this code, in this process, is polling: wait for it to
                # see the code settled, then try once more (most likely: replay the outcome).
                await asyncio.wait({watch}, timeout=left)
                continue
            if left <= 0:
                break
            attempt = await self._poll(call, claim, deadline)
            if not isinstance(attempt, _Busy):
                return attempt
            break
        waited = app_settings.wait_timeout
        logger.warning("duplicate of code %s gave up after waiting %.1f s", claim.code_hash[:12], waited)
        raise ExchangeWaitTimeout(f"An earlier request is still exchanging this code (waited {waited:.1f} s)")

    async def _poll(self, call: UpstreamCall, claim: Claim, deadline: float) -> Exchange | _Busy:
        """Try again after 5 ms, 10 ms, ... up to ASYNC_POLL_INTERVAL, until the code is
        settled (replayed, or claimed by this request) or the deadline passes. The only poller
        of its code in this process: the others wait for its watch to end (at most one
        connection per process polls for a code, however many duplicates wait)."""
        key, settled = self._watch_key(claim), asyncio.get_running_loop().create_future()
        _watches()[key] = settled
        pause = FIRST_POLL_INTERVAL
        try:
            while (left := deadline - time.monotonic()) > 0:
                await asyncio.sleep(min(pause, left))
                pause = min(pause * 2, float(app_settings.ASYNC_POLL_INTERVAL))
                attempt = await run_on_exchange_loop(self._attempt(call, claim))
                if not isinstance(attempt, _Busy):
                    return attempt
            return BUSY
        finally:
            if _watches().get(key) is settled:
                del _watches()[key]
            settled.set_result(None)

    def _watch_key(self, claim: Claim) -> tuple[str, str, str]:
        return (self.using, claim.app_id, claim.code_hash)

    # -- on the exchange loop --------------------------------------------------------------

    async def _attempt(self, call: UpstreamCall, claim: Claim) -> Exchange | _Busy:
        """One claim: the holder's whole exchange, a duplicate's replay, or BUSY. At most
        ATTEMPTS_AT_ONCE claims that do not (yet) hold a code run at once in this process, so a
        burst of duplicates cannot open a connection each."""
        async with _attempt_slots():
            thread = claim_threads.borrow()
            try:
                attempt = await thread.run(self._claim_or_replay, claim)
            except BaseException:
                await claim_threads.give_back(thread, self.using)
                raise
            if not isinstance(attempt, _Held):
                await claim_threads.give_back(thread, self.using)
                return attempt
        try:  # this request holds the code: its thread until the outcome is committed
            return await self._hold(thread, attempt, call, claim)
        finally:
            await claim_threads.give_back(thread, self.using)

    async def _hold(self, thread: ClaimThread, held: _Held, call: UpstreamCall, claim: Claim) -> Exchange:
        row = held.row
        try:
            await thread.run(self._admit, claim)
            started = time.monotonic()
            try:
                token: TokenResult | None = await call()
                error: WeChatOAuthError | None = None
            except WeChatOAuthError as exc:
                token, error = None, final_error(exc)
            record_outcome(row, started, token, error)
            await thread.run(self._commit, held)
        except BaseException as failure:
            await thread.run(held.roll_back, failure)
            if isinstance(failure, _ReleaseClaim):
                logger.warning(
                    "exchange of code %s not sent (%s): claim released for a retry",
                    claim.code_hash[:12],
                    failure.error,
                )
                raise failure.error from None
            raise
        return await thread.run(self._report, row, token, error, claim)

    # -- in the claim's thread -------------------------------------------------------------

    def _claim_or_replay(self, claim: Claim) -> _Held | Exchange | _Busy:
        """The claim (held), or the replay of an earlier request's committed outcome, or BUSY:
        all on this thread's one connection."""
        attempt = self._try_claim(claim)
        if isinstance(attempt, OAuthCodeUse):
            return self._absorb_duplicate(attempt, claim)
        return attempt

    def _try_claim(self, claim: Claim) -> _Held | OAuthCodeUse | _Busy:
        """INSERT the code's row without waiting for a lock: held (the transaction stays open),
        the committed row of an earlier request, or BUSY."""
        connection = connections[self.using]
        connection.close_if_unusable_or_obsolete()
        stack = ExitStack()
        try:
            stack.enter_context(_session_bounds(connection, lock_wait=0))
            stack.enter_context(transaction.atomic(using=self.using, durable=True))
            with _sqlite_no_wait(connection):
                row = self._insert_claim(claim, bounds=self._wait_bounds(NO_WAIT_LOCK_WAIT))
            self._bound_holder()
        except IntegrityError as lost:
            stack.__exit__(type(lost), lost, lost.__traceback__)
            return OAuthCodeUse.objects.using(self.using).get(app_id=claim.app_id, code_hash=claim.code_hash)
        except OperationalError as exc:
            stack.__exit__(type(exc), exc, exc.__traceback__)
            if self._is_lock_wait_timeout(exc) or is_deadlock(exc):
                return self._settled_row(claim) or BUSY
            raise
        except BaseException:
            stack.__exit__(*sys.exc_info())
            raise
        return _Held(row=row, stack=stack)

    def _settled_row(self, claim: Claim) -> OAuthCodeUse | None:
        """The code's committed row, if it has one, after a claim's INSERT met a lock. The lock
        need not be the holder's: once the code is settled, every duplicate that replays it
        counts itself on the row (:meth:`_absorb_duplicate`'s UPDATE), and a twin's INSERT
        meeting that UPDATE would be told BUSY and wait for nothing. A plain read sees the
        last committed version, and nothing while the holder is still at work."""
        try:
            return (
                OAuthCodeUse.objects.using(self.using)
                .filter(app_id=claim.app_id, code_hash=claim.code_hash)
                .first()
            )
        except OperationalError:  # SQLite: the write lock's holder is committing
            return None

    def _bound_holder(self) -> None:
        """PostgreSQL: the holder's own statements wait as the sync guard's do (WAIT_TIMEOUT):
        the 1 ms bound is for the claim's INSERT only. (A twin's INSERT still waiting on this
        code can briefly hold up the holder's UPDATE of its row.)"""
        connection = connections[self.using]
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, true)",
                [f"{round(app_settings.wait_timeout * 1000)}ms"],
            )

    def _commit(self, held: _Held) -> None:
        held.row.save(using=self.using, update_fields=OAuthCodeUse.OUTCOME_FIELDS)
        if self.on_outcome is not None:
            transaction.on_commit(partial(self.on_outcome, held.row.outcome), using=self.using)
        held.commit()


#: Claims that do not hold a code (yet) running at once per process (see ``_attempt``).
ATTEMPTS_AT_ONCE = 4

_slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}
_watch_maps: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str, str], asyncio.Future[None]]
] = weakref.WeakKeyDictionary()


def _attempt_slots() -> asyncio.Semaphore:
    """The exchange loop's semaphore of claim attempts."""
    loop = asyncio.get_running_loop()
    if loop not in _slots:
        _slots.clear()  # a forked child's loop replaces the parent's
        _slots[loop] = asyncio.Semaphore(ATTEMPTS_AT_ONCE)
    return _slots[loop]


def _watches() -> dict[tuple[str, str, str], asyncio.Future[None]]:
    """The running loop's polls in progress, by (database, app id, code hash)."""
    return _watch_maps.setdefault(asyncio.get_running_loop(), {})


class _sqlite_no_wait:
    """SQLite: the connection's busy timeout at SQLITE_CLAIM_BUSY_MS for the claim's INSERT
    only, then put back (the holder's COMMIT must wait for readers as usual). Other databases:
    nothing."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.saved: int | None = None

    def __enter__(self) -> None:
        if self.connection.vendor != "sqlite":
            return
        with self.connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout")
            self.saved = int(cursor.fetchone()[0])
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_CLAIM_BUSY_MS:d}")

    def __exit__(self, *exc_info: object) -> None:
        if self.saved is None:
            return
        # On the driver's connection: after a failed INSERT Django refuses queries until the
        # atomic block ends, and the timeout must be back before the rollback.
        self.connection.connection.execute(f"PRAGMA busy_timeout = {self.saved:d}")


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _in_thread(function: Callable[_P, _R]) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """``function`` to await, run in a worker thread of its own (not thread-sensitive)."""
    return sync_to_async(function, thread_sensitive=False)


async def aguarded(call: UpstreamCall, claim: Claim, using: str | None, front: CacheFront | None) -> Exchange:
    """The async guard behind the optional Redis front, as :func:`~wechat_oauth.guard.
    exchange_once` does for the sync one."""
    if front is None:
        return await AsyncDatabaseGuard(using).aexchange(call, claim)
    in_thread = _in_thread
    keys: CodeKeys = front.keys(claim.app_id, claim.code_hash)
    entry = await in_thread(front.enter)(keys, arrival=claim.arrival, resent=claim.resent)
    if entry.kind == REPLAY and entry.outcome is not None:
        return await in_thread(answer_duplicate)(entry.outcome, claim, waited=False, source="cache")
    if entry.kind == IN_FLIGHT:
        up_to = min(app_settings.wait_timeout, entry.flight_ttl_ms / 1000 + WAIT_MARGIN)
        if await wait_for_wake(front, keys, up_to):
            outcome = await in_thread(front.woken)(keys, arrival=claim.arrival, resent=claim.resent)
            if outcome is not None:
                return await in_thread(answer_duplicate)(outcome, claim, waited=True, source="cache")
    published: list[StoredOutcome] = []

    def publish(outcome: StoredOutcome) -> None:
        front.publish(keys, outcome)
        published.append(outcome)

    guard = AsyncDatabaseGuard(using, on_outcome=publish)
    try:
        return await guard.aexchange(call, claim)
    finally:
        if entry.kind == CLAIMED and not published:
            await in_thread(front.release)(keys)
