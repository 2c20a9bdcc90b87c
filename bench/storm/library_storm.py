"""``python -m bench.storm --library social``: the storm against a site of another login
library, with the library's stock WeChat backend and with our drop-in, side by side.

Per library (bench/storm/libraries.py) and database: one fake WeChat in its own process (the
site's apps; ``--latency`` per API call), the site's two modes each on a database of its own
(``wechat_oauth_storm_<library>_stock`` / ``_dropin``) under gunicorn (2 instances x 2
workers, gthread), and the storm's load generator driving the duplicate patterns of the
library's kind of login (bench/storm/patterns.py: every pattern of ``mp``, WeChat's
abort-and-resend among them) through both, the same logins per pattern, ABBA for the plain
logins. The figures per pattern and mode: failed logins (what the user sees, as for the other
kinds), exchanges per code (the fake's per-code counter), users per openid (the site's
accounts table). Targets, the drop-in's: no failed login, exactly one exchange per code, one
user per openid and no user without an account, in every pattern. The stock figures are
reported, not judged.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.storm import report
from bench.storm.browser import Hit
from bench.storm.databases import LABELS, Database, name_of
from bench.storm.libraries import LIBRARIES, MODE_LABELS, MODES, LibrarySite
from bench.storm.passes import Storm, log_findings, run_facts
from bench.storm.patterns import KIND_PATTERNS, NEXT, SiteHandle
from bench.storm.report import Column, failed_logins
from bench.storm.runner import Run
from bench.storm.services import server_environment
from bench.storm.serving import application, describe
from bench.storm.stack import Stack, layout
from bench.storm.users import SiteUsers

RESULTS = Path(__file__).resolve().parents[1] / "results"
#: The table's cells: drop-in first, as the other kinds put the guarded site first.
CELLS = ("dropin", "stock")


def _percent(rate: float) -> int:
    return round(100 * rate)


#: The table's columns (bench/storm/report.py: table).
COLUMNS: list[Column] = [
    ("failed", 9, failed_logins),
    ("failed %", 9, lambda f: _percent(f["user_visible_failure_rate"])),
    ("any dup off %", 14, lambda f: _percent(f["any_callback_not_landing_rate"])),
    ("exch/code max", 14, lambda f: f["exchanges_per_code"].get("max", "-")),
    ("exch/code mean", 15, lambda f: f["exchanges_per_code"].get("mean", "-")),
    ("users/openid max", 17, lambda f: f["users_per_person"].get("max", "-")),
    ("p50 ms", 13, lambda f: f["callback_ms"].get("p50", "-")),
]

DEFINITIONS = {
    "library_sites": (
        "a site set up the library's own way (its settings, URLs, login page, pipeline), served "
        "twice: stock (the library's WeChat backend) and dropin (ours in its place, the README's "
        "change); each mode its own database and 2 gunicorn instances x 2 workers; one fake "
        "WeChat for both (the site's apps)"
    ),
    "library_login": (
        "the login page (it sets the CSRF cookie), its button's POST (the library's login "
        "start) -> WeChat's authorize page, answered at once with a fresh code for the login's "
        "person -> the pattern's callbacks -> /whoami/; a login succeeds when what the user sees "
        "redirects to next (/whoami/) and /whoami/ then names the user of the person's account "
        "(provider, uid = the person's openid) and no other account; the drop-in's one "
        "automatic restart of a login whose code is spent is followed (restarted_rate)"
    ),
    "any_callback_not_landing_rate": (
        "library sites: share of logins where some answered callback request (every duplicate; "
        "not the aborted ones) did not redirect to the login's next, nor to WeChat's page (the "
        "drop-in's one restart): an error page, the library's LOGIN_ERROR_URL, or "
        "LOGIN_REDIRECT_URL instead of next (tests/test_contrib_social.py's 'saw an error')"
    ),
    "library_users_per_person": (
        "users the site's accounts of the provider point to for the person's openid (its "
        "accounts table), per person of the pattern; users_without_account: users of the site's "
        "database no account points to (a user a failed or duplicate login left behind)"
    ),
}


@dataclass
class LibraryStack(Stack):
    """A library's stock and drop-in sites on one database, and a fake WeChat with the site's
    apps (no Redis: the sites run on their own settings' caches)."""

    library: LibrarySite | None = None

    @property
    def lib(self) -> LibrarySite:
        assert self.library is not None
        return self.library

    @property
    def sites(self) -> tuple[str, ...]:
        return self.lib.sites

    def wsgi(self, site: str) -> str:
        return self.lib.wsgi

    def start_upstream(self) -> None:
        from wechat_oauth.testing import FakeApp, FakeWeChatProcess

        self.fake = FakeWeChatProcess(
            app_id=self.lib.app_id,
            app_secret=self.lib.app_secret,
            apps=[FakeApp(app, secret) for app, secret in self.lib.other_apps],
            latency=self.latency,
            asgi=self.server == "asgi",
        )
        self.fake.start()

    def environment(self, site: str, db: Database | None = None) -> dict[str, str]:
        env = server_environment(self.lib.settings[self.lib.mode_of(site)])
        env.update(
            self.lib.environment(self.fake.base_url, (db or self.db).django_database(site, self.conn_max_age))
        )
        return env

    def handle(self, site: str) -> SiteHandle:
        return replace(super().handle(site), library=self.lib)


class LibraryStorm(Storm):
    """The pattern passes of the library's kind of login over its stock and drop-in sites."""

    def __init__(self, args: argparse.Namespace, stack: LibraryStack, progress: Any) -> None:
        super().__init__(args, stack, progress, sites=stack.sites, kinds=[stack.lib.kind])
        self.library = stack.lib
        self.users: dict[str, SiteUsers] = {}

    def patterns(self) -> dict[str, dict[str, dict[str, Any]]]:
        """pattern -> mode -> the figures (bench/storm/report.py: pattern_figures)."""
        kind = self.kinds[0]
        self.kind_pass(kind)
        calls = {code: int(n) for code, n in self.stack.fake.stats()["exchange_calls"].items()}
        for site in self.sites:
            persons = {
                login.person
                for runs in self.runs[kind].values()
                for run in runs[site]
                for login in run.logins
            }
            self.users[site] = self.library.read_users(self.db, site, persons)
        return {
            name: {
                self.library.mode_of(site): self.figures(self.runs[kind][name][site], calls, self.users[site])
                for site in self.sites
            }
            for name in KIND_PATTERNS[kind]
        }

    def figures(self, runs: list[Run], calls: dict[str, int], users: SiteUsers) -> dict[str, Any]:
        """The storm's figures of a pattern on one site, and the share of logins with a callback
        that did not land where the login was going (any_callback_not_landing_rate)."""
        out = report.pattern_figures(runs, calls, users)
        logins = [login for run in runs for login in run.logins]
        fake = self.stack.fake.base_url
        off = sum(
            any(not lands_on(hit, fake) for hit in login.callbacks) or not login.callbacks for login in logins
        )
        out["any_callback_not_landing_rate"] = round(off / len(logins), 4) if logins else 0
        return out


def lands_on(hit: Hit, fake_url: str) -> bool:
    """A callback answer on the login's way: a redirect to its next, or to WeChat's page on the
    fake at ``fake_url`` (the drop-in's one restart of a login whose code is spent)."""
    return hit.status == 302 and (urlsplit(hit.location).path == NEXT or hit.location.startswith(fake_url))


def targets(
    library: LibrarySite, patterns: dict[str, dict[str, dict[str, Any]]], users: dict[str, SiteUsers]
) -> list[dict[str, Any]]:
    """The drop-in's: no failed login and exactly one exchange per code in every pattern, one
    user per openid, no user without an account."""

    out = report.exactly_once_targets({library.name: patterns}, site="dropin")
    per = [sites["dropin"]["users_per_person"] for sites in patterns.values()]
    orphans = users[library.site("dropin")].users_without_account
    most, without = max((f["max"] for f in per), default=0), sum(f["persons_without_user"] for f in per)
    out.append(
        {
            "target": f"{library.name}: dropin exactly 1 user per openid (every pattern), no "
            "user without an account",
            "value": {
                "persons": sum(f["persons"] for f in per),
                "max": most,
                "persons_without_user": without,
                "users_without_account": orphans,
            },
            "met": most == 1 and without == 0 and orphans == 0,
        }
    )
    return out


def run_library(
    args: argparse.Namespace, db: Database, library: LibrarySite, progress: Any
) -> dict[str, Any]:
    """One library's stock and drop-in sites through every pattern on ``db``: its section."""
    from bench.storm.runner import ConnectionSampler

    reason = library.unavailable()
    if reason is not None:
        progress(db.kind, library.name, "skipped:", reason)
        return {"skipped": reason}
    load_start = os.getloadavg()
    with LibraryStack(
        db,
        RESULTS / "storm-logs" / db.kind,
        latency=args.latency,
        threads=args.threads,
        keep_databases=args.keep_databases,
        conn_max_age=args.conn_max_age,
        server=args.server,
        library=library,
    ) as stack:
        progress(
            db.kind,
            library.name,
            "stack up:",
            {site: [i.url for i in insts] for site, insts in stack.instances.items()},
        )
        storm = LibraryStorm(args, stack, progress)
        with ConnectionSampler(db, stack.sites) as sampler:
            storm.warm_up()
            patterns = storm.patterns()
        out: dict[str, Any] = {
            "library": library.label,
            "kind": library.kind,
            "sites": {
                mode: {
                    "settings": library.settings[mode],
                    "application": application(args.server, library.wsgi),
                    "database": name_of(library.site(mode)),
                }
                for mode in MODES
            },
            "where": db.describe(stack.sites),
            "connections": sampler.figures(),
            "loadavg_at_start": [round(v, 2) for v in load_start],
            "loadavg_at_end": [round(v, 2) for v in os.getloadavg()],
            "logins_per_pattern": storm.counts[library.kind],
        }
        try:  # a figure the report cannot read must not lose the others
            out["targets"] = targets(library, patterns, storm.users)
            out["all_targets_met"] = all(target["met"] for target in out["targets"])
            out["summary"] = report.side_by_side({library.name: patterns}, MODES)[library.name]
            for name, figures in out["summary"].items():
                figures["any_callback_not_landing_rate"] = {
                    mode: patterns[name][mode]["any_callback_not_landing_rate"] for mode in MODES
                }
        except Exception as exc:
            out["all_targets_met"] = False
            out["report_error"] = f"{type(exc).__name__}: {exc}"
        out["table"] = report.table({library.name: patterns}, None, sites=CELLS, columns=COLUMNS).splitlines()
        out["patterns"] = patterns
        out["users"] = {
            library.mode_of(site): {
                "users_in_database": users.users_total,
                "users_without_account": users.users_without_account,
            }
            for site, users in storm.users.items()
        }
        out["server_log_findings"] = {
            library.mode_of(site): log_findings(stack.logs(site)) for site in stack.sites
        }
    return out


def run_database(
    args: argparse.Namespace, db: Database, facts: dict[str, Any], progress: Any
) -> dict[str, Any]:
    """Every library of the run on one database (reachable), one after the other: its
    section."""
    kind = db.kind
    section: dict[str, Any] = {"database": {"kind": kind, "version": db.version()}, "libraries": {}}
    for name in args.libraries:
        try:
            section["libraries"][name] = run_library(args, db, LIBRARIES[name], progress)
        except Exception as exc:  # one library's failure never hides the others' figures
            progress(kind, name, "failed:", f"{type(exc).__name__}: {exc}")
            section["libraries"][name] = {"error": f"{type(exc).__name__}: {exc}"[:3000]}
    ran = [part for part in section["libraries"].values() if "skipped" not in part]
    section["targets"] = [target for part in ran for target in part.get("targets", [])]
    section["all_targets_met"] = bool(ran) and all(part.get("all_targets_met") is True for part in ran)
    measured = {name: part for name, part in section["libraries"].items() if "patterns" in part}
    section["table"] = (
        [
            *report.table(
                {name: part["patterns"] for name, part in measured.items()},
                None,
                sites=CELLS,
                columns=COLUMNS,
            ).splitlines(),
            *(
                f"{name}: users no account points to, drop-in/stock: "
                f"{'/'.join(str(part['users'][mode]['users_without_account']) for mode in CELLS)}; "
                f"tracebacks in the servers' logs: "
                f"{'/'.join(str(part['server_log_findings'][mode]['tracebacks']) for mode in CELLS)}"
                for name, part in measured.items()
            ),
        ]
        if measured
        else []
    )
    section["table_cells"] = "/".join(MODE_LABELS[mode] for mode in CELLS)
    return section


def setup(args: argparse.Namespace) -> dict[str, Any]:
    shape = layout()
    return {
        **shape,
        "upstream": f"fake WeChat in its own process (wechat_oauth.testing"
        f"{' --asgi' if args.server == 'asgi' else ''}), "
        f"{args.latency * 1000:.0f} ms per API call; a fresh one per library and "
        "database, the library site's apps",
        "servers": (
            f"each mode of each library site: {shape['instances']} gunicorn instances x "
            f"{shape['workers']} workers, "
            f"{describe(args.server, args.threads)}, loopback, all on this host; both "
            f"modes on the same database server, a database each, CONN_MAX_AGE "
            f"{args.conn_max_age}; the site's own settings otherwise"
        ),
        "libraries": {
            name: {
                "label": LIBRARIES[name].label,
                "settings": LIBRARIES[name].settings,
                "login": f"GET {LIBRARIES[name].login_page}, POST "
                f"{LIBRARIES[name].login_post}, WeChat's page, "
                f"{LIBRARIES[name].callback_path}",
                "provider": LIBRARIES[name].provider,
                "app_id": LIBRARIES[name].app_id,
            }
            for name in args.libraries
        },
        **run_facts(args),
        "server_logs": "bench/results/storm-logs/<db>/<library>_<mode>-<instance>.log",
    }


def summary(sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per library, the short table over every database run: per pattern and database,
    [dropin, stock] of each figure."""
    out: dict[str, Any] = {}
    for name in dict.fromkeys(name for section in sections.values() for name in section.get("libraries", {})):
        parts = {
            db: section["libraries"][name]
            for db, section in sections.items()
            if name in section.get("libraries", {})
        }
        across = report.across_databases(
            {
                db: ({**part, "patterns": {name: part["patterns"]}} if "patterns" in part else part)
                for db, part in parts.items()
            },
            CELLS,
        )
        out[name] = {**across, "patterns": across["patterns"].get(name, {})}
    return out


def table_title(kind: str, section: dict[str, Any]) -> str:
    return f"{LABELS[kind]} ({section.get('table_cells', 'guarded/naive')})"
