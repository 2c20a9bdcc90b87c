"""What ``python -m bench.asgi`` measures on one serving: callback latency and logins/s of a
pattern (the storm's logins, bench/storm/patterns.py), and a burst of duplicates of one code
with the worker's threads and the site database's connections sampled throughout."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from bench.asgi.sampling import STATES, Sampler, connection_sampler, thread_sampler
from bench.asgi.serving import SITE, GuardedOnlyStack
from bench.storm.apps import new_person, user_name
from bench.storm.browser import Browser, Hit, run_together
from bench.storm.databases import name_of
from bench.storm.patterns import NEXT, Context, Login, run_login
from bench.storm.stats import ms_summary

#: How long the idle worker and database are sampled before a burst (the baseline).
BASELINE_S = 0.5


def pattern_pass(
    stack: GuardedOnlyStack, pattern: str, logins: int, concurrency: int, offset: int = 0
) -> dict[str, Any]:
    """``logins`` logins under ``pattern``, ``concurrency`` browsers at a time: every callback
    request's latency (duplicates included), logins/s over the pass's wall time."""
    site = stack.site()
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        done: list[Login] = list(
            pool.map(partial(run_login, site, pattern, count_sql=False), range(offset, offset + logins))
        )
    wall = time.perf_counter() - started
    callbacks = [hit.elapsed for login in done for hit in login.callbacks]
    failed = [login.reason for login in done if login.failed]
    return {
        "pattern": pattern,
        "logins": logins,
        "concurrency": concurrency,
        "failed_logins": len(failed),
        "failures": failed[:3],
        "callback_ms": ms_summary(callbacks),
        "logins_per_s": round(len(done) / wall, 2),
        "wall_s": round(wall, 2),
    }


def burst(
    stack: GuardedOnlyStack, duplicates: int, exchange_s: float, index: int, interval: float = 0.003
) -> dict[str, Any]:
    """One login's callback sent ``duplicates`` times at once from one cookie jar while the
    fake takes ``exchange_s`` to exchange its code; the worker's threads and the database's
    connections sampled before (idle baseline) and during."""
    site = stack.site()
    person = new_person(SITE, "burst", index)
    login = Login(SITE, "burst", index, person)
    ctx = Context(site, False, login)
    browser = Browser(count_sql=False)
    callback = ctx.authorize(browser, ctx.start(browser))
    code = login.codes[-1]
    stack.fake.add_fault("access_token", delay=max(0.0, exchange_s - stack.latency), code=code)
    tabs = [browser.copy() for _ in range(duplicates)]
    pid = stack.worker_pid()
    with stack.db.connect(None) as conn:
        threads, connections = (
            thread_sampler(pid, interval).start(),
            connection_sampler(conn, name_of(SITE), interval).start(),
        )
        baseline_from = time.perf_counter()
        time.sleep(BASELINE_S)
        started = time.perf_counter()
        results = run_together([partial(ctx.callback, tab, callback, "duplicate") for tab in tabs])
        wall = time.perf_counter() - started
        time.sleep(0.05)
        ended = time.perf_counter()
        threads.stop()
        connections.stop()
    # While waiting: from a quarter of the exchange in (every duplicate has arrived) to its end
    # (the holder's exchange is still running): what the waiting duplicates hold. After it they
    # all finish at once (login, session save), each briefly on a connection of its thread.
    windows = {
        "idle": (baseline_from, started),
        "burst": (started, ended),
        "waiting": (started + exchange_s / 4, started + exchange_s),
    }
    hits = [result for result in results if isinstance(result, Hit)]
    expected = user_name(SITE, "mp", person)
    logged_in = sum(
        hit.status == 302 and urlsplit(hit.location).path == NEXT and tab.whoami(site.urls[0]) == expected
        for tab, hit in zip(tabs, results, strict=True)
        if isinstance(hit, Hit)
    )
    for tab in tabs:
        tab.close()
    exchanges = int(stack.fake.stats()["exchange_calls"].get(code, 0))
    return {
        "duplicates": duplicates,
        "exchange_s": exchange_s,
        "redirected_to_page_and_logged_in": logged_in,
        "statuses": _counts(str(hit.status or hit.error) for hit in hits),
        "exchanges_of_code": exchanges,
        "callback_ms": ms_summary([hit.elapsed for hit in hits]),
        "wall_s": round(wall, 3),
        "threads": _peaks(threads, windows, ("total", *STATES)),
        "db_connections": _peaks(connections, windows, ("total", "busy")),
        "samples": {"threads": len(threads.samples), "db_connections": len(connections.samples)},
    }


def _peaks(
    sampler: Sampler, windows: dict[str, tuple[float, float]], keys: tuple[str, ...]
) -> dict[str, Any]:
    """Per key: the idle baseline (the most frequent value before the burst), the peak during
    the whole burst and while the duplicates wait, and the peak above the baseline."""
    figures: dict[str, Any] = {}
    for key in keys:
        values = [sample[key] for sample in sampler.between(*windows["idle"])]
        baseline = max(set(values), key=values.count) if values else 0
        peak, waiting = (
            max((sample[key] for sample in sampler.between(*windows[name])), default=0)
            for name in ("burst", "waiting")
        )
        figures[key] = {
            "idle": baseline,
            "peak": peak,
            "peak_above_idle": peak - baseline,
            "peak_while_waiting": waiting,
        }
    return figures


def _counts(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts
