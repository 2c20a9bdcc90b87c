"""The storm's pattern passes over a pair of sites (bench/storm/__main__.py runs them on the
guarded and naive sites, bench/storm/library_storm.py on a library's stock and drop-in sites):
logins per pattern, ABBA ordering, the kinds' passes, the latency probe, the throughput pass."""

from __future__ import annotations

import argparse
import math
from typing import Any

from bench.storm.apps import APP_IDS, WEB_KINDS
from bench.storm.apps import KINDS as APP_KINDS
from bench.storm.databases import Database
from bench.storm.patterns import KIND_PATTERNS, PATTERNS, Login

#: The storm's own sites, in the order of the first half of an ABBA cycle.
SITES = ("naive", "guarded")
#: plain logins count twice (the ABBA pass); --logins is spread over the browser patterns, and
#: the kinds with fewer patterns (mini, wecom) run as many logins per pattern.
PATTERN_WEIGHTS = {name: 2 if name == "plain" else 1 for name in PATTERNS}
#: Every SHARE_EVERY-th QR login of a pattern reuses an Official Account login's person.
SHARE_EVERY = 3


def split_logins(total: int, kind: str = "mp") -> dict[str, int]:
    """Logins per pattern of ``kind``: ``total`` spread over the browser patterns by weight."""
    unit = math.ceil(total / sum(PATTERN_WEIGHTS.values()))
    return {name: max(2, unit * (2 if name == "plain" else 1)) for name in KIND_PATTERNS[kind]}


def run_facts(args: argparse.Namespace) -> dict[str, Any]:
    """What the report's setup says of the load generator and the databases of a run."""
    return {
        "load_generator": (
            f"this process: threads, one requests.Session per browser; "
            f"{args.concurrency} concurrent browsers per site (fewer for "
            f"patterns with many duplicates: at most 64 callbacks in flight)"
        ),
        "databases_run": args.databases,
        "databases": "kept for inspection" if args.keep_databases else "dropped at the end",
    }


def log_findings(text: str) -> dict[str, int]:
    lines = text.splitlines()
    return {
        "cache_front_warnings": sum("cache front" in line for line in lines),
        "error_lines": sum(" ERROR " in line or "[ERROR]" in line for line in lines),
        "tracebacks": sum(line.startswith("Traceback") for line in lines),
    }


class Storm:
    """The pattern passes over ``sites`` (in the order of the first half of an ABBA cycle):
    the guarded and naive sites, or a library's stock and drop-in sites
    (bench/storm/library_storm.py), through ``kinds`` (default: the run's)."""

    def __init__(
        self,
        args: argparse.Namespace,
        stack: Any,
        progress: Any,
        *,
        sites: tuple[str, ...] = SITES,
        kinds: list[str] | None = None,
    ) -> None:
        self.args, self.stack, self.progress = args, stack, progress
        self.db: Database = stack.db
        self.sites = sites
        self.kinds: list[str] = kinds if kinds is not None else args.kinds
        self.handles = {site: stack.handle(site) for site in sites}
        #: kind -> pattern -> logins per site
        self.counts = {kind: split_logins(args.logins, kind) for kind in self.kinds}
        #: kind -> pattern -> site -> runs
        self.runs: dict[str, dict[str, dict[str, list[Any]]]] = {}
        #: site -> the both_apps_at_once runs
        self.at_once: dict[str, list[Any]] = {}
        self.cross_app: dict[str, Any] | None = None
        self.app_calls: dict[str, dict[str, Any]] = {}
        self.redis_keys: int | None = None
        self.logs_after_patterns: dict[str, dict[str, int]] | None = None

    def run(
        self,
        site: str,
        pattern: str,
        count: int,
        *,
        concurrency: int,
        count_sql: bool,
        first_index: int,
        kind: str = "mp",
        partners: dict[int, Login] | None = None,
    ) -> Any:
        from bench.storm.runner import run_pattern

        return run_pattern(
            self.handles[site],
            self.db,
            pattern,
            count,
            concurrency=concurrency,
            count_sql=count_sql,
            first_index=first_index,
            kind=kind,
            partners=partners,
        )

    def warm_up(self) -> None:
        """Every worker imports, resolves and connects once, through each kind; not recorded."""
        for kind in self.kinds:
            for site in self.sites:
                self.run(site, "plain", 16, concurrency=8, count_sql=True, first_index=90_000, kind=kind)

    def abba(
        self,
        pattern: str,
        count: int,
        *,
        concurrency: int,
        count_sql: bool,
        first_index: int,
        block: int | None = None,
        kind: str = "mp",
        partners: dict[str, dict[int, Login]] | None = None,
    ) -> dict[str, list[Any]]:
        """``count`` logins per site in short runs ordered naive, guarded, guarded, naive,
        repeated, so that drift of a machine shared with other work cancels out."""
        block = block or max(4 * concurrency, 12)
        runs: dict[str, list[Any]] = {site: [] for site in self.sites}
        done = dict.fromkeys(self.sites, 0)
        cycle = 0
        while min(done.values()) < count:
            for site in self.sites if cycle % 2 == 0 else self.sites[::-1]:
                n = min(block, count - done[site])
                if n > 0:
                    runs[site].append(
                        self.run(
                            site,
                            pattern,
                            n,
                            concurrency=concurrency,
                            count_sql=count_sql,
                            first_index=first_index + done[site],
                            kind=kind,
                            partners=(partners or {}).get(site),
                        )
                    )
                    done[site] += n
            cycle += 1
        return runs

    def partners(self, kind: str, pattern: str) -> dict[str, dict[int, Login]]:
        """For the QR logins of ``pattern``: every SHARE_EVERY-th index -> the Official Account
        login of the same site, pattern and index (run before), whose person it reuses."""
        if kind != "open" or pattern not in self.runs.get("mp", {}):
            return {}
        return {
            site: {
                login.index: login
                for run in self.runs["mp"][pattern][site]
                for login in run.logins
                if login.index % SHARE_EVERY == 0
            }
            for site in self.sites
        }

    def kind_pass(self, kind: str) -> None:
        """Every pattern through ``kind``'s app, on both sites."""
        self.runs[kind] = {}
        for index, (name, count) in enumerate(self.counts[kind].items()):
            partners = self.partners(kind, name)
            if name == "plain":
                self.runs[kind][name] = self.abba(
                    name,
                    count,
                    concurrency=self.args.concurrency,
                    count_sql=True,
                    first_index=0,
                    kind=kind,
                    partners=partners,
                )
            else:
                self.runs[kind][name] = {site: [] for site in self.sites}
                for site in self.sites if index % 2 == 0 else self.sites[::-1]:
                    self.runs[kind][name][site].append(
                        self.run(
                            site,
                            name,
                            count,
                            concurrency=self.args.concurrency,
                            count_sql=True,
                            first_index=0,
                            kind=kind,
                            partners=partners.get(site),
                        )
                    )
            self.progress(
                kind,
                name,
                {
                    site: sum(login.failed for r in self.runs[kind][name][site] for login in r.logins)
                    for site in self.sites
                },
                "failed",
            )

    def patterns(self) -> dict[str, Any]:
        """Every kind's pass (Official Account first: the QR pass reuses some of its persons),
        then both_apps_at_once; the figures per kind, pattern and site."""
        from bench.storm import faults, report
        from bench.storm.runner import run_both_apps_at_once
        from bench.storm.users import read_users

        for kind in self.kinds:
            before = self.stack.fake.stats()
            self.kind_pass(kind)
            after = self.stack.fake.stats()
            self.app_calls[kind] = {
                site: report.app_calls_delta(before, after, APP_IDS[site][kind], APP_KINDS[kind])
                for site in self.sites
            }
        both = set(WEB_KINDS) <= set(self.kinds)
        if both:
            count = max(4, self.counts["mp"]["plain"])
            halves = (count // 2, count - count // 2)
            for cycle, site in enumerate(self.sites + self.sites[::-1]):  # ABBA
                self.at_once.setdefault(site, []).append(
                    run_both_apps_at_once(
                        self.handles[site],
                        self.db,
                        halves[cycle // 2],
                        concurrency=self.args.concurrency,
                        count_sql=True,
                        first_index=(cycle // 2) * halves[0],
                    )
                )
            self.progress(
                "both_apps_at_once",
                {
                    site: sum(login.failed for r in self.at_once[site] for login in r.logins)
                    for site in self.sites
                },
                "failed",
            )
        calls = {code: int(n) for code, n in self.stack.fake.stats()["exchange_calls"].items()}
        persons = {
            site: {
                login.person
                for by_pattern in self.runs.values()
                for by_site in by_pattern.values()
                for run in by_site[site]
                for login in run.logins
            }
            | {login.person for run in self.at_once.get(site, []) for login in run.logins}
            for site in self.sites
        }
        users = {site: read_users(self.db, site, persons[site]) for site in self.sites}
        guarded_codes = [
            code
            for by_pattern in self.runs.values()
            for by_site in by_pattern.values()
            for run in by_site["guarded"]
            for login in run.logins
            for code in login.codes
        ]
        db_duplicates = faults.duplicates_by_code(
            self.db, guarded_codes, self.stack.envs["guarded"]["STORM_SECRET_KEY"]
        )
        self.redis_keys = self.stack.redis.dbsize()
        self.logs_after_patterns = {site: log_findings(self.stack.logs(site)) for site in self.sites}
        if both:
            self.cross_app = report.cross_app(self.runs, self.at_once, users, calls)
        return {
            kind: {
                name: {
                    site: report.pattern_figures(
                        self.runs[kind][name][site],
                        calls,
                        users[site],
                        db_duplicates if site == "guarded" else None,
                    )
                    for site in self.sites
                }
                for name in KIND_PATTERNS[kind]
            }
            for kind in self.kinds
        }

    def probe(self) -> dict[str, Any]:
        """The latency target, per kind: plain logins without any instrumentation header, ABBA,
        at the storm's concurrency and with one browser (no queueing for CPU between logins)."""
        from bench.storm import report

        out: dict[str, Any] = {}
        for kind in self.kinds:
            plain = self.counts[kind]["plain"]
            out[kind] = {}
            for label, browsers, count in (
                ("storm_concurrency", self.args.concurrency, 2 * plain),
                ("one_browser", 1, max(10, 2 * plain // 3)),
            ):
                runs = self.abba(
                    "plain",
                    count,
                    concurrency=browsers,
                    count_sql=False,
                    first_index=20_000 + 5_000 * browsers,
                    kind=kind,
                )
                out[kind][label] = {site: report.throughput_figures(runs[site]) for site in self.sites}
                g, n = (out[kind][label][site]["callback_ms"].get("p50") for site in ("guarded", "naive"))
                out[kind][label]["p50_ratio_guarded_over_naive"] = round(g / n, 3) if g and n else None
        return out

    def throughput(self) -> dict[str, Any]:
        """Plain logins at 0 ms upstream, the storm's concurrency, ABBA, through the first kind."""
        from bench.storm import report

        kind = self.kinds[0]
        self.stack.fake.set_latency(0)
        try:
            runs = self.abba(
                "plain",
                self.args.throughput_logins,
                concurrency=self.args.concurrency,
                count_sql=False,
                first_index=10_000,
                block=max(20, self.args.throughput_logins // 4),
                kind=kind,
            )
        finally:
            self.stack.fake.set_latency(self.args.latency)
        out: dict[str, Any] = {"kind": kind}
        out.update({site: report.throughput_figures(runs[site]) for site in self.sites})
        n, g = (out[site]["throughput_logins_per_s"] for site in ("naive", "guarded"))
        out["ratio_guarded_over_naive"] = round(g / n, 3) if n else None
        return out
