"""Run logins of one pattern and kind on one site with a pool of concurrent browsers, and
measure."""

from __future__ import annotations

import resource
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.storm.databases import STORM_SITES, Database, name_of
from bench.storm.patterns import Login, SiteHandle, both_apps_at_once, pattern_of, run_login

#: Most callback requests a pattern keeps in flight per site: browsers = this / requests per
#: login, capped at the run's concurrency (a 50-duplicate login runs one browser at a time).
IN_FLIGHT_BUDGET = 64


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return total - idle, total


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def db_counters(db: Database, site: str) -> dict[str, int]:
    """The database's own counters of the site's database (a fresh snapshot; {} if none)."""
    try:
        return db.counters(site)
    except Exception:  # a statistic, never a reason to stop
        return {}


@dataclass
class Run:
    site: str
    pattern: str
    concurrency: int
    kind: str = "mp"
    logins: list[Login] = field(default_factory=list)
    wall: float = 0.0
    bench_cpu: float = 0.0
    machine_busy: float = 0.0
    pg: dict[str, int] = field(default_factory=dict)


def concurrency_for(pattern: str, concurrency: int, kind: str = "mp") -> int:
    per_login = pattern_of(kind, pattern)[1]
    return max(1, min(concurrency, IN_FLIGHT_BUDGET // per_login))


def run_pattern(
    site: SiteHandle,
    db: Database,
    pattern: str,
    count: int,
    *,
    concurrency: int,
    count_sql: bool,
    first_index: int = 0,
    kind: str = "mp",
    partners: dict[int, Login] | None = None,
) -> Run:
    """``count`` logins of ``kind`` under ``pattern``; login ``i`` reuses the person of
    ``partners[i]`` where there is one."""
    partners = partners or {}
    workers = concurrency_for(pattern, concurrency, kind)
    run = Run(site.name, pattern, workers, kind)

    def login(index: int) -> list[Login]:
        return [run_login(site, pattern, index, count_sql=count_sql, kind=kind, partner=partners.get(index))]

    return _measure(run, db, site, count_sql, login, range(first_index, first_index + count))


def run_both_apps_at_once(
    site: SiteHandle, db: Database, count: int, *, concurrency: int, count_sql: bool, first_index: int = 0
) -> Run:
    """``count`` new persons, each logging in through both apps at once (plain logins): the
    race of one person's first logins through two apps."""
    run = Run(site.name, "both_apps_at_once", max(1, concurrency // 2), "both")

    def login(index: int) -> list[Login]:
        return both_apps_at_once(site, index, count_sql=count_sql)

    return _measure(run, db, site, count_sql, login, range(first_index, first_index + count))


def _measure(run: Run, db: Database, site: SiteHandle, count_sql: bool, login: Any, indexes: range) -> Run:
    pg_before = db_counters(db, site.name) if count_sql else {}
    busy0, total0 = cpu_times()
    cpu0, started = own_cpu(), time.perf_counter()
    with ThreadPoolExecutor(
        max_workers=run.concurrency, thread_name_prefix=f"{site.name}-{run.pattern}"
    ) as pool:
        futures = [pool.submit(login, index) for index in indexes]
        run.logins = [done for future in futures for done in future.result()]
    run.wall = time.perf_counter() - started
    run.bench_cpu = own_cpu() - cpu0
    busy1, total1 = cpu_times()
    run.machine_busy = (busy1 - busy0) / max(1, total1 - total0)
    if count_sql and pg_before:  # the instrumented passes also read PostgreSQL's own counters
        time.sleep(0.3)  # backends of closed connections flush their statistics as they exit
        pg_after = db_counters(db, site.name)
        run.pg = {key: pg_after[key] - pg_before.get(key, 0) for key in pg_after}
    return run


def summary(run_list: list[Run]) -> dict[str, Any]:
    """Wall time, CPU and PostgreSQL deltas of several runs of one pattern and site."""
    wall = sum(run.wall for run in run_list)
    pg: dict[str, int] = {}
    for run in run_list:
        for key, value in run.pg.items():
            pg[key] = pg.get(key, 0) + value
    return {
        "wall": wall,
        "pg": pg,
        "bench_cpu": sum(run.bench_cpu for run in run_list),
        "machine_busy": (sum(run.machine_busy * run.wall for run in run_list) / wall if wall else 0.0),
        "concurrency": run_list[0].concurrency if run_list else 0,
    }


class ConnectionSampler:
    """Peak connections per storm database (every 0.1 s, from the server's own list), to show
    the run stays far from max_connections on a server shared with other work. SQLite has no
    server: nothing to sample."""

    def __init__(self, db: Database, sites: tuple[str, ...] = STORM_SITES) -> None:
        import threading

        self.db = db
        self.peak: dict[str, int] = dict.fromkeys(map(name_of, sites), 0)
        self.peak_total = 0
        self.max_connections: int | None = None
        self.sampled = self.no_server = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="db-sampler")

    def _loop(self) -> None:
        try:
            with self.db.connect() as conn:
                self.max_connections = self.db.max_connections(conn)
                while not self._stop.wait(0.1):
                    counts = self.db.connections(conn)
                    if counts is None:
                        self.no_server = True
                        return
                    self.sampled = True
                    for name in self.peak:
                        self.peak[name] = max(self.peak[name], counts.get(name, 0))
                    self.peak_total = max(self.peak_total, sum(counts.values()))
        except Exception:  # a statistic only
            pass

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)

    def figures(self) -> dict[str, Any]:
        if not self.sampled:
            return {
                "not_sampled": f"{self.db.label} has no server: no connections to count"
                if self.no_server
                else "the sampler could not connect"
            }
        return {
            "peak_connections_per_database": self.peak,
            "peak_connections_whole_server": self.peak_total,
            "max_connections": self.max_connections,
        }
