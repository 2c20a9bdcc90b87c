"""``python -m bench.storm``: the login storm, guarded vs naive (see bench/storm/__init__.py).

    python -m bench.storm                 # default run: 500 logins per site and kind, faults included
    python -m bench.storm --quick         # smoke run (~1.5 min per database)
    python -m bench.storm --db postgres,mariadb,sqlite      # every database, side by side
    python -m bench.storm --kind open     # only the website app's QR login
    python -m bench.storm --quick --kind mini,wecom       # the Mini Program and WeCom kinds
    python -m bench.storm --only patterns --only faults --logins 1000 --concurrency 8

``--kind mp|open|mini|wecom`` (repeatable, or a comma list; default ``mp,open``) says which
kinds of login the storm drives through their duplicate patterns, on both sites
(bench/storm/apps.py): ``mp``, the Official Account (``wechat/login/`` -> WeChat's authorize
page -> ``wechat/callback/``, in WeChat's browser); ``open``, the website app's QR login
(``wechat/web/login/`` -> WeChat's qrconnect page -> ``wechat/web/callback/``, in a desktop
browser); ``mini``, the Mini Program (a ``wx.login()`` code POSTed to ``wechat/mini/session/``
by a careless front end: twice at once, and again after an answer it lost); ``wecom``, the
WeCom app (``wechat/corp/login/`` -> the authorize page with an agentid ->
``wechat/corp/callback/``, in WeCom's browser, whose callback is aborted and re-sent like
WeChat's). ``mp`` and ``open`` run every duplicate pattern; ``mini`` its own
(bench/storm/patterns.py: MINI_PATTERNS); ``wecom`` plain, abort-and-resend (on one instance
and across both), 5 parallel duplicates and refresh. Both sites always have the four apps,
one fake WeChat serving all eight. With ``mp`` and ``open``, every third QR login reuses the
person of an Official Account login of the same run, and new persons also log in through both
apps at once (``cross_app`` in the report): a person must be one Django user across both apps
on the guarded site. With ``wecom``, the report also counts each site's gettoken requests
(``wecom_gettoken``; target: one on the guarded site, whose app token lives 2 hours). The
latency probe runs per kind; the 0 ms throughput pass uses the first kind given (mp by
default); the fault scenarios always log in through the Official Account.

``--db`` (repeatable, or a comma list; default postgres) runs the whole storm once per
database, one after the other, each with a fresh fake WeChat, Redis and both sites on that
database (the naive site too), and reports each database in its own section beside a short
table over all of them. Prints the JSON report and writes it to bench/results/storm.json, a
chart per database to bench/results/storm-<db>.png (the first database's also to
bench/results/storm.png) and the servers' logs to bench/results/storm-logs/<db>/.

Databases (bench/storm/databases.py): PostgreSQL (127.0.0.1:5432, user postgres;
STORM_PG_HOST/PORT/USER to change), MariaDB (127.0.0.1:3306, user root, no password;
STORM_MARIADB_HOST/PORT/USER/PASSWORD; mysqlclient), SQLite (Django's default settings, a
file per site in a temporary directory). The databases wechat_oauth_storm and
wechat_oauth_storm_naive (SQLite: files of those names) are created afresh and dropped at the
end (--keep-databases leaves them for inspection). A database that cannot be reached is
reported as skipped. Also needs redis-server on the PATH (a private one is started on a free
port), gunicorn and matplotlib. The database_restart fault starts a disposable server of its
own (PostgreSQL: initdb, pg_ctl, run as the postgres OS user when this runs as root; MariaDB:
mariadb-install-db, mariadbd as the mysql OS user) and is skipped, saying why, where it cannot
(always on SQLite, which has no server). Exit status 0 when every target is met on every
database. A table of the per-kind figures (failed logins, exchanges per code, users per
person, p50; guarded/naive) is printed to stderr at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.storm.apps import APP_IDS, DEFAULT_KINDS, KIND_LABELS, WEB_KINDS
from bench.storm.apps import KINDS as APP_KINDS
from bench.storm.databases import KINDS, LABELS, Database
from bench.storm.patterns import KIND_PATTERNS, PATTERNS, Login

RESULTS = Path(__file__).resolve().parents[1] / "results"
SITES = ("naive", "guarded")
SECTIONS = ("patterns", "probe", "throughput", "faults")
DJANGO_DEFAULT = " (Django's default)"
#: plain logins count twice (the ABBA pass); --logins is spread over the browser patterns, and
#: the kinds with fewer patterns (mini, wecom) run as many logins per pattern.
PATTERN_WEIGHTS = {name: 2 if name == "plain" else 1 for name in PATTERNS}
#: Every SHARE_EVERY-th QR login of a pattern reuses an Official Account login's person.
SHARE_EVERY = 3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.storm",
                                     description="The login storm: guarded vs naive, per kind "
                                                 "of login (Official Account, website QR).")
    parser.add_argument("--kind", action="append", metavar="KIND[,KIND...]",
                        help=f"kind(s) of login to storm: {', '.join(APP_KINDS)} (mp: the "
                             "Official Account, authorize page; open: the website app, QR "
                             "login through qrconnect; mini: the Mini Program, a wx.login "
                             "code POSTed to session/; wecom: the WeCom app, in-app "
                             "authorize in WeCom's browser); repeatable or a comma list; "
                             f"default {','.join(DEFAULT_KINDS)}")
    parser.add_argument("--logins", type=int, default=None,
                        help="logins per site and kind over all duplicate patterns (default "
                             "500; quick 66; mini and wecom, with fewer patterns, as many per "
                             "pattern)")
    parser.add_argument("--throughput-logins", type=int, default=None,
                        help="plain logins per site at 0 ms upstream (default 400; quick 60)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="concurrent browsers per site (default 4; patterns with many "
                             "duplicates use fewer so that at most 64 callbacks are in flight)")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker (8)")
    parser.add_argument("--latency", type=float, default=0.08, help="upstream latency, s (0.08)")
    parser.add_argument("--redis-socket-timeout", type=float, default=0.05,
                        help="SOCKET_TIMEOUT of the guarded site's django-redis cache (0.05, the "
                             "README's recommendation)")
    parser.add_argument("--conn-max-age", type=int, default=0,
                        help="CONN_MAX_AGE of both sites (default 0, Django's: a database "
                             "connection per request; e.g. 60 for persistent connections)")
    parser.add_argument("--db", action="append", metavar="DB[,DB...]",
                        help=f"database(s) to run the storm on, one after the other: "
                             f"{', '.join(KINDS)} (repeatable or a comma list; default postgres)")
    parser.add_argument("--only", choices=SECTIONS, action="append",
                        help="run only this section (repeatable); default: all")
    parser.add_argument("--quick", action="store_true", help="smoke run: few logins, short faults")
    parser.add_argument("--no-faults", action="store_true", help="skip the fault scenarios")
    parser.add_argument("--keep-databases", action="store_true",
                        help="leave both databases for inspection")
    args = parser.parse_args(argv)
    args.kinds = []
    for kind in (part.strip() for value in (args.kind or list(DEFAULT_KINDS))
                 for part in value.split(",")):
        if kind not in APP_KINDS:
            parser.error(f"--kind: unknown kind {kind!r} (choose from {', '.join(APP_KINDS)})")
        if kind not in args.kinds:
            args.kinds.append(kind)
    args.databases = []
    for kind in (part.strip() for value in (args.db or ["postgres"]) for part in value.split(",")):
        if kind not in KINDS:
            parser.error(f"--db: unknown database {kind!r} (choose from {', '.join(KINDS)})")
        if kind not in args.databases:
            args.databases.append(kind)
    args.logins = args.logins or (66 if args.quick else 500)
    args.throughput_logins = args.throughput_logins or (60 if args.quick else 400)
    args.sections = [s for s in SECTIONS if s in (args.only or SECTIONS)
                     and not (s == "faults" and args.no_faults)]
    return args


def split_logins(total: int, kind: str = "mp") -> dict[str, int]:
    """Logins per pattern of ``kind``: ``total`` spread over the browser patterns by weight."""
    unit = math.ceil(total / sum(PATTERN_WEIGHTS.values()))
    return {name: max(2, unit * (2 if name == "plain" else 1)) for name in KIND_PATTERNS[kind]}


def versions() -> dict[str, Any]:
    import django
    import gunicorn

    return {"python": platform.python_version(), "django": django.get_version(),
            "gunicorn": gunicorn.__version__}


def redis_version(stack: Any) -> str:
    import redis

    try:
        return str(redis.Redis(port=stack.redis.port).info("server")["redis_version"])
    except Exception:
        return "?"


def log_findings(text: str) -> dict[str, int]:
    lines = text.splitlines()
    return {"cache_front_warnings": sum("cache front" in line for line in lines),
            "error_lines": sum(" ERROR " in line or "[ERROR]" in line for line in lines),
            "tracebacks": sum(line.startswith("Traceback") for line in lines)}


class Storm:
    def __init__(self, args: argparse.Namespace, stack: Any, progress: Any) -> None:
        self.args, self.stack, self.progress = args, stack, progress
        self.db: Database = stack.db
        self.kinds: list[str] = args.kinds
        self.handles = {site: stack.handle(site) for site in SITES}
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

    def run(self, site: str, pattern: str, count: int, *, concurrency: int, count_sql: bool,
            first_index: int, kind: str = "mp", partners: dict[int, Login] | None = None) -> Any:
        from bench.storm.runner import run_pattern

        return run_pattern(self.handles[site], self.db, pattern, count,
                           concurrency=concurrency, count_sql=count_sql, first_index=first_index,
                           kind=kind, partners=partners)

    def warm_up(self) -> None:
        """Every worker imports, resolves and connects once, through each kind; not recorded."""
        for kind in self.kinds:
            for site in SITES:
                self.run(site, "plain", 16, concurrency=8, count_sql=True, first_index=90_000,
                         kind=kind)

    def abba(self, pattern: str, count: int, *, concurrency: int, count_sql: bool,
             first_index: int, block: int | None = None, kind: str = "mp",
             partners: dict[str, dict[int, Login]] | None = None) -> dict[str, list[Any]]:
        """``count`` logins per site in short runs ordered naive, guarded, guarded, naive,
        repeated, so that drift of a machine shared with other work cancels out."""
        block = block or max(4 * concurrency, 12)
        runs: dict[str, list[Any]] = {site: [] for site in SITES}
        done = dict.fromkeys(SITES, 0)
        cycle = 0
        while min(done.values()) < count:
            for site in SITES if cycle % 2 == 0 else SITES[::-1]:
                n = min(block, count - done[site])
                if n > 0:
                    runs[site].append(self.run(site, pattern, n, concurrency=concurrency,
                                               count_sql=count_sql,
                                               first_index=first_index + done[site], kind=kind,
                                               partners=(partners or {}).get(site)))
                    done[site] += n
            cycle += 1
        return runs

    def partners(self, kind: str, pattern: str) -> dict[str, dict[int, Login]]:
        """For the QR logins of ``pattern``: every SHARE_EVERY-th index -> the Official Account
        login of the same site, pattern and index (run before), whose person it reuses."""
        if kind != "open" or pattern not in self.runs.get("mp", {}):
            return {}
        return {site: {login.index: login for run in self.runs["mp"][pattern][site]
                       for login in run.logins if login.index % SHARE_EVERY == 0}
                for site in SITES}

    def kind_pass(self, kind: str) -> None:
        """Every pattern through ``kind``'s app, on both sites."""
        self.runs[kind] = {}
        for index, (name, count) in enumerate(self.counts[kind].items()):
            partners = self.partners(kind, name)
            if name == "plain":
                self.runs[kind][name] = self.abba(name, count, concurrency=self.args.concurrency,
                                                  count_sql=True, first_index=0, kind=kind,
                                                  partners=partners)
            else:
                self.runs[kind][name] = {site: [] for site in SITES}
                for site in (SITES if index % 2 == 0 else SITES[::-1]):
                    self.runs[kind][name][site].append(self.run(
                        site, name, count, concurrency=self.args.concurrency, count_sql=True,
                        first_index=0, kind=kind, partners=partners.get(site)))
            self.progress(kind, name, {site: sum(login.failed for r in self.runs[kind][name][site]
                                                 for login in r.logins) for site in SITES},
                          "failed")

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
            self.app_calls[kind] = {site: report.app_calls_delta(before, after, APP_IDS[site][kind],
                                                                  APP_KINDS[kind])
                                    for site in SITES}
        both = set(WEB_KINDS) <= set(self.kinds)
        if both:
            count = max(4, self.counts["mp"]["plain"])
            halves = (count // 2, count - count // 2)
            for cycle, site in enumerate(SITES + SITES[::-1]):  # ABBA
                self.at_once.setdefault(site, []).append(run_both_apps_at_once(
                    self.handles[site], self.db, halves[cycle // 2],
                    concurrency=self.args.concurrency, count_sql=True,
                    first_index=(cycle // 2) * halves[0]))
            self.progress("both_apps_at_once", {site: sum(login.failed for r in self.at_once[site]
                                                          for login in r.logins)
                                                for site in SITES}, "failed")
        calls = {code: int(n) for code, n in self.stack.fake.stats()["exchange_calls"].items()}
        persons = {site: {login.person for by_pattern in self.runs.values()
                          for by_site in by_pattern.values() for run in by_site[site]
                          for login in run.logins}
                   | {login.person for run in self.at_once.get(site, []) for login in run.logins}
                   for site in SITES}
        users = {site: read_users(self.db, site, persons[site]) for site in SITES}
        guarded_codes = [code for by_pattern in self.runs.values() for by_site in by_pattern.values()
                         for run in by_site["guarded"] for login in run.logins for code in login.codes]
        db_duplicates = faults.duplicates_by_code(self.db, guarded_codes,
                                                  self.stack.envs["guarded"]["STORM_SECRET_KEY"])
        self.redis_keys = self.stack.redis.dbsize()
        self.logs_after_patterns = {site: log_findings(self.stack.logs(site)) for site in SITES}
        if both:
            self.cross_app = report.cross_app(self.runs, self.at_once, users, calls)
        return {kind: {name: {site: report.pattern_figures(
                    self.runs[kind][name][site], calls, users[site],
                    db_duplicates if site == "guarded" else None) for site in SITES}
                       for name in KIND_PATTERNS[kind]} for kind in self.kinds}

    def probe(self) -> dict[str, Any]:
        """The latency target, per kind: plain logins without any instrumentation header, ABBA,
        at the storm's concurrency and with one browser (no queueing for CPU between logins)."""
        from bench.storm import report

        out: dict[str, Any] = {}
        for kind in self.kinds:
            plain = self.counts[kind]["plain"]
            out[kind] = {}
            for label, browsers, count in (("storm_concurrency", self.args.concurrency, 2 * plain),
                                           ("one_browser", 1, max(10, 2 * plain // 3))):
                runs = self.abba("plain", count, concurrency=browsers, count_sql=False,
                                 first_index=20_000 + 5_000 * browsers, kind=kind)
                out[kind][label] = {site: report.throughput_figures(runs[site]) for site in SITES}
                g, n = (out[kind][label][site]["callback_ms"].get("p50")
                        for site in ("guarded", "naive"))
                out[kind][label]["p50_ratio_guarded_over_naive"] = (round(g / n, 3)
                                                                    if g and n else None)
        return out

    def throughput(self) -> dict[str, Any]:
        """Plain logins at 0 ms upstream, the storm's concurrency, ABBA, through the first kind."""
        from bench.storm import report

        kind = self.kinds[0]
        self.stack.fake.set_latency(0)
        try:
            runs = self.abba("plain", self.args.throughput_logins,
                             concurrency=self.args.concurrency, count_sql=False, first_index=10_000,
                             block=max(20, self.args.throughput_logins // 4), kind=kind)
        finally:
            self.stack.fake.set_latency(self.args.latency)
        out: dict[str, Any] = {"kind": kind}
        out.update({site: report.throughput_figures(runs[site]) for site in SITES})
        n, g = (out[site]["throughput_logins_per_s"] for site in ("naive", "guarded"))
        out["ratio_guarded_over_naive"] = round(g / n, 3) if n else None
        return out


def setup(args: argparse.Namespace) -> dict[str, Any]:
    """What every database's run shares."""
    return {
        "upstream": f"fake WeChat in its own process (wechat_oauth.testing), "
                    f"{args.latency * 1000:.0f} ms per API call; a fresh one per database",
        "servers": (f"each site: 2 gunicorn instances x 2 workers, worker class gthread, "
                    f"{args.threads} threads per worker, loopback, all on this host; both sites "
                    f"on the same database, CONN_MAX_AGE {args.conn_max_age}"
                    f"{DJANGO_DEFAULT if args.conn_max_age == 0 else ''}; database sessions"),
        "guarded": ("wechat_oauth views + middleware + backend, settings at their defaults, "
                    "APPS mp (KIND mp, DEFAULT_APP), web (KIND open), mini (KIND miniprogram) "
                    "and corp (KIND wecom, snsapi_base), "
                    "django-redis front on a private redis-server (SOCKET_TIMEOUT "
                    f"{args.redis_socket_timeout} s; a fresh one per database), database "
                    "wechat_oauth_storm"),
        "naive": ("bench/storm/naive: the same four apps (its own appids and corp); state in "
                  "the session popped by the callback, requests.get exchange (+ userinfo for "
                  "the QR login), get_or_create user by unionid; the Mini Program's session "
                  "view calls jscode2session for every POST; the WeCom callback calls "
                  "getuserinfo with a token from gettoken kept per process; database "
                  "wechat_oauth_storm_naive"),
        "kinds": {kind: KIND_LABELS[kind] for kind in args.kinds},
        "apps": {site: {kind: APP_IDS[site][kind] for kind in args.kinds} for site in SITES},
        "cross_app": (f"every {SHARE_EVERY}rd QR login reuses the person of the Official "
                      "Account login of the same pattern and index; both_apps_at_once: new "
                      "persons logging in through both apps at one instant"
                      if set(WEB_KINDS) <= set(args.kinds) else "not run (needs mp and open)"),
        "load_generator": (f"this process: threads, one requests.Session per browser; "
                           f"{args.concurrency} concurrent browsers per site (fewer for "
                           f"patterns with many duplicates: at most 64 callbacks in flight)"),
        "databases_run": args.databases,
        "databases": "kept for inspection" if args.keep_databases else "dropped at the end",
        "server_logs": "bench/results/storm-logs/<db>/",
    }


def run_database(args: argparse.Namespace, kind: str, facts: dict[str, Any],
                 progress: Any) -> dict[str, Any]:
    """The whole storm on one database: its section of the report."""
    from bench.storm import chart, faults, report
    from bench.storm.databases import database
    from bench.storm.runner import ConnectionSampler
    from bench.storm.stack import Stack

    db = database(kind)
    reason = db.unavailable()
    if reason is not None:
        progress(kind, "skipped:", reason)
        return {"skipped": reason}
    version = db.version()
    results: dict[str, Any] = {}
    load_start = os.getloadavg()
    with Stack(db, RESULTS / "storm-logs" / kind, latency=args.latency, threads=args.threads,
               keep_databases=args.keep_databases,
               redis_socket_timeout=args.redis_socket_timeout,
               conn_max_age=args.conn_max_age) as stack:
        progress(kind, "stack up:",
                 {site: [i.url for i in insts] for site, insts in stack.instances.items()})
        facts.setdefault("redis", redis_version(stack))
        storm = Storm(args, stack, progress)
        with ConnectionSampler(db) as sampler:
            storm.warm_up()
            for section in args.sections:
                progress(kind, section)
                if section == "faults":
                    results[section] = faults.run_faults(stack, quick=args.quick)
                else:
                    results[section] = getattr(storm, section)()
            gettoken = gettoken_figures(stack) if "wecom" in args.kinds else None
        out: dict[str, Any] = {
            "database": {"kind": kind, "version": version, "where": db.describe(),
                         "connections": sampler.figures()},
            "loadavg_at_start": [round(v, 2) for v in load_start],
            "loadavg_at_end": [round(v, 2) for v in os.getloadavg()],
            "kinds": args.kinds,
            "naive_side_by_side": ("yes: the naive site has the four apps too (a naive QR "
                                   "callback, Mini Program session view and WeCom callback)"),
            "logins_per_site_and_kind": ({k: sum(c.values()) for k, c in storm.counts.items()}
                                         if "patterns" in results else {}),
            "logins_per_pattern": storm.counts if "patterns" in results else {},
            "redis_keys_after_patterns": storm.redis_keys,
        }
        try:  # a figure the report cannot read must not lose the others
            if {"patterns", "probe", "throughput"} <= set(results):
                out["targets"] = report.targets(results["probe"], results["patterns"],
                                                results["throughput"], storm.cross_app)
                if "faults" in results:
                    out["targets"].append(report.fault_target(results["faults"]))
                if gettoken is not None:
                    out["targets"].append(report.gettoken_target(gettoken))
                out["all_targets_met"] = all(target["met"] for target in out["targets"])
            if "patterns" in results:
                out["summary"] = report.side_by_side(results["patterns"])
        except Exception as exc:
            out["all_targets_met"] = False
            out["report_error"] = f"{type(exc).__name__}: {exc}"
        out["patterns"] = results.get("patterns", {})
        out["cross_app"] = storm.cross_app or {"not_run": "needs both kinds (--kind mp,open)"}
        if gettoken is not None:
            out["wecom_gettoken"] = gettoken
        out["fake_app_calls"] = storm.app_calls
        if "patterns" in results:
            out["table"] = report.table(results["patterns"], storm.cross_app,
                                        gettoken).splitlines()
        out["latency_probe_80ms"] = results.get("probe", {})
        out["throughput_0ms"] = results.get("throughput", {})
        out["faults"] = results.get("faults", {})
        out["server_log_findings"] = {
            "after_patterns": storm.logs_after_patterns,
            "whole_run": {site: log_findings(stack.logs(site)) for site in SITES}}
        if "patterns" in results:
            progress(kind, "chart")
            labels = {app_kind: f"{app_kind}:" if len(args.kinds) > 1 else "" for app_kind in args.kinds}
            per_kind = ", ".join(f"{k} {sum(c.values())}" for k, c in storm.counts.items())
            chart.draw(RESULTS / f"storm-{kind}.png",
                       {f"{labels[k]}{name}": runs for k, by in storm.runs.items()
                        for name, runs in by.items()},
                       {f"{labels[k]}{name}": figures for k, by in results["patterns"].items()
                        for name, figures in by.items()},
                       results.get("throughput", {}),
                       f"Login storm on {LABELS[kind]} at {args.latency * 1000:.0f} ms upstream, "
                       f"logins per site {per_kind}, {args.concurrency} "
                       f"browsers; load avg at start {load_start[0]:.2f}")
            out["chart"] = f"bench/results/storm-{kind}.png"
    return out


def gettoken_figures(stack: Any) -> dict[str, Any]:
    """Each site's cgi-bin/gettoken requests over the whole run (warm-up, patterns, probe and
    throughput included), from the fake's per-agent counter."""
    calls = stack.gettoken_calls()
    return {**calls, "corps": {site: APP_IDS[site]["wecom"] for site in SITES},
            "note": "the guarded site's app token is shared by its 4 worker processes (the "
                    "database row, the cache) and lives 7200 s, longer than the run; the naive "
                    "site keeps one per process"}


def main(argv: list[str] | None = None) -> int:
    from bench.storm import report

    args = parse_args(argv)
    started = time.perf_counter()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    RESULTS.mkdir(exist_ok=True)
    log_dir = RESULTS / "storm-logs"
    for old in log_dir.rglob("*.log"):
        old.unlink()

    def progress(*parts: Any) -> None:
        print(f"[storm {time.perf_counter() - started:6.1f}s]", *parts, file=sys.stderr, flush=True)

    out: dict[str, Any] = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m bench.storm " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    facts: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for kind in args.databases:
        try:
            sections[kind] = run_database(args, kind, facts, progress)
        except Exception as exc:  # one database's failure never hides the others' figures
            progress(kind, "failed:", f"{type(exc).__name__}: {exc}")
            sections[kind] = {"error": f"{type(exc).__name__}: {exc}"[:3000]}
    out["machine"] = {"cpus": os.cpu_count(), **versions(), **facts,
                      "databases": {kind: section["database"]["version"]
                                    for kind, section in sections.items() if "database" in section}}
    out["setup"] = setup(args)
    if any("targets" in section for section in sections.values()):
        out["all_targets_met"] = all(section.get("all_targets_met") is True
                                     for section in sections.values())
    out["summary"] = report.across_databases(sections)
    charts = [section["chart"] for section in sections.values() if "chart" in section]
    if charts:
        shutil.copyfile(RESULTS.parent.parent / charts[0], RESULTS / "storm.png")
        out["charts"] = charts
    out["databases"] = sections
    out["definitions"] = report.DEFINITIONS
    out["runtime_s"] = round(time.perf_counter() - started, 1)
    first = ("when", "command", "runtime_s", "charts", "machine", "setup", "all_targets_met",
             "summary")
    out = {**{key: out[key] for key in first if key in out}, **out}
    text = json.dumps(out, indent=2, ensure_ascii=False)
    (RESULTS / "storm.json").write_text(text + "\n")
    print(text)
    for kind, section in sections.items():
        if section.get("table"):
            print(f"\n{LABELS[kind]} (guarded/naive):", *section["table"], sep="\n",
                  file=sys.stderr)
    return 0 if out.get("all_targets_met") else 1


if __name__ == "__main__":
    sys.exit(main())
