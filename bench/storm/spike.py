"""The campaign spike (``python -m bench.storm --only spike``; issue 19, part 4): a burst of first
logins whose callbacks all arrive within one second, on each site in turn, with the database's
connections and open transactions sampled every few milliseconds.

What a campaign push looks like to the site: hundreds of people tap the link at once. Per site
(naive first, then guarded; never both at once), :data:`LOGINS` new persons (``--spike-logins``;
quick: :data:`QUICK_LOGINS`) log in through the Official Account (``mp``):

* *before the spike*, untimed, 8 at a time: each login's login view and WeChat's authorize
  page (the code issued), and the fake WeChat told to answer that code's ``access_token`` after
  a delay drawn uniformly from :data:`UPSTREAM` (80-300 ms, per call: a per-code delay fault,
  ``add_fault(endpoint="access_token", delay=..., code=..., times=None)``, the fake's fixed
  latency set to 0 meanwhile and put back after);
* *the spike*: every login's callback released at its own instant, drawn uniformly over
  :data:`WINDOW` (1 s), each in a thread of its own; :data:`DUPLICATE_SHARE` (10%) of the
  logins are duplicated the way WeChat does it (bench/storm/patterns.py): abort-and-resend on
  the same instance and across both, 2 parallel duplicates on one instance, 4 across both;
  the others are plain. What the user sees is judged as in the storm's patterns (the re-sent
  callback, the last of the parallel ones; ``/whoami/`` must name the person's user).

Meanwhile :class:`ActivitySampler` reads ``pg_stat_activity`` every :data:`SAMPLE_INTERVAL`
(5 ms) on its own connection to the ``postgres`` database: per site's database, client
backends open, with a transaction open (``xact_start IS NOT NULL``: running a statement, or
``idle in transaction``) and ``idle in transaction``; with ``--pgbouncer`` these are
PgBouncer's *server* connections, and :class:`PoolSampler` reads ``SHOW POOLS`` on its admin
console every 10 ms for the *client* side (active, waiting). Peaks and means over the spike
go in the report under ``"spike"``, beside Little's law's estimate of the connections
(:func:`littles_law`).

``python -m bench.storm.spike [storm.json ...]`` writes docs/benchmarks/spike.inc from runs'
JSON (bench/results/storm.json and, if there, storm-pgbouncer.json).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from bench.rst import list_table, write_include
from bench.storm.apps import new_person
from bench.storm.browser import Browser, with_query
from bench.storm.databases import Database, name_of
from bench.storm.patterns import (
    RESEND_DELAY,
    Context,
    Login,
    LoginFailed,
    SiteHandle,
    conclude,
    send_parallel,
)
from bench.storm.stats import ms_summary
from wechat_oauth.testing.wechat_client import resend_params

LOGINS = 300
QUICK_LOGINS = 60
WINDOW = 1.0
#: The fake WeChat's answer time of each exchange, drawn uniformly (s).
UPSTREAM = (0.08, 0.30)
DUPLICATE_SHARE = 0.10
#: The duplicated logins' patterns, in turn (bench/storm/patterns.py's names).
DUPLICATE_PATTERNS = ("abort_resend", "parallel_2", "spread_abort_resend", "spread_parallel_4")
SAMPLE_INTERVAL = 0.005
POOL_INTERVAL = 0.010
#: Logins prepared at once before the spike (login view, authorize page, the fake's fault).
PREPARE_CONCURRENCY = 8
SITE_ORDER = ("naive", "guarded")
SEED = 19


@dataclass
class SpikeLogin:
    login: Login
    ctx: Context
    browser: Browser
    #: The callback URL WeChat's authorize page redirected to (its code issued).
    callback: str = ""
    upstream_s: float = 0.0
    #: Seconds after the spike's start this login's callback is due, and when it was sent.
    due: float = 0.0
    sent: float | None = None
    prepare_error: str = ""


# -- the samplers ----------------------------------------------------------------------------


_S = TypeVar("_S", bound="_Sampler")


class _Sampler:
    """A sample of ``sites``' databases every ``interval`` s, in a daemon thread of its own on
    a connection of its own, from entering the ``with`` block to leaving it. Each sample is a
    dict per database name, kept with its ``time.perf_counter()`` (taken once it is read) in
    :attr:`samples`; an error stops the sampling and is reported in the figures. A subclass
    says how to connect, what one sample is and what its figures are."""

    THREAD_NAME = "spike-sampler"
    #: A database's figures in a sample where it has none.
    EMPTY: Any = None

    def __init__(self, sites: tuple[str, ...], interval: float) -> None:
        self.interval = interval
        self.names = {name_of(site): site for site in sites}
        self.samples: list[tuple[float, dict[str, Any]]] = []
        self.error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=self.THREAD_NAME)

    def _connect(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _sample(self, conn: Any) -> dict[str, Any]:
        """One sample: per database name of :attr:`names` seen, its figures."""
        raise NotImplementedError

    def _summary(self, taken: list[tuple[float, Any]]) -> dict[str, Any]:
        """The figures of one database's samples in a window (with their times)."""
        raise NotImplementedError

    def _loop(self) -> None:
        try:
            with self._connect() as conn:
                while not self._stop.is_set():
                    sample = self._sample(conn)
                    self.samples.append((time.perf_counter(), sample))
                    self._stop.wait(self.interval)
        except Exception as exc:  # a statistic only
            self.error = f"{type(exc).__name__}: {exc}"[:300]

    def __enter__(self: _S) -> _S:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def figures(self, site: str, start: float, end: float) -> dict[str, Any]:
        """The figures of ``site``'s database between ``start`` and ``end`` (perf_counter)."""
        name = name_of(site)
        taken = [(at, sample.get(name, self.EMPTY)) for at, sample in self.samples if start <= at <= end]
        out: dict[str, Any] = {"samples": len(taken), **self._summary(taken)}
        if self.error:
            out["sampler_error"] = self.error
        return out


class ActivitySampler(_Sampler):
    """``pg_stat_activity`` every ``interval`` s: per database of ``sites``, client backends
    open, with a transaction open, idle in transaction (peaks, means, samples)."""

    QUERY = (
        "SELECT datname, count(*), count(*) FILTER (WHERE xact_start IS NOT NULL), "
        "count(*) FILTER (WHERE state = 'idle in transaction') FROM pg_stat_activity "
        "WHERE datname = ANY(%s) AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
        "GROUP BY datname"
    )
    FIELDS = ("connections", "open_transactions", "idle_in_transaction")
    EMPTY = (0, 0, 0)
    THREAD_NAME = "spike-pg-sampler"

    def __init__(self, db: Database, sites: tuple[str, ...], interval: float = SAMPLE_INTERVAL) -> None:
        super().__init__(sites, interval)
        self.db = db

    def _connect(self) -> AbstractContextManager[Any]:
        return self.db.connect()

    def _sample(self, conn: Any) -> dict[str, tuple[int, int, int]]:
        rows = self.db.query(conn, self.QUERY, [list(self.names)])
        return {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows}

    def _summary(self, taken: list[tuple[float, Any]]) -> dict[str, Any]:
        """Peaks and means of each of :data:`FIELDS`, and the mean interval between samples."""
        out: dict[str, Any] = {}
        if len(taken) > 1:
            out["mean_interval_ms"] = round((taken[-1][0] - taken[0][0]) / (len(taken) - 1) * 1000, 1)
        for index, key in enumerate(self.FIELDS):
            values = [sample[index] for _, sample in taken]
            out[f"peak_{key}"] = max(values, default=0)
            out[f"mean_{key}"] = round(sum(values) / len(values), 1) if values else 0
        return out


class PoolSampler(_Sampler):
    """PgBouncer's ``SHOW POOLS`` every ``interval`` s on its admin console: per site's
    database, client connections active and waiting, server connections active."""

    FIELDS = ("cl_active", "cl_waiting", "sv_active")
    EMPTY: dict[str, int] = {}
    THREAD_NAME = "spike-pool-sampler"

    def __init__(self, port: int, sites: tuple[str, ...], interval: float = POOL_INTERVAL) -> None:
        super().__init__(sites, interval)
        self.port = port

    def _connect(self) -> AbstractContextManager[Any]:
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            dbname="pgbouncer",
            user="postgres",
            autocommit=True,
            connect_timeout=5,
            cursor_factory=psycopg.ClientCursor,
        )

    def _sample(self, conn: Any) -> dict[str, dict[str, int]]:
        cursor = conn.execute("SHOW POOLS")
        columns = [c.name for c in cursor.description or []]
        pools: dict[str, dict[str, int]] = {}
        for row in cursor.fetchall():
            values = dict(zip(columns, row, strict=False))
            if values.get("database") in self.names:
                pools[str(values["database"])] = {f: int(values.get(f) or 0) for f in self.FIELDS}
        return pools

    def _summary(self, taken: list[tuple[float, Any]]) -> dict[str, Any]:
        """Peaks of each of :data:`FIELDS`, and of the client connections (active + waiting)."""
        out: dict[str, Any] = {}
        for key in self.FIELDS:
            out[f"peak_{key}"] = max((pool.get(key, 0) for _, pool in taken), default=0)
        out["peak_client_connections"] = max(
            (pool.get("cl_active", 0) + pool.get("cl_waiting", 0) for _, pool in taken), default=0
        )
        return out


# -- the logins ------------------------------------------------------------------------------


def plan(count: int, rng: random.Random) -> list[tuple[str, float, float]]:
    """Per login: its pattern, its callback's instant in the window, its upstream delay. Every
    1/DUPLICATE_SHARE-th login (in a shuffled order) is duplicated, the patterns in turn."""
    duplicated = round(count * DUPLICATE_SHARE)
    patterns = [DUPLICATE_PATTERNS[i % len(DUPLICATE_PATTERNS)] for i in range(duplicated)]
    patterns += ["plain"] * (count - duplicated)
    rng.shuffle(patterns)
    return [(pattern, rng.uniform(0, WINDOW), rng.uniform(*UPSTREAM)) for pattern in patterns]


def prepare(site: SiteHandle, fake: Any, index: int, pattern: str, due: float, upstream: float) -> SpikeLogin:
    """The login view and authorize page of one login (its code issued), and the fake told to
    answer that code's exchange after ``upstream`` s."""
    login = Login(site.name, f"spike_{pattern}", index, new_person(site.name, "spike", index), "mp")
    ctx = Context(site, False, login)
    browser = ctx.browser()
    spike = SpikeLogin(login, ctx, browser, upstream_s=upstream, due=due)
    try:
        spike.callback = ctx.authorize(browser, ctx.start(browser))
        fake.add_fault(endpoint="access_token", delay=upstream, code=login.codes[-1], times=None)
    except Exception as exc:  # reported; the login is not part of the spike
        spike.prepare_error = f"{type(exc).__name__}: {exc}"[:200]
    return spike


def _pattern(login: Login) -> str:
    return login.pattern.removeprefix("spike_")


def callbacks(spike: SpikeLogin) -> None:
    """The login's callbacks as WeChat sends them under its pattern, and the judgement of the
    one the user sees."""
    ctx, browser, url = spike.ctx, spike.browser, spike.callback
    pattern = _pattern(spike.login)
    if pattern == "plain":
        ctx.settle(browser, ctx.callback(browser, url))
    elif pattern.endswith("abort_resend"):
        ctx.abort(browser, ctx.at(url, ctx.home))
        time.sleep(RESEND_DELAY)
        target = ctx.other if pattern.startswith("spread") else ctx.home
        ctx.settle(
            browser,
            ctx.callback(browser, with_query(ctx.at(url, target), resend_params()), "re-sent callback"),
        )
    elif pattern.endswith(("parallel_2", "parallel_4")):
        n = int(pattern.rsplit("_", 1)[1])
        send_parallel(ctx, browser, url, n, spread=pattern.startswith("spread"))
    else:
        raise LoginFailed(f"unknown spike pattern {pattern!r}")


def fire(spikes: list[SpikeLogin]) -> tuple[float, float]:
    """Every prepared login's callbacks at its instant, a thread each; (start, end) of the spike
    (perf_counter: the first instant, the last login judged)."""
    ready = threading.Barrier(len(spikes) + 1)
    start_at: list[float] = []

    def one(spike: SpikeLogin) -> None:
        ready.wait()
        delay = start_at[0] + spike.due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        spike.sent = time.perf_counter() - start_at[0]
        try:
            conclude(spike.login, partial(callbacks, spike))
        except Exception as exc:  # a run never crashes on one login
            spike.login.outcome, spike.login.reason = "failed", f"load generator: {type(exc).__name__}: {exc}"
        finally:
            spike.browser.close()

    threads = [threading.Thread(target=one, args=(spike,), daemon=True) for spike in spikes]
    for thread in threads:
        thread.start()
    start_at.append(time.perf_counter() + 0.05)
    ready.wait()
    for thread in threads:
        thread.join(120)
    return start_at[0], time.perf_counter()


# -- the figures -------------------------------------------------------------------------------


def littles_law(rate: float, upstream_s: float, database_s: float, threads: int) -> dict[str, Any]:
    """Connections a site holds at ``rate`` first logins per second, each holding its
    connection for the upstream call plus its database time: L = rate x (upstream + database),
    and at most the site's server threads (a request without a thread waits in the listen
    queue, holding nothing)."""
    estimate = rate * (upstream_s + database_s)
    return {
        "rule": "connections = login rate x (upstream latency + database time), at most the server threads",
        "rate_per_s": round(rate, 1),
        "upstream_mean_ms": round(upstream_s * 1000, 1),
        "database_ms": round(database_s * 1000, 1),
        "estimate": round(estimate, 1),
        "server_threads": threads,
        "expected_peak": round(min(estimate, threads), 1),
    }


def site_figures(
    spikes: list[SpikeLogin], calls: dict[str, int], start: float, end: float, window: dict[str, Any]
) -> dict[str, Any]:
    logins = [spike.login for spike in spikes]
    fired = [spike for spike in spikes if not spike.prepare_error]
    failed = [login for login in logins if login.failed]
    codes = [code for login in logins for code in login.codes]
    per_code = [calls.get(code, 0) for code in codes]
    sent = sorted(spike.sent for spike in fired if spike.sent is not None)
    late = [spike.sent - spike.due for spike in fired if spike.sent is not None]
    visible = [hit.elapsed for login in logins for hit in login.visible[:1]]
    return {
        "logins": len(logins),
        "prepare_failed": sum(bool(spike.prepare_error) for spike in spikes),
        "failed_logins": len(failed),
        "restarted_logins": sum(login.outcome == "restarted" for login in logins),
        "failures": sorted({login.reason for login in failed})[:5],
        "by_pattern": {
            pattern: {
                "logins": sum(_pattern(login) == pattern for login in logins),
                "failed": sum(_pattern(login) == pattern and login.failed for login in logins),
            }
            for pattern in ("plain", *DUPLICATE_PATTERNS)
        },
        "duplicated_logins": sum(_pattern(login) != "plain" for login in logins),
        "callback_requests": sum(len(login.callbacks) + login.aborted for login in logins),
        "callback_answers_4xx_5xx": sum(hit.failed for login in logins for hit in login.callbacks),
        "exchanges_per_code": {
            "codes": len(per_code),
            "mean": round(sum(per_code) / len(per_code), 3) if per_code else None,
            "max": max(per_code, default=0),
            "min": min(per_code, default=0),
            "histogram": {str(k): n for k, n in sorted(Counter(per_code).items())},
        },
        "callback_ms": ms_summary(visible),
        "all_callbacks_ms": ms_summary([hit.elapsed for login in logins for hit in login.callbacks]),
        "arrivals": {
            "window_s": round(sent[-1] - sent[0], 3) if sent else None,
            "late_ms": ms_summary([max(0.0, s) for s in late]),
        },
        "spike_s": round(end - start, 2),
        "upstream_ms": ms_summary([spike.upstream_s for spike in spikes]),
        **window,
    }


def run_site(storm: Any, site: str, count: int, rng: random.Random, pool_port: int | None) -> dict[str, Any]:
    """The spike on one site: prepare, fire, judge, sample."""
    stack = storm.stack
    handle = storm.handles[site]
    schedule = plan(count, rng)
    with ThreadPoolExecutor(max_workers=PREPARE_CONCURRENCY, thread_name_prefix=f"spike-{site}") as pool:
        spikes = list(
            pool.map(
                lambda item: prepare(handle, stack.fake, 70_000 + item[0], *item[1]),
                enumerate(schedule),
            )
        )
    time.sleep(1.0)  # the preparation's connections closed (CONN_MAX_AGE 0)
    fired = [spike for spike in spikes if not spike.prepare_error]
    with ActivitySampler(stack.db, (site,)) as activity:
        pools = PoolSampler(pool_port, (site,)) if pool_port else None
        if pools is not None:
            pools.__enter__()
        try:
            time.sleep(0.1)
            start, end = fire(fired) if fired else (time.perf_counter(), time.perf_counter())
            time.sleep(0.05)
        finally:
            if pools is not None:
                pools.__exit__()
    for spike in spikes:
        if spike.prepare_error:
            spike.login.outcome, spike.login.reason = "failed", f"preparation: {spike.prepare_error}"
    calls = {code: int(n) for code, n in stack.fake.stats()["exchange_calls"].items()}
    database = {"database": activity.figures(site, start, end)}
    if pools is not None:
        database["pgbouncer_pools"] = pools.figures(site, start, end)
    return site_figures(spikes, calls, start, end, database)


def run_spike(storm: Any) -> dict[str, Any]:
    """The spike section of the storm: each site in turn (SITE_ORDER), the fake's fixed latency
    at 0 meanwhile (each exchange's delay is its code's fault)."""
    args = storm.args
    stack = storm.stack
    count = getattr(args, "spike_logins", None) or (QUICK_LOGINS if args.quick else LOGINS)
    pool_port = stack.db.pgbouncer.port if hasattr(stack.db, "pgbouncer") else None
    threads = len(stack.instance_names) * stack.workers * stack.threads
    out: dict[str, Any] = {
        "logins_per_site": count,
        "window_s": WINDOW,
        "kind": "mp",
        "upstream": f"each exchange answered after a delay drawn uniformly from {UPSTREAM[0] * 1000:.0f}-"
        f"{UPSTREAM[1] * 1000:.0f} ms (a per-code delay fault; the fake's fixed latency 0)",
        "duplicates": f"{DUPLICATE_SHARE:.0%} of the logins, in turn: "
        f"{', '.join(DUPLICATE_PATTERNS)}; the others plain",
        "sites_in_turn": list(SITE_ORDER),
        "server_threads_per_site": threads,
        "conn_max_age": stack.conn_max_age,
        "sampling": f"pg_stat_activity every {SAMPLE_INTERVAL * 1000:.0f} ms (client backends of the "
        "site's database: count, xact_start IS NOT NULL, state = 'idle in transaction')"
        + (f"; PgBouncer SHOW POOLS every {POOL_INTERVAL * 1000:.0f} ms" if pool_port else ""),
        "through_pgbouncer": pool_port is not None,
    }
    if pool_port is not None:
        out["pgbouncer"] = stack.db.facts()
    rng = random.Random(SEED)
    stack.fake.set_latency(0)
    try:
        for site in SITE_ORDER:
            out[site] = run_site(storm, site, count, rng, pool_port)
            storm.progress("spike", site, out[site]["failed_logins"], "failed")
            time.sleep(1.0)
    finally:
        stack.fake.set_latency(args.latency)
    upstream = (UPSTREAM[0] + UPSTREAM[1]) / 2
    for site in SITE_ORDER:
        # Database time per callback: the storm's measured SQL time is not asked here; 10 ms
        # (a new connection, the callback's 15-18 statements on a loaded machine) is the rule's.
        out[site]["littles_law"] = littles_law(count / WINDOW, upstream, 0.010, threads)
        # The law read backwards: how long each login held a connection, on average.
        database = out[site].get("database", {})
        if out[site]["logins"] and database.get("samples"):
            out[site]["littles_law"]["measured_hold_ms_per_login"] = round(
                database["mean_connections"] * out[site]["spike_s"] / out[site]["logins"] * 1000, 1
            )
    return out


def target(spike: dict[str, Any]) -> dict[str, Any]:
    guarded = spike.get("guarded", {})
    per_code = guarded.get("exchanges_per_code", {})
    return {
        "target": "spike: no failed guarded login, exactly one exchange per code",
        "value": {
            "failed_logins": guarded.get("failed_logins"),
            "exchanges_per_code_min_max": [per_code.get("min"), per_code.get("max")],
        },
        "met": guarded.get("failed_logins") == 0
        and guarded.get("prepare_failed") == 0
        and per_code.get("min") == 1
        and per_code.get("max") == 1,
    }


# -- the docs' table ---------------------------------------------------------------------------


def _cell(figures: dict[str, Any], *path: str) -> str:
    value: Any = figures
    for key in path:
        value = value.get(key, {}) if isinstance(value, dict) else {}
    return "—" if value in ({}, None) else str(value)


def rst(reports: list[dict[str, Any]]) -> str:
    """docs/benchmarks/spike.inc from runs' JSON (each with a spike section): one list-table,
    a row per site and run (direct, through PgBouncer)."""
    lines: list[str] = []
    rows: list[list[str]] = []
    for report in reports:
        section = next(
            (s for s in report.get("databases", {}).values() if isinstance(s, dict) and "spike" in s), None
        )
        if section is None:
            continue
        spike = section["spike"]
        machine = report.get("machine", {})
        via = "through PgBouncer" if spike.get("through_pgbouncer") else "direct"
        pool = spike.get("pgbouncer", {})
        lines.append(
            f"Run of {report.get('when', '?')[:10]} ({via}; "
            f"``{report.get('command', 'python -m bench.storm')}``; "
            f"{machine.get('cpus', '?')} CPUs shared with other work, load average "
            f"{section.get('loadavg_at_start', ['?'])[0]} at the start; PostgreSQL "
            f"{machine.get('databases', {}).get('postgres', '?')}"
            + (
                f", PgBouncer {pool.get('version')} pool_mode {pool.get('pool_mode')}, "
                f"default_pool_size {pool.get('default_pool_size')}"
                if pool
                else ""
            )
            + f"): {spike['logins_per_site']} first logins per site within {spike['window_s']:g} s, "
            f"{spike['server_threads_per_site']} server threads per site, {spike['upstream']}, "
            f"{spike['duplicates']}."
        )
        lines.append("")
        for site in ("guarded", "naive"):
            figures = spike.get(site, {})
            database = figures.get("database", {})
            pools = figures.get("pgbouncer_pools", {})
            per_code = figures.get("exchanges_per_code", {})
            rows.append(
                [
                    f"{site}, {via}" + (f" (pool {pool.get('default_pool_size')})" if pool else ""),
                    f"{figures.get('failed_logins', '—')} / {figures.get('logins', '—')}",
                    f"{per_code.get('mean', '—')} (max {per_code.get('max', '—')})",
                    f"{_cell(figures, 'callback_ms', 'p50')} / {_cell(figures, 'callback_ms', 'p99')}",
                    f"{database.get('peak_connections', '—')}"
                    + (
                        f" (clients {pools.get('peak_client_connections')}, "
                        f"waiting {pools.get('peak_cl_waiting')})"
                        if pools
                        else ""
                    ),
                    f"{database.get('peak_open_transactions', '—')} "
                    f"({database.get('peak_idle_in_transaction', '—')})",
                    str(figures.get("littles_law", {}).get("expected_peak", "—")),
                    str(figures.get("spike_s", "—")),
                ]
            )
    header = [
        "Site",
        "Failed logins",
        "Exchanges per code",
        "Callback p50 / p99 ms",
        "Peak connections",
        "Peak open transactions (idle in one)",
        "Little's law",
        "Spike s",
    ]
    lines += list_table([header, *rows])
    return "\n".join(lines) + "\n"


def _has_spike(report: dict[str, Any]) -> bool:
    return any(isinstance(s, dict) and "spike" in s for s in report.get("databases", {}).values())


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.storm.spike [storm.json ...] [--out spike.inc]``: the docs' table
    (by default from bench/results/storm.json and storm-pgbouncer.json)."""
    return write_include(
        argv,
        ("storm.json", "storm-pgbouncer.json"),
        "spike.inc",
        lambda reports: rst(reports) if any(map(_has_spike, reports)) else None,
    )


if __name__ == "__main__":
    raise SystemExit(main())
