"""Where the async guard's claims run: the exchange loop and the claim threads.

Why not in the request's own task
---------------------------------
Since Django 5.0 an async view is cancelled when its client disconnects, and WeChat's client
aborts exactly the first callback request: the one that holds the code. Whatever that request
started (the claim, the call to WeChat, the commit of the outcome) must finish anyway, or the
duplicate the user sees waits for nothing and the code is lost. So every claim runs as a task
of **one event loop of our own** (a daemon thread per process, :func:`run_on_exchange_loop`),
and the request only awaits its result through a shield: cancelling the request cancels the
wait, never the exchange. The server's loop shutting down cannot cancel it either (it is not
that loop's task), and at interpreter exit :func:`_drain` waits for claims still in flight
(each bounded by the hold timeout), so a server that stops gracefully completes them too.

Why a thread of its own per claim
---------------------------------
The holder's transaction spans the call to WeChat, and Django's connections belong to a thread:
every step of one claim (INSERT, UPDATE, COMMIT) must run on the same thread. A
:class:`ClaimThread` is a single-thread executor lent to one claim at a time; the claim's
database steps are short and never wait for a lock (the async guard claims without waiting),
so a thread is busy only for milliseconds unless its claim holds a code. Idle ones are kept
(up to :data:`IDLE_CLAIM_THREADS`) with their connections, closed per CONN_MAX_AGE, but never
sooner than CONNECTION_LINGER after their last claim.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connections

logger = logging.getLogger("wechat_oauth.exchange")

T = TypeVar("T")

#: Claim threads kept idle for the next claims (more are started when more claims overlap).
IDLE_CLAIM_THREADS = 8
#: Seconds a claim thread's connection outlives its claim when CONN_MAX_AGE would close it at
#: once: the duplicates of a burst arrive within about one WeChat answer of each other, and
#: each would otherwise open a connection of its own for a few statements.
CONNECTION_LINGER = 1.0


class ExchangeLoop:
    """An event loop on a daemon thread of this process, started on first use (and again in a
    forked child, which inherits the object but not the thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._pending: set[concurrent.futures.Future[Any]] = set()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._running_loop())
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return future

    def drain(self, timeout: float) -> None:
        """Wait (up to ``timeout`` seconds) for every submitted claim to finish."""
        pending = list(self._pending)
        if pending:
            logger.info("waiting for %d exchange(s) in flight before exit", len(pending))
            concurrent.futures.wait(pending, timeout=timeout)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                self._pending = set()
                self._loop = asyncio.new_event_loop()
                self._pid = os.getpid()
                threading.Thread(
                    target=self._loop.run_forever, name="wechat-oauth-exchanges", daemon=True
                ).start()
            return self._loop


exchange_loop = ExchangeLoop()


async def run_on_exchange_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on the exchange loop and wait for it.

    Cancelling the caller never cancels the coroutine. The caller, though, does not return at
    once: it first waits for the coroutine to finish (at most the hold timeout), then raises
    CancelledError. A server that stops gracefully waits for its requests to end, so it then
    also waits for the exchange a cancelled request started (uvicorn ends its process with the
    signal it received, so the exit's own wait, :func:`_drain`, never runs there).
    """
    future = asyncio.wrap_future(exchange_loop.submit(coroutine))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        from ..conf import app_settings

        with contextlib.suppress(BaseException):
            await asyncio.wait({future}, timeout=app_settings.hold_timeout)
        raise


@atexit.register
def _drain() -> None:
    from ..conf import app_settings

    try:
        timeout = app_settings.hold_timeout
    except Exception:  # settings unusable at exit: still give claims a fixed grace
        timeout = 30.0
    exchange_loop.drain(timeout)


class ClaimThread:
    """A thread lent to one claim at a time: its database steps share one connection.

    A plain daemon thread with a queue, not a ``ThreadPoolExecutor``: once the interpreter
    begins to exit, executors refuse new work, and the exit must still be able to wait for an
    exchange in flight to commit (see :func:`_drain`).
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        #: Lent to a claim (set and cleared by ClaimThreads, read by the idle check).
        self.in_use = False
        threading.Thread(target=self._work, name="wechat-oauth-claim", daemon=True).start()

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        """``function(*args)`` on this thread, with nobody waiting for it."""
        self._jobs.put(_Job(function, args, None, None))

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` on this thread; its result (or exception) here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(function, args, loop, future))
        return await future

    def close_connection_if_done(self, alias: str) -> None:
        """In the thread, when a claim gives the thread back: the connection closed if an
        error or CONN_MAX_AGE says so, as Django does at the end of each request, except that
        an age limit reached within CONNECTION_LINGER is put off until then (see
        :meth:`close_connection_if_idle`): the next claim of a burst reuses it."""
        connection = connections[alias]
        if connection.connection is not None and connection.close_at is not None:
            connection.close_at = max(connection.close_at, time.monotonic() + CONNECTION_LINGER)
        connection.close_if_unusable_or_obsolete()

    def close_connection_if_idle(self, alias: str) -> None:
        """In the thread, CONNECTION_LINGER after it was given back: the put-off close, unless
        a claim has the thread again (it gives it back, and schedules this, in its turn)."""
        if not self.in_use:
            connections[alias].close_if_unusable_or_obsolete()

    def shut_down(self) -> None:
        self._jobs.put(_Job(connections.close_all, (), None, None))
        self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            job.run()


@dataclass
class _Job:
    function: Callable[..., Any]
    args: tuple[Any, ...]
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[Any] | None

    def run(self) -> None:
        try:
            result = self.function(*self.args)
        except BaseException as error:  # handed to the awaiting coroutine, which re-raises it
            failure = error
            self._settle(lambda future: future.set_exception(failure))
        else:
            self._settle(lambda future: future.set_result(result))

    def _settle(self, outcome: Callable[[asyncio.Future[Any]], None]) -> None:
        future = self.future
        if self.loop is None or future is None:
            return

        def settle() -> None:
            if not future.done():
                outcome(future)

        self.loop.call_soon_threadsafe(settle)


class ClaimThreads:
    """The claim threads of this process: lent one per claim, kept when given back."""

    def __init__(self, idle_limit: int = IDLE_CLAIM_THREADS) -> None:
        self.idle_limit = idle_limit
        self._idle: list[ClaimThread] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        #: Threads started, lent now, and lent at most at once (tests and the bench read them).
        self.started = 0
        self.lent = 0
        self.peak_lent = 0

    def borrow(self) -> ClaimThread:
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's threads are not here
                self._idle, self._pid, self.lent = [], os.getpid(), 0
            self.lent += 1
            self.peak_lent = max(self.peak_lent, self.lent)
            if self._idle:
                thread = self._idle.pop()
            else:
                self.started += 1
                thread = ClaimThread()
            thread.in_use = True
        return thread

    async def give_back(self, thread: ClaimThread, alias: str) -> None:
        await thread.run(thread.close_connection_if_done, alias)
        with self._lock:
            self.lent -= 1
            thread.in_use = False
            if len(self._idle) >= self.idle_limit:
                thread.shut_down()
                return
            self._idle.append(thread)
        asyncio.get_running_loop().call_later(
            CONNECTION_LINGER, thread.submit, thread.close_connection_if_idle, alias
        )

    def close_connections(self, timeout: float = 5.0) -> None:
        """Close the database connections of the idle claim threads (and wait, up to
        ``timeout`` seconds, until they are closed): before a test database is dropped, or
        whenever a process wants no connection left open."""
        with self._lock:
            idle = list(self._idle)
        done = [threading.Event() for _ in idle]
        for thread, closed in zip(idle, done, strict=True):
            thread.submit(_close_all_then_set, closed)
        for closed in done:
            closed.wait(timeout)


def _close_all_then_set(closed: threading.Event) -> None:
    try:
        connections.close_all()
    finally:
        closed.set()


claim_threads = ClaimThreads()
