"""Sampling a worker process's OS threads and a database's connections every few ms.

A thread is counted by what /proc says it is doing at the sample (``stat`` state and, where
readable, ``syscall``'s first field, the system call it sleeps in; x86-64 numbers):

* ``running``: state R;
* ``io``: asleep in a read/poll/select/epoll call: waiting on a socket (the database, Redis,
  the fake WeChat, or the event loop's epoll waiting for any of them);
* ``lock``: asleep in ``futex``: waiting on a lock, condition or queue, e.g. an idle executor
  thread, or a sync thread waiting for the event loop (asgiref's ``async_to_sync``);
* ``other``: anything else (or /proc's syscall unreadable).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: x86-64 system calls that wait on file descriptors (sockets, pipes, epoll).
IO_SYSCALLS = frozenset({0, 7, 23, 45, 47, 232, 270, 271, 281, 441})
FUTEX = 202
STATES = ("running", "io", "lock", "other")


def thread_states(pid: int) -> dict[str, int]:
    """The process's threads now, by :data:`STATES`."""
    counts = dict.fromkeys(STATES, 0)
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return counts
    for tid in tids:
        counts[_state(pid, tid)] += 1
    return counts


def _state(pid: int, tid: str) -> str:
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
        if state == "R":
            return "running"
        with open(f"/proc/{pid}/task/{tid}/syscall") as syscall:
            number = syscall.read().split()[0]
    except (OSError, IndexError):
        return "other"
    if not number.isdigit():  # "running" (raced) or "-1" (not in a system call)
        return "other"
    if int(number) == FUTEX:
        return "lock"
    return "io" if int(number) in IO_SYSCALLS else "other"


@dataclass
class Sampler:
    """Calls ``probe`` every ``interval`` seconds in a thread of its own, from :meth:`start` to
    :meth:`stop`; keeps each sample (a dict of counts) with its ``time.perf_counter()`` in
    :attr:`times`."""

    probe: Callable[[], dict[str, int]]
    interval: float = 0.003
    samples: list[dict[str, int]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[dict[str, int]]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        return self.samples

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self.probe()
            self.times.append(time.perf_counter())
            self.samples.append(sample)
            time.sleep(self.interval)

    def between(self, start: float, end: float) -> list[dict[str, int]]:
        """The samples taken from ``start`` to ``end`` (perf_counter times)."""
        return [sample for sample, at in zip(self.samples, self.times, strict=True) if start <= at <= end]


def thread_sampler(pid: int, interval: float = 0.003) -> Sampler:
    """The worker's thread count (``total``) and its threads by state."""

    def probe() -> dict[str, int]:
        states = thread_states(pid)
        return {"total": sum(states.values()), **states}

    return Sampler(probe, interval)


def connection_sampler(conn: Any, datname: str, interval: float = 0.003) -> Sampler:
    """Client connections to ``datname`` (``total``) and how many are in a transaction,
    counted on ``conn``: a connection to another database (``postgres``), not counted."""

    def probe() -> dict[str, int]:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE state LIKE 'idle in transaction%%'"
            " OR state = 'active') FROM pg_stat_activity WHERE datname = %s",
            [datname],
        ).fetchone()
        return {"total": int(row[0]), "busy": int(row[1])}

    return Sampler(probe, interval)
