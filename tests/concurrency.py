"""Run a callable in many threads or OS processes released at the same instant."""

from __future__ import annotations

import functools
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    """Return once ``predicate()`` is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def outcome_of(fn: Callable[[], Any]) -> tuple[str, Any]:
    """("ok", value) or ("error", exception): lets results of many callers be compared."""
    try:
        return ("ok", fn())
    except Exception as exc:  # the outcome under test may well be an exception
        return ("error", exc)


def _started_thread(body: Callable[[], None]) -> threading.Thread:
    """A started thread running ``body``; it closes the database connections it opened."""

    def worker() -> None:
        try:
            body()
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker)
    thread.start()
    return thread


def start_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[tuple[str, Any]]]:
    """Start ``fn`` in a thread with its own database connection; its outcome lands in the list."""
    outcomes: list[tuple[str, Any]] = []
    return _started_thread(lambda: outcomes.append(outcome_of(fn))), outcomes


def run_together(calls: Sequence[Callable[[], Any]], timeout: float = 60) -> list[tuple[str, Any]]:
    """Call each of ``calls`` in a thread of its own, all released together by a barrier; their
    outcomes, in order."""
    barrier = threading.Barrier(len(calls))
    results: list[tuple[str, Any] | None] = [None] * len(calls)

    def body(index: int) -> None:
        barrier.wait()
        results[index] = outcome_of(calls[index])

    threads = [_started_thread(functools.partial(body, index)) for index in range(len(calls))]
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a thread did not finish: a caller hung"
    assert all(result is not None for result in results)
    return results  # type: ignore[return-value]


def run_in_threads(count: int, fn: Callable[[], Any], timeout: float = 60) -> list[tuple[str, Any]]:
    """Call ``fn`` in ``count`` threads released together by a barrier."""
    return run_together([fn] * count, timeout)


@dataclass
class ProcessGroup:
    """Spawned processes released by one barrier, reporting on one queue.

    It keeps the barrier referenced: a spawned child unpickles it after start(), and fails if
    the parent has garbage-collected its semaphore by then.
    """

    processes: list[Any]
    queue: Any
    barrier: Any

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def collect(self, timeout: float = 60) -> list[Any]:
        """One report per process, then join them."""
        results = [self.queue.get(timeout=timeout) for _ in self.processes]
        for process in self.processes:
            process.join(timeout)
        return results


def start_processes(count: int, target: Callable[..., None], *args: Any) -> ProcessGroup:
    """Start ``count`` spawned processes running ``target(barrier, queue, *args)``."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(count)
    queue = context.Queue()
    processes = [
        context.Process(target=target, args=(barrier, queue, *args), daemon=True) for _ in range(count)
    ]
    for process in processes:
        process.start()
    return ProcessGroup(processes, queue, barrier)


def setup_django_in_child(
    database: dict[str, Any], wechat_oauth: dict[str, Any], caches: dict[str, Any] | None = None
) -> None:
    """Configure Django in a spawned process: the test settings, pointed at the parent's
    test database, fake WeChat and (for the cache front) the parent's exact cache settings,
    key prefix included."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import tests.settings as test_settings

    test_settings.DATABASES = {"default": database}
    test_settings.WECHAT_OAUTH = wechat_oauth
    if caches is not None:
        test_settings.CACHES = caches
    import django

    django.setup()
