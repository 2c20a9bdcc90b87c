"""``python -m bench.storm``: the login storm, guarded vs naive (see bench/storm/__init__.py).

    python -m bench.storm                 # default run: 500 logins per site and kind, faults included
    python -m bench.storm --quick         # smoke run (~1.5 min per database)
    python -m bench.storm --db postgres,mariadb,sqlite      # every database, side by side
    python -m bench.storm --kind open     # only the website app's QR login
    python -m bench.storm --quick --kind mini,wecom       # the Mini Program and WeCom kinds
    python -m bench.storm --only patterns --only faults --logins 1000 --concurrency 8
    python -m bench.storm --quick --library social    # social-auth: stock vs our drop-in
    python -m bench.storm --quick --asgi   # the same sites under uvicorn workers (ASGI)
    python -m bench.storm --quick --asgi --async-views    # ... with ASYNC_VIEWS True
    python -m bench.storm --quick --only profile   # per-phase profile of a plain callback
    python -m bench.storm --quick --pgbouncer   # both sites through PgBouncer, transaction pooling
    python -m bench.storm --only spike     # a campaign spike: 300 first logins within 1 s per site

``--asgi`` serves every site with gunicorn's uvicorn worker (uvicorn-worker's
``UvicornWorker``: the same 2 instances x 2 workers, masters and process groups, so the fault
scenarios kill and wait for workers as under WSGI) on bench/storm/asgi.py, and the fake WeChat
under uvicorn too (``python -m wechat_oauth.testing --asgi``); the report says
``"server": "asgi"`` (default ``"wsgi"``: gthread workers, the fake's threaded WSGI server).
``--async-views`` puts ``"ASYNC_VIEWS": True`` into the guarded site's WECHAT_OAUTH
(``STORM_ASYNC_VIEWS=1``, bench/storm/server_settings.py), ``--sync-views`` False; neither
leaves the key out (the app's default). The naive site has no such setting.

``--pgbouncer`` (PostgreSQL only; bench/storm/pgbouncer.py) starts a pgbouncer of the bench's
own on a free loopback port (``pool_mode = transaction``, ``default_pool_size`` 4 per site's
database, ``--pgbouncer-pool-size`` to change; no reserve pool) and points both sites'
DATABASES at it with ``DISABLE_SERVER_SIDE_CURSORS = True``; the concurrency defaults to 8
browsers per site then, twice the pool. The database_restart fault's private cluster gets a
pgbouncer of its own. The report says ``"pgbouncer": {...}`` (pool mode, pool size, port);
the bench's own queries go to PostgreSQL directly. Such a run has databases, a report and
logs of its own (wechat_oauth_storm_pgbouncer and wechat_oauth_storm_naive_pgbouncer,
bench/results/storm-pgbouncer.json, bench/results/storm-logs/postgres-pgbouncer/, the
pgbouncers' logs there too), so it may run beside a plain storm. Needs the pgbouncer program
(Debian's package), run as the postgres OS user when this runs as root.

``--only profile`` (also part of the default run, before the faults; bench/storm/phases.py):
plain logins through each web kind (mp, open) at the storm's upstream latency, ABBA between the
sites, each callback cut into phases inside the worker (state check, Redis front, fence claim,
code budget, upstream, profile fetch, outcome write and commit, identity, login and session,
view, response): wall and CPU ms, SQL statements, Redis round trips per phase, in the report
under ``"profile"``; ``--profile-logins`` per site and kind (default 120; quick 24).
``python -m bench.storm.phases`` writes docs/benchmarks/phases.inc from bench/results/storm.json.

``--only spike`` (also part of the default run, before the faults; bench/storm/spike.py): a
campaign spike on each site in turn, ``--spike-logins`` first logins (default 300; quick 60)
whose callbacks arrive within one second, each exchange answered after 80-300 ms (drawn per
code), 10% duplicated by WeChat (abort-and-resend, parallel duplicates), pg_stat_activity
sampled every 5 ms (connections, open transactions; with ``--pgbouncer`` also SHOW POOLS), in
the report under ``"spike"``; ``python -m bench.storm.spike`` writes docs/benchmarks/spike.inc.

``--library social`` (repeatable or a comma list; bench/storm/libraries.py) runs, instead of
the guarded-vs-naive storm, a site of another login library (tests/social_site:
python-social-auth) twice on the same run, with the library's stock WeChat backend and with our
drop-in, each on a database of its own under 2 gunicorn instances x 2 workers, through every
duplicate pattern of the library's kind of login (bench/storm/library_storm.py). It reports
per pattern failed logins, exchanges per code and users per openid of both modes (targets:
the drop-in's), writes bench/results/storm-libraries.json and prints a drop-in/stock table.
``--kind``, ``--only`` and ``--no-faults`` do not apply; ``--db``, ``--logins``, ``--quick``,
``--concurrency``, ``--threads``, ``--latency`` and ``--conn-max-age`` do.

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
import os
import platform
import shutil
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.storm import serving
from bench.storm.apps import APP_IDS, DEFAULT_KINDS, KIND_LABELS, WEB_KINDS
from bench.storm.apps import KINDS as APP_KINDS
from bench.storm.databases import KINDS, LABELS, Database, Postgres, database
from bench.storm.libraries import LIBRARIES
from bench.storm.passes import SHARE_EVERY, SITES, Storm, log_findings, run_facts, split_logins

__all__ = ["Storm", "main", "parse_args", "split_logins"]

RESULTS = Path(__file__).resolve().parents[1] / "results"
SECTIONS = ("patterns", "probe", "throughput", "profile", "spike", "faults")
DJANGO_DEFAULT = " (Django's default)"
FAKE_SERVER = {"wsgi": "", "asgi": " --asgi: uvicorn, a thread per request"}
ASYNC_VIEWS = {
    None: "ASYNC_VIEWS not set (the app's default)",
    True: "ASYNC_VIEWS True",
    False: "ASYNC_VIEWS False",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.storm",
        description="The login storm: guarded vs naive, per kind of login (Official Account, website QR).",
    )
    parser.add_argument(
        "--kind",
        action="append",
        metavar="KIND[,KIND...]",
        help=f"kind(s) of login to storm: {', '.join(APP_KINDS)} (mp: the "
        "Official Account, authorize page; open: the website app, QR "
        "login through qrconnect; mini: the Mini Program, a wx.login "
        "code POSTed to session/; wecom: the WeCom app, in-app "
        "authorize in WeCom's browser); repeatable or a comma list; "
        f"default {','.join(DEFAULT_KINDS)}",
    )
    parser.add_argument(
        "--library",
        action="append",
        metavar="LIB[,LIB...]",
        help="instead of the guarded-vs-naive storm: a site of another login "
        f"library ({', '.join(LIBRARIES)}), with its stock WeChat backend "
        "and with our drop-in, side by side through the duplicate "
        "patterns (patterns only; repeatable or a comma list)",
    )
    parser.add_argument(
        "--logins",
        type=int,
        default=None,
        help="logins per site and kind over all duplicate patterns (default "
        "500; quick 66; mini and wecom, with fewer patterns, as many per "
        "pattern)",
    )
    parser.add_argument(
        "--throughput-logins",
        type=int,
        default=None,
        help="plain logins per site at 0 ms upstream (default 400; quick 60)",
    )
    parser.add_argument(
        "--profile-logins",
        type=int,
        default=None,
        help="plain logins per site and web kind of the per-phase profile (default 120; quick 24)",
    )
    parser.add_argument(
        "--spike-logins",
        type=int,
        default=None,
        help="first logins per site of the campaign spike, callbacks within 1 s (default 300; quick 60)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="concurrent browsers per site (default 4, 8 with --pgbouncer; patterns with many "
        "duplicates use fewer so that at most 64 callbacks are in flight)",
    )
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker (8)")
    parser.add_argument("--latency", type=float, default=0.08, help="upstream latency, s (0.08)")
    parser.add_argument(
        "--redis-socket-timeout",
        type=float,
        default=0.05,
        help="SOCKET_TIMEOUT of the guarded site's django-redis cache (0.05, the README's recommendation)",
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=0,
        help="CONN_MAX_AGE of both sites (default 0, Django's: a database "
        "connection per request; e.g. 60 for persistent connections)",
    )
    parser.add_argument(
        "--db",
        action="append",
        metavar="DB[,DB...]",
        help=f"database(s) to run the storm on, one after the other: "
        f"{', '.join(KINDS)} (repeatable or a comma list; default postgres)",
    )
    parser.add_argument(
        "--only", choices=SECTIONS, action="append", help="run only this section (repeatable); default: all"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: few logins, short faults")
    parser.add_argument("--no-faults", action="store_true", help="skip the fault scenarios")
    parser.add_argument("--keep-databases", action="store_true", help="leave both databases for inspection")
    parser.add_argument(
        "--asgi",
        action="store_true",
        help="serve the sites with gunicorn's uvicorn workers (ASGI, "
        "bench/storm/asgi.py) and the fake WeChat under uvicorn",
    )
    parser.add_argument(
        "--pgbouncer",
        action="store_true",
        help="both sites through a pgbouncer of the bench's own (pool_mode transaction; PostgreSQL only)",
    )
    parser.add_argument(
        "--pgbouncer-pool-size",
        type=int,
        default=4,
        help="default_pool_size of --pgbouncer's pgbouncer: server connections per site's database (4)",
    )
    views = parser.add_mutually_exclusive_group()
    views.add_argument(
        "--async-views",
        dest="async_views",
        action="store_const",
        const=True,
        help="the guarded site's WECHAT_OAUTH ASYNC_VIEWS True",
    )
    views.add_argument(
        "--sync-views",
        dest="async_views",
        action="store_const",
        const=False,
        help="the guarded site's WECHAT_OAUTH ASYNC_VIEWS False",
    )
    args = parser.parse_args(argv)
    args.server = "asgi" if args.asgi else "wsgi"
    args.kinds = []
    for kind in (part.strip() for value in (args.kind or list(DEFAULT_KINDS)) for part in value.split(",")):
        if kind not in APP_KINDS:
            parser.error(f"--kind: unknown kind {kind!r} (choose from {', '.join(APP_KINDS)})")
        if kind not in args.kinds:
            args.kinds.append(kind)
    args.libraries = []
    for name in (part.strip() for value in (args.library or []) for part in value.split(",")):
        if name not in LIBRARIES:
            parser.error(f"--library: unknown library {name!r} (choose from {', '.join(LIBRARIES)})")
        if name not in args.libraries:
            args.libraries.append(name)
    if args.libraries and (args.kind or args.only or args.no_faults):
        parser.error(
            "--library runs the duplicate patterns of the library's own login: "
            "--kind, --only and --no-faults do not apply"
        )
    if args.libraries and args.async_views is not None:
        parser.error(
            "--async-views / --sync-views set the guarded site's ASYNC_VIEWS; a "
            "library site's settings are its own"
        )
    args.databases = []
    for kind in (part.strip() for value in (args.db or ["postgres"]) for part in value.split(",")):
        if kind not in KINDS:
            parser.error(f"--db: unknown database {kind!r} (choose from {', '.join(KINDS)})")
        if kind not in args.databases:
            args.databases.append(kind)
    if args.pgbouncer and args.databases != ["postgres"]:
        parser.error("--pgbouncer pools PostgreSQL connections: --db postgres only")
    if args.concurrency is None:
        args.concurrency = 8 if args.pgbouncer else 4
    args.logins = args.logins or (66 if args.quick else 500)
    args.throughput_logins = args.throughput_logins or (60 if args.quick else 400)
    args.sections = [
        s for s in SECTIONS if s in (args.only or SECTIONS) and not (s == "faults" and args.no_faults)
    ]
    return args


def versions(server: str = "wsgi") -> dict[str, Any]:
    import django
    import gunicorn

    return {
        "python": platform.python_version(),
        "django": django.get_version(),
        "gunicorn": gunicorn.__version__,
        **serving.versions(server),
    }


def redis_version(stack: Any) -> str:
    import redis

    try:
        return str(redis.Redis(port=stack.redis.port).info("server")["redis_version"])
    except Exception:
        return "?"


def setup(args: argparse.Namespace) -> dict[str, Any]:
    """What every database's run shares."""
    from bench.storm.stack import layout

    shape = layout()
    return {
        "upstream": f"fake WeChat in its own process (wechat_oauth.testing{FAKE_SERVER[args.server]}), "
        f"{args.latency * 1000:.0f} ms per API call; a fresh one per database",
        **shape,
        "servers": (
            f"each site: {shape['instances']} gunicorn instances x {shape['workers']} workers, "
            f"{serving.describe(args.server, args.threads)}, loopback, all on this host; both sites "
            f"on the same database, CONN_MAX_AGE {args.conn_max_age}"
            f"{DJANGO_DEFAULT if args.conn_max_age == 0 else ''}; database sessions"
        ),
        "guarded": (
            "wechat_oauth views + middleware + backend, settings at their defaults, "
            "APPS mp (KIND mp, DEFAULT_APP), web (KIND open), mini (KIND miniprogram) "
            "and corp (KIND wecom, snsapi_base), "
            f"{ASYNC_VIEWS[args.async_views]}, "
            "django-redis front on a private redis-server (SOCKET_TIMEOUT "
            f"{args.redis_socket_timeout} s; a fresh one per database), database "
            "wechat_oauth_storm"
        ),
        "naive": (
            "bench/storm/naive: the same four apps (its own appids and corp); state in "
            "the session popped by the callback, requests.get exchange (+ userinfo for "
            "the QR login), get_or_create user by unionid; the Mini Program's session "
            "view calls jscode2session for every POST; the WeCom callback calls "
            "getuserinfo with a token from gettoken kept per process; database "
            "wechat_oauth_storm_naive"
        ),
        "kinds": {kind: KIND_LABELS[kind] for kind in args.kinds},
        "apps": {site: {kind: APP_IDS[site][kind] for kind in args.kinds} for site in SITES},
        "cross_app": (
            f"every {SHARE_EVERY}rd QR login reuses the person of the Official "
            "Account login of the same pattern and index; both_apps_at_once: new "
            "persons logging in through both apps at one instant"
            if set(WEB_KINDS) <= set(args.kinds)
            else "not run (needs mp and open)"
        ),
        **run_facts(args),
        "server_logs": "bench/results/storm-logs/<db>/",
    }


def run_database(
    args: argparse.Namespace, db: Database, facts: dict[str, Any], progress: Any
) -> dict[str, Any]:
    """The whole storm on one database (reachable): its section of the report."""
    from bench.storm import chart, faults, phases, report, spike
    from bench.storm.runner import ConnectionSampler
    from bench.storm.stack import Stack

    kind = db.kind
    version = db.version()
    results: dict[str, Any] = {}
    load_start = os.getloadavg()
    with Stack(
        db,
        RESULTS / "storm-logs" / (f"{kind}-pgbouncer" if args.pgbouncer else kind),
        latency=args.latency,
        threads=args.threads,
        keep_databases=args.keep_databases,
        server=args.server,
        async_views=args.async_views,
        redis_socket_timeout=args.redis_socket_timeout,
        conn_max_age=args.conn_max_age,
    ) as stack:
        progress(kind, "stack up:", {site: [i.url for i in insts] for site, insts in stack.instances.items()})
        facts.setdefault("redis", redis_version(stack))
        storm = Storm(args, stack, progress)
        with ConnectionSampler(db) as sampler:
            storm.warm_up()
            for section in args.sections:
                progress(kind, section)
                if section == "faults":
                    results[section] = faults.run_faults(stack, quick=args.quick)
                elif section == "profile":
                    results[section] = phases.run_profile(storm)
                elif section == "spike":
                    results[section] = spike.run_spike(storm)
                else:
                    results[section] = getattr(storm, section)()
            gettoken = gettoken_figures(stack) if "wecom" in args.kinds else None
        out: dict[str, Any] = {
            "database": {
                "kind": kind,
                "version": version,
                "where": db.describe(),
                "connections": sampler.figures(),
            },
            "server": args.server,
            **({"pgbouncer": db.facts()} if hasattr(db, "facts") else {}),
            "loadavg_at_start": [round(v, 2) for v in load_start],
            "loadavg_at_end": [round(v, 2) for v in os.getloadavg()],
            "kinds": args.kinds,
            "naive_side_by_side": (
                "yes: the naive site has the four apps too (a naive QR "
                "callback, Mini Program session view and WeCom callback)"
            ),
            "logins_per_site_and_kind": (
                {k: sum(c.values()) for k, c in storm.counts.items()} if "patterns" in results else {}
            ),
            "logins_per_pattern": storm.counts if "patterns" in results else {},
            "redis_keys_after_patterns": storm.redis_keys,
        }
        try:  # a figure the report cannot read must not lose the others
            if {"patterns", "probe", "throughput"} <= set(results):
                out["targets"] = report.targets(
                    results["probe"], results["patterns"], results["throughput"], storm.cross_app
                )
                if "faults" in results:
                    out["targets"].append(report.fault_target(results["faults"]))
                if gettoken is not None:
                    out["targets"].append(report.gettoken_target(gettoken))
                out["all_targets_met"] = all(target["met"] for target in out["targets"])
            if "spike" in results:
                out.setdefault("targets", []).append(spike.target(results["spike"]))
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
            out["table"] = report.table(results["patterns"], storm.cross_app, gettoken).splitlines()
        out["latency_probe_80ms"] = results.get("probe", {})
        out["throughput_0ms"] = results.get("throughput", {})
        out["faults"] = results.get("faults", {})
        if "profile" in results:
            out["profile"] = results["profile"]
        if "spike" in results:
            out["spike"] = results["spike"]
        out["server_log_findings"] = {
            "after_patterns": storm.logs_after_patterns,
            "whole_run": {site: log_findings(stack.logs(site)) for site in SITES},
        }
        if "patterns" in results:
            progress(kind, "chart")
            labels = {app_kind: f"{app_kind}:" if len(args.kinds) > 1 else "" for app_kind in args.kinds}
            per_kind = ", ".join(f"{k} {sum(c.values())}" for k, c in storm.counts.items())
            chart.draw(
                RESULTS / f"storm-{kind}.png",
                {f"{labels[k]}{name}": runs for k, by in storm.runs.items() for name, runs in by.items()},
                {
                    f"{labels[k]}{name}": figures
                    for k, by in results["patterns"].items()
                    for name, figures in by.items()
                },
                results.get("throughput", {}),
                f"Login storm on {LABELS[kind]} at {args.latency * 1000:.0f} ms upstream, "
                f"logins per site {per_kind}, {args.concurrency} "
                f"browsers; load avg at start {load_start[0]:.2f}",
            )
            out["chart"] = f"bench/results/storm-{kind}.png"
    return out


def gettoken_figures(stack: Any) -> dict[str, Any]:
    """Each site's cgi-bin/gettoken requests over the whole run (warm-up, patterns, probe and
    throughput included), from the fake's per-agent counter."""
    calls = stack.gettoken_calls()
    return {
        **calls,
        "corps": {site: APP_IDS[site]["wecom"] for site in SITES},
        "note": "the guarded site's app token is shared by its 4 worker processes (the "
        "database row, the cache) and lives 7200 s, longer than the run; the naive "
        "site keeps one per process",
    }


def main(argv: list[str] | None = None) -> int:
    from bench.storm import library_storm, report

    args = parse_args(argv)
    started = time.perf_counter()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # --library: bench/storm/library_storm.py, its own report (storm-libraries.json) and logs.
    libraries = bool(args.libraries)
    run = library_storm.run_database if libraries else run_database

    RESULTS.mkdir(exist_ok=True)
    log_dir = RESULTS / "storm-logs"
    for pattern in [f"*/{name}_*.log" for name in args.libraries] if libraries else ["*.log"]:
        for old in log_dir.rglob(pattern):
            old.unlink()

    def progress(*parts: Any) -> None:
        print(f"[storm {time.perf_counter() - started:6.1f}s]", *parts, file=sys.stderr, flush=True)

    out: dict[str, Any] = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m bench.storm " + " ".join(argv if argv is not None else sys.argv[1:]),
        "server": args.server,
        "async_views": args.async_views,
    }
    if args.pgbouncer:
        out["pgbouncer"] = {"pool_mode": "transaction", "default_pool_size": args.pgbouncer_pool_size}
    problem = serving.unavailable(args.server)
    if problem is not None:
        progress("cannot run:", problem)
        return 2
    facts: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for kind in args.databases:
        db = database(kind)
        if args.pgbouncer:
            from bench.storm.pgbouncer import PooledPostgres, use_own_names

            assert isinstance(db, Postgres)
            use_own_names()
            db = PooledPostgres(db, args.pgbouncer_pool_size, log_dir / f"{kind}-pgbouncer" / "pgbouncer.log")
        reason = db.unavailable()
        if reason is not None:
            progress(kind, "skipped:", reason)
            sections[kind] = {"skipped": reason}
            continue
        try:
            sections[kind] = run(args, db, facts, progress)
        except Exception as exc:  # one database's failure never hides the others' figures
            progress(kind, "failed:", f"{type(exc).__name__}: {exc}")
            sections[kind] = {"error": f"{type(exc).__name__}: {exc}"[:3000]}
    if args.pgbouncer:  # with its port, from the database's section
        out["pgbouncer"] = next(
            (s["pgbouncer"] for s in sections.values() if "pgbouncer" in s), out["pgbouncer"]
        )
    out["machine"] = {
        "cpus": os.cpu_count(),
        **versions(args.server),
        **facts,
        "databases": {
            kind: section["database"]["version"]
            for kind, section in sections.items()
            if "database" in section
        },
    }
    out["setup"] = library_storm.setup(args) if libraries else setup(args)
    if any("targets" in section for section in sections.values()):
        out["all_targets_met"] = all(section.get("all_targets_met") is True for section in sections.values())
    out["summary"] = library_storm.summary(sections) if libraries else report.across_databases(sections)
    charts = [section["chart"] for section in sections.values() if "chart" in section]
    if charts:
        shutil.copyfile(RESULTS.parent.parent / charts[0], RESULTS / "storm.png")
        out["charts"] = charts
    out["databases"] = sections
    out["definitions"] = {**report.DEFINITIONS, **(library_storm.DEFINITIONS if libraries else {})}
    out["runtime_s"] = round(time.perf_counter() - started, 1)
    first = (
        "when",
        "command",
        "server",
        "async_views",
        "pgbouncer",
        "runtime_s",
        "charts",
        "machine",
        "setup",
        "all_targets_met",
        "summary",
    )
    out = {**{key: out[key] for key in first if key in out}, **out}
    text = json.dumps(out, indent=2, ensure_ascii=False)
    name = "storm-libraries.json" if libraries else "storm-pgbouncer.json" if args.pgbouncer else "storm.json"
    (RESULTS / name).write_text(text + "\n")
    print(text)
    for kind, section in sections.items():
        if section.get("table"):
            print(
                f"\n{library_storm.table_title(kind, section)}:", *section["table"], sep="\n", file=sys.stderr
            )
    return 0 if out.get("all_targets_met") else 1


if __name__ == "__main__":
    sys.exit(main())
