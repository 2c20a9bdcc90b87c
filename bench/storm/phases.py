"""The per-phase profile of a plain login's callback (``python -m bench.storm --only profile``).

Inside each site's worker (bench/storm/serverside.py's SQLCountMiddleware starts a
:class:`Profiler` for a request carrying ``X-Storm-Profile``): a stack of phases per thread;
at every phase boundary the wall time (``perf_counter``), the thread's CPU time
(``thread_time``), the SQL statements Django's debug cursor logged on the counted connection
and the Redis replies read (``redis`` connections' ``read_response``, one per round trip) since
the last boundary are credited to the phase on top of the stack. So every figure is exclusive
(a nested phase's share is not its parent's) and the phases add up to the request: their SQL
to ``X-Storm-SQL``, their wall time to ``X-Storm-Time-Ms``. The answer comes back in
``X-Storm-Phases`` (JSON).

The phases are marked from the site side, never inside ``wechat_oauth``: the guarded site's
functions are wrapped once per process (:func:`install`: ``flow.begin_login``, the guard's
``DatabaseGuard`` methods, ``CacheFront``'s, ``WeChatClient.userinfo``, ``flow._link``/
``authenticated``/``log_in``/``_continue``), the naive views mark theirs with :func:`phase`,
``SessionMiddleware.process_response`` (the session save) is wrapped for both, and
:class:`ViewMarkMiddleware` (innermost) tells the middleware on the way in, the view and the
way out apart.

The load generator's side (:func:`run_profile`): plain logins through each web kind (mp, open)
at the storm's upstream latency, ABBA between the sites, the callback with ``X-Storm-Profile``
and ``X-Storm-Count-SQL``; per site, kind and phase: wall and CPU ms (p50/p99), SQL statements
(and which), Redis round trips. Three sites: the naive one, the guarded one, and between them
the *floor*: the naive callback asked (``X-Storm-Floor``) to exchange its code inside the bare
fence (bench/storm/naive/models.py: a row inserted in a transaction before the call, the
answer written and committed after it), all that exactly-once needs. :func:`difference` puts
the guarded callback's extra time into the floor's share and what is above it, phase by
phase; :func:`rst` writes the docs' table (docs/benchmarks/phases.inc).
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from bench.rst import list_table, write_include


def meta_key(header: str) -> str:
    """The ``request.META`` key of a request header: ``X-Storm-Profile`` -> ``HTTP_X_STORM_PROFILE``."""
    return "HTTP_" + header.upper().replace("-", "_")


#: Request header asking for the profile, its META key; the response header carrying it.
PROFILE_HEADER = "X-Storm-Profile"
PROFILE_META = meta_key(PROFILE_HEADER)
PHASES_HEADER = "X-Storm-Phases"

#: Request header asking the naive site's callback for the bare fence (the floor: the code's
#: row inserted before the call, its answer written and committed after it), its META key.
FLOOR_HEADER = "X-Storm-Floor"
FLOOR_META = meta_key(FLOOR_HEADER)

#: Every phase, in the order of a callback, and what it covers.
PHASES: dict[str, str] = {
    "request": "middleware on the way in (sessions, common, auth; the guarded site's "
    "WeChatOAuthMiddleware), URL resolution",
    "connect": "a new database connection (Django's default CONN_MAX_AGE 0: one per request, "
    "opened by its first statement, wherever that is)",
    "state_check": "the state verified (guarded: signed state, binding cookie, the session "
    "read; naive: the state popped from the session): the session's SELECT",
    "redis_front": "the Redis front's commands (guarded: the ENTER script before the claim, "
    "the PUBLISH script on commit)",
    "fence_claim": "the claim's transaction up to the call: BEGIN, the INSERT of the "
    "OAuthCodeUse row (setting the wait bounds; the floor's: of its bare row)",
    "code_budget": "the code budget's admission (BUDGET_CACHE_ALIAS: the storm's locmem default cache)",
    "upstream": "the code exchange (sns/oauth2/access_token), the HTTP client included",
    "profile_fetch": "the profile (sns/userinfo; snsapi_userinfo/snsapi_login only)",
    "outcome_commit": "the outcome written (UPDATE of the row) and the COMMIT; signals, log",
    "identity": "the account and user (guarded: link_account + authenticate; naive: get_or_create)",
    "login_session": "login() (new session key, last_login) and the session save of SessionMiddleware",
    "view": "the rest of the view (app lookup, callback parsing, exchange arguments, adapter checks)",
    "response": "the redirect built, middleware on the way out (the session save apart)",
}

_local = threading.local()


def _redis_calls() -> int:
    return int(getattr(_local, "redis", 0))


class Profiler:
    """The phases of one request on this thread (see the module docstring)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.stack = ["request"]
        #: phase -> [wall s, cpu s, statements, redis round trips]
        self.totals: dict[str, list[float]] = {}
        #: phase -> the statements' shapes, in order
        self.statements: dict[str, list[str]] = {}
        self._last = (time.perf_counter(), time.thread_time(), len(connection.queries_log), _redis_calls())

    def _credit(self) -> None:
        now = (time.perf_counter(), time.thread_time(), len(self.connection.queries_log), _redis_calls())
        wall, cpu, first, redis = self._last
        phase = self.stack[-1]
        acc = self.totals.setdefault(phase, [0.0, 0.0, 0, 0])
        acc[0] += now[0] - wall
        acc[1] += now[1] - cpu
        acc[2] += now[2] - first
        acc[3] += now[3] - redis
        if now[2] > first:
            log = list(self.connection.queries_log)[first : now[2]]
            self.statements.setdefault(phase, []).extend(shape(q["sql"]) for q in log)
        self._last = now

    def push(self, name: str) -> None:
        self._credit()
        self.stack.append(name)

    def pop(self) -> None:
        self._credit()
        if len(self.stack) > 1:
            self.stack.pop()

    def switch(self, name: str) -> None:
        """The phase on top of the stack goes on as ``name`` (the same frame, a new phase)."""
        self._credit()
        self.stack[-1] = name

    def finish(self) -> str:
        self._credit()
        return json.dumps(
            {
                "phases": {
                    name: [round(w * 1000, 3), round(c * 1000, 3), int(s), int(r)]
                    for name, (w, c, s, r) in self.totals.items()
                },
                "statements": self.statements,
            },
            separators=(",", ":"),
        )


def start(connection: Any) -> Profiler:
    profiler = Profiler(connection)
    _local.profiler = profiler
    return profiler


def stop() -> None:
    _local.profiler = None


def current() -> Profiler | None:
    return getattr(_local, "profiler", None)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Mark ``name`` around a block (nothing when the request is not profiled)."""
    profiler = current()
    if profiler is None:
        yield
        return
    profiler.push(name)
    try:
        yield
    finally:
        profiler.pop()


def switch(name: str) -> None:
    profiler = current()
    if profiler is not None:
        profiler.switch(name)


_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"?([A-Za-z0-9_]+)"?', re.IGNORECASE)


def shape(sql: str) -> str:
    """What a statement is, without its values: ``INSERT wechat_oauth_oauthcodeuse``,
    ``SELECT set_config``, ``BEGIN``, ``SAVEPOINT``..."""
    text = sql.strip()
    verb = text.split(None, 1)[0].upper() if text else "?"
    if verb == "RELEASE":
        return "RELEASE SAVEPOINT"
    if verb == "ROLLBACK" and "SAVEPOINT" in text.upper():
        return "ROLLBACK TO SAVEPOINT"
    if verb == "SELECT" and "set_config" in text:
        return "SELECT set_config"
    if verb in ("SELECT", "INSERT", "UPDATE", "DELETE"):
        match = _TABLE.search(text)
        return f"{verb} {match.group(1)}" if match else verb
    return verb


# -- the marks, from the site side ---------------------------------------------------------------


def _wrap(owner: Any, name: str, label: str, *, after: str | None = None) -> None:
    """Replace ``owner.name`` with a wrapper marking ``label`` around it (and, with ``after``,
    switching the caller's phase to ``after`` once it returns)."""
    original = getattr(owner, name)
    if getattr(original, "_storm_phase", None):
        return

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        profiler = current()
        if profiler is None:
            return original(*args, **kwargs)
        profiler.push(label)
        try:
            return original(*args, **kwargs)
        finally:
            profiler.pop()
            if after is not None:
                profiler.switch(after)

    wrapper._storm_phase = label  # type: ignore[attr-defined]
    if isinstance(inspect.getattr_static(owner, name), staticmethod):
        setattr(owner, name, staticmethod(wrapper))
    else:
        setattr(owner, name, wrapper)


def _count_redis_replies() -> None:
    from redis.connection import AbstractConnection

    original = AbstractConnection.read_response
    if getattr(original, "_storm_phase", None):
        return

    @functools.wraps(original)
    def read_response(self: Any, *args: Any, **kwargs: Any) -> Any:
        if current() is not None:
            _local.redis = _redis_calls() + 1
        return original(self, *args, **kwargs)

    read_response._storm_phase = "redis"  # type: ignore[attr-defined]
    AbstractConnection.read_response = read_response  # type: ignore[method-assign]


_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Wrap what marks the phases, once per process (both sites: the session save and the
    Redis reply counter; the guarded site, when wechat_oauth is installed: its functions)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        _installed = True
        from django.apps import apps
        from django.contrib.sessions.middleware import SessionMiddleware
        from django.db.backends.base.base import BaseDatabaseWrapper

        _wrap(SessionMiddleware, "process_response", "login_session")
        _wrap(BaseDatabaseWrapper, "connect", "connect")
        try:
            _count_redis_replies()
        except ImportError:  # the naive site needs no Redis
            pass
        if not apps.is_installed("wechat_oauth"):
            return
        from wechat_oauth import client, flow
        from wechat_oauth.guard import cache, database

        _wrap(flow, "begin_login", "state_check")
        for method in ("enter", "wait", "woken", "publish", "release"):
            _wrap(cache.CacheFront, method, "redis_front")
        _wrap(database.DatabaseGuard, "_claim_and_exchange", "fence_claim")
        _wrap(database.DatabaseGuard, "_admit", "code_budget")
        # After the call, the claim's frame goes on writing the outcome and committing.
        _wrap(database.DatabaseGuard, "_call_upstream", "upstream", after="outcome_commit")
        _wrap(client.WeChatClient, "userinfo", "profile_fetch")
        _wrap(flow, "_link", "identity")
        _wrap(flow, "authenticated", "identity")
        _wrap(flow, "log_in", "login_session")
        _wrap(flow, "_continue", "response")


class ViewMarkMiddleware:
    """Innermost middleware of both storm sites: what runs inside it is the view's, what runs
    after it returns the response's (nothing when the request is not profiled)."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        switch("view")
        try:
            return self.get_response(request)
        finally:
            switch("response")


# -- the load generator's side -----------------------------------------------------------------

#: The kinds the profile runs (the callback flows; the Mini Program and WeCom have their own).
PROFILE_KINDS = ("mp", "open")
#: The profile's sites: the floor is the naive site's callback with the bare fence.
SITE_ORDER = ("naive", "floor", "guarded")


def profile_login(site: Any, kind: str, index: int, *, floor: bool = False) -> dict[str, Any]:
    """One plain login of ``kind`` on ``site`` (a SiteHandle), its callback profiled: the
    sample (phases, statements, the request's own SQL count and time), or the failure.
    ``floor``: the naive site's callback with the bare fence (``FLOOR_HEADER``)."""
    from urllib.parse import urlsplit

    from bench.storm.apps import new_person
    from bench.storm.patterns import NEXT, Context, Login
    from bench.storm.serverside import COUNT_HEADER, CPU_HEADER, SQL_HEADER, TIME_HEADER

    login = Login(site.name, "profile", index, new_person(site.name, "profile", index), kind)
    ctx = Context(site, True, login)
    browser = ctx.browser()
    browser.session.headers[PROFILE_HEADER] = "1"
    browser.session.headers[COUNT_HEADER] = "1"
    if floor:
        browser.session.headers[FLOOR_HEADER] = "1"
    try:
        callback_url = ctx.authorize(browser, ctx.start(browser))
        started = time.perf_counter()
        response = browser.session.get(callback_url, allow_redirects=False, timeout=60)
        elapsed = (time.perf_counter() - started) * 1000
        location = response.headers.get("Location", "")
        if response.status_code != 302 or urlsplit(location).path != NEXT:
            return {"failed": f"callback answered {response.status_code} {location[:80]}"}
        user = browser.whoami(ctx.home)
        if user not in login.expected_users():
            return {"failed": f"/whoami/ named {user!r}"}
        profile = json.loads(response.headers[PHASES_HEADER])
        return {
            **profile,
            "callback_ms": round(elapsed, 3),
            "server_ms": float(response.headers[TIME_HEADER]),
            "server_cpu_ms": float(response.headers[CPU_HEADER]),
            "request_sql": int(response.headers[SQL_HEADER]),
        }
    except Exception as exc:  # a run never crashes on one login
        return {"failed": f"load generator: {type(exc).__name__}: {exc}"}
    finally:
        browser.close()


def collect(
    handles: dict[str, Any], kind: str, count: int, *, concurrency: int, first_index: int = 0
) -> dict[str, list[dict[str, Any]]]:
    """``count`` profiled logins per site, in blocks ordered naive, floor, guarded, then
    guarded, floor, naive (drift of a shared machine cancels out). ``handles``: site name to
    SiteHandle; the floor's is the naive site's."""
    block = max(4 * concurrency, 8)
    samples: dict[str, list[dict[str, Any]]] = {site: [] for site in handles}
    done = dict.fromkeys(handles, 0)
    cycle = 0
    order = [site for site in SITE_ORDER if site in handles]
    while min(done.values()) < count:
        for site in order if cycle % 2 == 0 else order[::-1]:
            n = min(block, count - done[site])
            if n <= 0:
                continue
            indexes = range(first_index + done[site], first_index + done[site] + n)
            with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"profile-{site}") as pool:
                samples[site].extend(
                    pool.map(
                        lambda i, s=site: profile_login(handles[s], kind, i, floor=s == "floor"), indexes
                    )
                )
            done[site] += n
        cycle += 1
    return samples


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[rank], 2)


def _counts(values: list[int]) -> dict[str, Any]:
    counter = Counter(values)
    return {
        "median": _percentile([float(v) for v in values], 50),
        "min": min(values),
        "max": max(values),
        **({"histogram": {str(k): n for k, n in sorted(counter.items())}} if len(counter) > 1 else {}),
    }


def summarise(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Per phase: wall and CPU ms (p50/p99), SQL statements (median, range; the most common
    sequence of them), Redis round trips; and the request's totals."""
    ok = [s for s in samples if "failed" not in s]
    out: dict[str, Any] = {
        "logins": len(samples),
        "failed": len(samples) - len(ok),
        "failures": sorted({s["failed"] for s in samples if "failed" in s})[:5],
    }
    phases: dict[str, Any] = {}
    for name in PHASES:
        rows = [s["phases"].get(name, [0.0, 0.0, 0, 0]) for s in ok]
        if not any(s["phases"].get(name) for s in ok):
            continue
        sequences = Counter(tuple(s["statements"].get(name, [])) for s in ok)
        phases[name] = {
            "wall_ms": {
                "p50": _percentile([r[0] for r in rows], 50),
                "p99": _percentile([r[0] for r in rows], 99),
            },
            "cpu_ms": {
                "p50": _percentile([r[1] for r in rows], 50),
                "p99": _percentile([r[1] for r in rows], 99),
            },
            "sql": _counts([int(r[2]) for r in rows]),
            "redis_round_trips": _counts([int(r[3]) for r in rows]),
            "statements": list(sequences.most_common(1)[0][0]) if sequences else [],
        }
    out["phases"] = phases
    out["request"] = {
        "callback_ms": {
            key: _percentile([s["callback_ms"] for s in ok], q) for key, q in (("p50", 50), ("p99", 99))
        },
        "server_ms": {
            key: _percentile([s["server_ms"] for s in ok], q) for key, q in (("p50", 50), ("p99", 99))
        },
        "server_cpu_ms": {
            key: _percentile([s["server_cpu_ms"] for s in ok], q) for key, q in (("p50", 50), ("p99", 99))
        },
        "sql": _counts([s["request_sql"] for s in ok]) if ok else {},
        "phases_sum_ms_p50": _percentile([sum(r[0] for r in s["phases"].values()) for s in ok], 50),
    }
    out["phase_sql_adds_up"] = all(
        sum(int(r[2]) for r in s["phases"].values()) == s["request_sql"] for s in ok
    )
    return out


def run_profile(storm: Any) -> dict[str, Any]:
    """The profile section of the storm: plain logins per web kind of the run (mp, open), both
    sites, at the storm's upstream latency and concurrency."""
    args = storm.args
    kinds = [kind for kind in storm.kinds if kind in PROFILE_KINDS]
    count = args.profile_logins or (24 if args.quick else 120)
    out: dict[str, Any] = {
        "pattern": "plain",
        "upstream_latency_ms": round(args.latency * 1000),
        "concurrency": args.concurrency,
        "logins_per_site_and_kind": count,
        "kinds": kinds,
        "phases": PHASES,
        "needed_for_the_guarantee": NEEDED,
    }
    if not kinds:
        out["not_run"] = "needs a web kind (--kind mp or open)"
        return out
    handles = dict(storm.handles)
    if "naive" in handles:
        handles["floor"] = handles["naive"]
    for kind in kinds:
        samples = collect(handles, kind, count, concurrency=args.concurrency, first_index=60_000)
        out[kind] = {site: summarise(samples[site]) for site in SITE_ORDER if site in samples}
        storm.progress("profile", kind, {site: out[kind][site]["failed"] for site in out[kind]}, "failed")
        out[kind]["difference"] = difference(out[kind])
    return out


def difference(sites: dict[str, Any]) -> dict[str, Any]:
    """Where the guarded callback's extra time goes: its server p50 against the naive one's
    and the floor's (the naive callback with the bare fence), and per phase, the guarded p50
    above the floor's (wall ms, SQL statements)."""
    if not {"naive", "floor", "guarded"} <= set(sites):
        return {}
    p50 = {site: sites[site]["request"]["server_ms"]["p50"] for site in ("naive", "floor", "guarded")}
    if None in p50.values():
        return {}
    above: dict[str, Any] = {}
    for name in PHASES:
        guarded, floor = sites["guarded"]["phases"].get(name), sites["floor"]["phases"].get(name)
        if guarded is None and floor is None:
            continue
        above[name] = {
            "wall_ms": round(_p50(guarded) - _p50(floor), 2),
            "sql": _median_sql(guarded) - _median_sql(floor),
        }
    return {
        "server_p50_ms": p50,
        "floor_over_naive": round(p50["floor"] / p50["naive"], 3),
        "guarded_over_naive": round(p50["guarded"] / p50["naive"], 3),
        "guarded_over_floor": round(p50["guarded"] / p50["floor"], 3),
        "floor_ms": round(p50["floor"] - p50["naive"], 2),
        "above_floor_ms": round(p50["guarded"] - p50["floor"], 2),
        "above_floor_by_phase": above,
    }


def _p50(figures: dict[str, Any] | None) -> float:
    return float(figures["wall_ms"]["p50"] or 0.0) if figures else 0.0


def _median_sql(figures: dict[str, Any] | None) -> float:
    return float(figures["sql"]["median"] or 0) if figures else 0.0


# -- what each phase's extra statements and round trips are for ----------------------------------

#: Per phase: the guarded flow's statements / round trips beyond the naive one, and whether the
#: exactly-once guarantee needs them (one line each).
NEEDED: dict[str, str] = {
    "request": "no extra work for the guarantee (WeChatOAuthMiddleware only looks at the URL)",
    "connect": "the same one connection as naive's (the guarded site's first statement is "
    "its claim's, the naive one's its session read)",
    "state_check": "no statement (the guarded login view writes no session, so there is "
    "none to read; the naive one's session SELECT sits here); signed state and binding "
    "check, CPU only: needed (the login's identity and its browser)",
    "redis_front": "ENTER script: not needed (a fast path for late duplicates; the row "
    "decides); PUBLISH script on commit: not needed (wakes waiters early; they would find the "
    "row)",
    "fence_claim": "BEGIN + INSERT: needed (the unique row is the fence, uncommitted while "
    "WeChat answers); the INSERT also sets the wait bounds (a twin's wait, a stuck holder: "
    "set_config in the same statement, no round trip of their own)",
    "code_budget": "get/add/incr of the budget: not needed for exactly-once (bounds cost "
    "of made-up codes); no SQL, no Redis here (locmem)",
    "upstream": "the same one exchange as naive: needed",
    "profile_fetch": "the same userinfo call as naive, inside the claim so duplicates replay "
    "it: needed where the duplicates must see the profile",
    "outcome_commit": "UPDATE + COMMIT: needed (the stored outcome every duplicate "
    "replays; the commit ends the fence's wait)",
    "identity": "SELECT account (the identity's and its person's others, one statement), "
    "BEGIN/COMMIT, INSERT user, INSERT union, INSERT account: one user per person across the "
    "apps, not exactly-once (naive keys its user by unionid: SELECT, then BEGIN/INSERT/COMMIT); "
    "nothing read before the INSERTs (the person's row and the default CREATE_USER's "
    "wx_<openid> are new unless their unique keys say otherwise, and the link then tries "
    "again, reading)",
    "login_session": "login() and the session save, as naive minus its old session's "
    "SELECT + DELETE (there is none); the identity in the session: no statement",
    "view": "no statement; CPU of parsing and the exchange arguments (fingerprint, budget keys)",
    "response": "no statement; the redirect",
}


# -- the docs' table ------------------------------------------------------------------------------


def _cell(figures: dict[str, Any] | None) -> list[str]:
    if not figures:
        return ["—", "—", "—", "—"]
    wall, cpu = figures["wall_ms"], figures["cpu_ms"]
    return [
        f"{wall['p50']:.2f} / {wall['p99']:.2f}",
        f"{cpu['p50']:.2f}",
        _fmt_count(figures["sql"]),
        _fmt_count(figures["redis_round_trips"]),
    ]


def _fmt_count(counts: dict[str, Any]) -> str:
    median = counts["median"]
    text = f"{median:g}" if median is not None else "—"
    if counts["min"] != counts["max"]:
        text += f" ({counts['min']}-{counts['max']})"
    return text


def rst(report: dict[str, Any]) -> str:
    """docs/benchmarks/phases.inc from the storm's JSON: one list-table, the run's date and
    machine above it, what the floor costs and what is above it below it."""
    profile = report["profile"]
    machine = report.get("machine", {})
    lines = [
        f"Run of {report.get('when', '?')[:10]} (``{report.get('command', 'python -m bench.storm')}``; "
        f"{machine.get('cpus', '?')} CPUs shared with other work, load average "
        f"{report.get('loadavg_at_start', ['?'])[0]} at the start; Python {machine.get('python', '?')}, "
        f"Django {machine.get('django', '?')}, "
        f"PostgreSQL {machine.get('databases', {}).get('postgres', '?')}, "
        f"Redis {machine.get('redis', '?')}); plain logins, "
        f"{profile['upstream_latency_ms']} ms upstream, {profile['concurrency']} browsers, "
        f"{profile['logins_per_site_and_kind']} logins per site and kind. Wall ms p50 / p99, "
        "CPU ms p50 (the worker thread), SQL statements and Redis round trips (median; "
        "range when they vary). *Floor*: the naive callback with the bare fence (its code's "
        "row inserted in a transaction before the call, the answer written and committed "
        "after it: what exactly-once needs, nothing more); *above the floor*: guarded p50 "
        "minus floor p50, ms (statements):",
        "",
    ]
    header = [
        "Kind",
        "Phase",
        "Guarded wall",
        "CPU",
        "SQL",
        "Redis",
        "Floor wall",
        "Naive wall",
        "CPU",
        "SQL",
        "Above the floor",
        "Needed for the guarantee?",
    ]
    rows = [header]
    for kind in profile["kinds"]:
        sites = profile[kind]
        above = sites.get("difference", {}).get("above_floor_by_phase", {})
        for name in PHASES:
            guarded = sites.get("guarded", {}).get("phases", {}).get(name)
            naive = sites.get("naive", {}).get("phases", {}).get(name)
            floor = sites.get("floor", {}).get("phases", {}).get(name)
            if guarded is None and naive is None:
                continue
            statements = ", ".join(guarded["statements"]) if guarded and guarded["statements"] else ""
            needed = NEEDED[name] + (f" [{statements}]" if statements else "")
            rows.append(
                [
                    kind,
                    name.replace("_", " "),
                    *_cell(guarded),
                    _cell(floor)[0],
                    *_cell(naive)[:3],
                    _above(above.get(name)),
                    needed,
                ]
            )
        totals = {site: sites.get(site, {}).get("request", {}) for site in ("guarded", "floor", "naive")}
        gap = sites.get("difference", {})
        rows.append(
            [
                kind,
                "**whole callback** (server; client p50)",
                _total(totals["guarded"]),
                f"{totals['guarded'].get('server_cpu_ms', {}).get('p50', 0):.2f}",
                _fmt_count(totals["guarded"]["sql"]) if totals["guarded"].get("sql") else "—",
                "",
                _total(totals["floor"]),
                _total(totals["naive"]),
                f"{totals['naive'].get('server_cpu_ms', {}).get('p50', 0):.2f}",
                _fmt_count(totals["naive"]["sql"]) if totals["naive"].get("sql") else "—",
                f"**{gap['above_floor_ms']:.2f}**" if gap else "—",
                "phases add up to the request's SQL count: "
                + ("yes" if all(sites[s]["phase_sql_adds_up"] for s in sites if s in SITE_ORDER) else "NO"),
            ]
        )
    lines += list_table(rows, widths=(6, 11, 13, 7, 5, 5, 13, 13, 7, 5, 10, 25))
    lines.append("")
    for kind in profile["kinds"]:
        gap = profile[kind].get("difference")
        if not gap:
            continue
        p50, times = gap["server_p50_ms"], "\N{MULTIPLICATION SIGN}"
        lines.append(
            f"* {kind}: server p50 naive {p50['naive']:.2f} ms; the floor {p50['floor']:.2f} ms "
            f"(**{gap['floor_over_naive']:.3f}{times}** naive, {gap['floor_ms']:+.2f} ms); guarded "
            f"{p50['guarded']:.2f} ms (**{gap['guarded_over_naive']:.3f}{times}** naive, "
            f"{gap['guarded_over_floor']:.3f}{times} the floor, {gap['above_floor_ms']:+.2f} ms above it)."
        )
    return "\n".join(lines) + "\n"


def _above(figures: dict[str, Any] | None) -> str:
    if not figures:
        return "—"
    sql = figures["sql"]
    return f"{figures['wall_ms']:+.2f} ({sql:+g})" if sql else f"{figures['wall_ms']:+.2f}"


def _total(figures: dict[str, Any]) -> str:
    server, client = figures.get("server_ms", {}), figures.get("callback_ms", {})
    if not server:
        return "—"
    return f"{server['p50']:.2f} / {server['p99']:.2f}; {client['p50']:.2f}"


def _with_profile(reports: list[dict[str, Any]]) -> str | None:
    """The table of the first run that has a profile (its database section's figures)."""
    for report in reports:
        for section in report.get("databases", {}).values():
            if isinstance(section, dict) and "profile" in section:
                return rst({**report, **section})
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.storm.phases [storm.json] [--out phases.inc]``: the docs' table from a
    run (by default bench/results/storm.json)."""
    return write_include(argv, ("storm.json",), "phases.inc", _with_profile)


if __name__ == "__main__":
    raise SystemExit(main())
