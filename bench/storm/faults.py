"""Faults as extra scenarios, on the guarded site (and the naive one where it applies), with
logins through the Official Account app (kind ``mp``).

Each returns figures and never raises: a scenario that cannot run says why. After each: what
users saw (status of the response they see), whether any 500 reached a user, and exchanges per
code from the fake's counters (exactly 1 unless the holder of an exchange was killed or its
transaction cut: then a second exchange, answered "code been used", is counted apart as
``second_exchange_after_holder_died_ended_spent``).

* ``worker_sigkill``: the holder of an exchange (found through the database, see
  :data:`HOLDER_LOOKUP`: PostgreSQL's pg_stat_activity, MariaDB's open InnoDB transactions and
  the worker owning the connection's client port, SQLite's write lock in /proc/locks) is
  SIGKILLed while WeChat is answering (a 2 s delay fault on that code), with three duplicates
  of the callback waiting on instance B; once with the Redis front up, once with Redis
  stopped (database path only).
* ``redis_restart``: Redis stopped mid-storm (parallel_5 duplicates) and restarted empty.
* ``upstream_errcode_-1``, ``upstream_http_503``, ``upstream_timeout``: per-code faults of the
  fake (errcode -1; an HTML 503; an answer 1 s later than the client's 5 s read timeout),
  under abort-and-resend, on both sites.
* ``database_restart``: the database server stopped mid-storm for 2 s and started again
  (PostgreSQL: ``pg_ctl stop -m fast``; MariaDB: SIGTERM, its normal shutdown; both end every
  session and roll open transactions back), under plain and abort-and-resend logins. The
  machine's servers are shared with other work, so this runs on a private one
  (:class:`~bench.storm.services.PrivatePostgres`: initdb, or
  :class:`~bench.storm.services.PrivateMariaDB`: mariadb-install-db, into a temporary
  directory) with one extra guarded instance on it (2 workers; the stack's fake WeChat and
  Redis, which stays up). One login's exchange is held in flight across the stop (a 2.5 s
  delay fault on its code, a twin of its callback waiting behind it) and its callback re-sent
  once the database is back. Figures per phase (before / down / after), whether the 503s were
  the app's database page, the time to the first login after the restart, and the rows of the
  private database (none left ``in_flight``). SQLite has no server: skipped, saying so.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, NamedTuple

from bench.storm.apps import new_person
from bench.storm.browser import Browser, Hit, run_together, with_query
from bench.storm.databases import Database
from bench.storm.patterns import (
    RESEND_DELAY,
    Context,
    Login,
    SiteHandle,
    _last_started,
    conclude,
    run_login,
)
from bench.storm.services import (
    Instance,
    PrivateMariaDB,
    PrivatePostgres,
    finish_migration,
    migrate,
)
from bench.storm.stats import ms_summary
from wechat_oauth.hashing import code_hash
from wechat_oauth.testing.wechat_client import resend_params, send_unread

READ_TIMEOUT = 5.0  # the guarded app's default TIMEOUT read part; the naive site uses the same


def code_rows(db: Database, codes: list[str], secret_key: str) -> dict[str, dict[str, Any]]:
    """OAuthCodeUse facts of ``codes`` in the guarded database of ``db``."""
    hashes = {code_hash(code, secret=secret_key): code for code in codes}
    rows: list[tuple[Any, ...]] = []
    batch = 500  # bind parameters per statement (SQLite's limit is 999 on old versions)
    keys = list(hashes)
    with db.connect("guarded") as conn:
        for start in range(0, len(keys), batch):
            part = keys[start : start + batch]
            rows += db.query(
                conn,
                "SELECT code_hash, status, error, errcode, duplicates, exchange_ms"
                " FROM wechat_oauth_oauthcodeuse WHERE code_hash IN"
                f" ({', '.join(['%s'] * len(part))})",
                part,
            )
    return {
        hashes[row[0]]: {
            "status": row[1],
            "error": row[2],
            "errcode": row[3],
            "duplicates_counted_in_db": row[4],
            "exchange_ms": row[5],
        }
        for row in rows
    }


def duplicates_by_code(db: Database, codes: list[str], secret_key: str) -> dict[str, int]:
    """OAuthCodeUse.duplicates (duplicates its database path answered) of each code."""
    return {code: row["duplicates_counted_in_db"] for code, row in code_rows(db, codes, secret_key).items()}


def _code_fate(db: Database, fake: Any, code: str, secret_key: str) -> dict[str, Any]:
    """What became of one code: its exchanges (the fake's count) and its stored outcome."""
    row = code_rows(db, [code], secret_key).get(code, {})
    exchanges = fake.exchange_calls(code)
    return {
        "exchanges_of_code": exchanges,
        "second_exchange_after_holder_died_ended_spent": int(exchanges == 2 and row.get("error") == "spent"),
        "stored_outcome": f"{row.get('status')}:{row.get('error')}",
    }


def _rows_by_status(db: Database) -> dict[str, int]:
    """OAuthCodeUse rows of the guarded database of ``db`` by status. A row is committed only
    with its outcome, so once the faults are over none may be ``in_flight``."""
    return {
        str(status): int(n)
        for status, n in db.rows(
            "guarded", "SELECT status, count(*) FROM wechat_oauth_oauthcodeuse GROUP BY status"
        )
    }


def _seen(logins: list[Login]) -> dict[str, Any]:
    """What the users saw: statuses of the responses they see, 500s anywhere."""
    visible = Counter(str(hit.status or hit.error) for login in logins for hit in login.visible)
    every = Counter(str(hit.status or hit.error) for login in logins for hit in login.callbacks)
    return {
        "logins": len(logins),
        "logged_in": sum(not login.failed for login in logins),
        "restarted_then_logged_in": sum(login.outcome == "restarted" for login in logins),
        "visible_statuses": dict(visible),
        "all_callback_statuses": dict(every),
        "http_500_reached_a_user": sum(hit.status == 500 for login in logins for hit in login.callbacks),
        "visible_ms": ms_summary([hit.elapsed for login in logins for hit in login.visible]),
        "failure_reasons": dict(
            Counter(login.reason[:90] for login in logins if login.reason).most_common(3)
        ),
    }


def _exchanges(fake: Any, logins: list[Login]) -> dict[str, Any]:
    calls = fake.stats()["exchange_calls"]
    counts = [int(calls.get(code, 0)) for login in logins for code in login.codes]
    return {
        "codes": len(counts),
        "max": max(counts, default=0),
        "codes_exchanged_more_than_once": sum(count > 1 for count in counts),
        "codes_never_exchanged": sum(count == 0 for count in counts),
    }


# -- upstream faults --------------------------------------------------------------------------------


def _faulted_login(site: SiteHandle, fake: Any, index: int, fault: dict[str, Any], name: str) -> Login:
    """Abort-and-resend, with ``fault`` set on the fake for this login's code."""
    login = Login(site.name, name, index, new_person(site.name, name, index))
    ctx = Context(site, True, login)
    try:
        browser = ctx.browser()
        callback = ctx.authorize(browser, ctx.start(browser))
        fake.add_fault("access_token", code=login.codes[-1], times=None, **fault)
        ctx.abort(browser, ctx.at(callback, ctx.home))
        time.sleep(RESEND_DELAY)
        hit = ctx.callback(
            browser, with_query(ctx.at(callback, ctx.other), resend_params()), "re-sent callback"
        )
        conclude(login, partial(ctx.settle, browser, hit))
    except Exception as exc:
        login.outcome, login.reason = "failed", f"{type(exc).__name__}: {exc}"
    return login


UPSTREAM_FAULTS = {
    "upstream_errcode_-1": {"errcode": -1},
    "upstream_http_503": {"status": 503},
    "upstream_timeout": {"delay": READ_TIMEOUT + 1.0},
}


def upstream_fault(
    db: Database, sites: dict[str, SiteHandle], fake: Any, name: str, logins: int, secret_key: str
) -> dict[str, Any]:
    result: dict[str, Any] = {"fault": UPSTREAM_FAULTS[name]}
    for site_name, site in sites.items():
        with ThreadPoolExecutor(max_workers=logins) as pool:
            done = list(
                pool.map(
                    lambda i, s=site: _faulted_login(s, fake, i, UPSTREAM_FAULTS[name], name), range(logins)
                )
            )
        figures = {**_seen(done), "exchanges_per_code": _exchanges(fake, done)}
        if site_name == "guarded":
            rows = code_rows(db, [code for login in done for code in login.codes], secret_key)
            figures["stored_outcomes"] = dict(
                Counter(f"{row['status']}:{row['error']}" for row in rows.values())
            )
        result[site_name] = figures
    return result


# -- a worker killed while it holds an exchange ----------------------------------------------------

#: How each database names the worker that holds a claim.
HOLDER_LOOKUP = {
    "postgres": "pg_stat_activity: the one backend idle in a transaction, its application_name",
    "mariadb": "information_schema.INNODB_TRX + PROCESSLIST: the one connection with a running "
    "transaction and no statement, its client port owned by the worker (/proc)",
    "sqlite": "/proc/locks: the one process holding the database file's RESERVED (write) lock",
}


def _claim_holders(db: Database, workers: list[int], timeout: float = 3.0) -> list[int]:
    """The gunicorn workers (among ``workers``) that hold a claim on the guarded database, once
    there is exactly one (or, after ``timeout`` s, what was seen last)."""
    deadline = time.monotonic() + timeout
    with db.connect("guarded") as conn:
        while True:
            holders = db.claim_holders(conn, "guarded", workers)
            if len(holders) == 1 or time.monotonic() > deadline:
                return holders
            time.sleep(db.poll_interval)


def worker_kill_round(stack: Any, index: int, *, label: str) -> dict[str, Any]:
    site, fake = stack.handle("guarded"), stack.fake
    login = Login("guarded", label, index, new_person("guarded", label, index))
    ctx = Context(site, True, login)
    record: dict[str, Any] = {}
    browser = ctx.browser()
    callback = ctx.authorize(browser, ctx.start(browser))
    code = login.codes[-1]
    fake.add_fault("access_token", code=code, delay=2.0, times=1)
    instances = stack.instances["guarded"]
    # The holder: WeChat's first, abandoned try, sent and left open unread, from the same
    # browser as its duplicates (its cookies and User-Agent: the replay is only theirs).
    holder_socket = send_unread(ctx.at(callback, instances[0].url), browser.session.cookies, timeout=30)
    try:
        workers = {p: i.name for i in instances for p in i.worker_pids()}
        holders = _claim_holders(stack.db, list(workers))
        if len(holders) != 1:
            record["not_run"] = f"not one holder found ({HOLDER_LOOKUP[stack.db.kind]}): workers {holders}"
            return record
        pid = holders[0]
        # The duplicates go to instance B: a connection the killed worker had accepted would
        # die with it, which says nothing about the app.
        tabs = [browser.copy() for _ in range(3)]
        results: list[Any] = []
        runner = threading.Thread(
            target=lambda: results.extend(
                run_together(
                    [
                        partial(ctx.callback, tab, ctx.at(callback, instances[1].url), "duplicate")
                        for tab in tabs
                    ]
                )
            )
        )
        runner.start()
        time.sleep(0.3)  # the duplicates are waiting for the holder
        killed_at = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        runner.join(90)
        answered_after_kill = (
            max((hit.started + hit.elapsed for hit in results if isinstance(hit, Hit)), default=killed_at)
            - killed_at
        )
        tab, hit = _last_started(tabs, results)
        conclude(login, partial(ctx.settle, tab, hit))
        record.update(
            {
                "killed_worker": f"instance {workers[pid]}",
                "duplicates_answered_s_after_kill": round(answered_after_kill, 3),
                **_code_fate(stack.db, fake, code, stack.envs["guarded"]["STORM_SECRET_KEY"]),
                **_seen([login]),
            }
        )
        return record
    finally:
        with contextlib.suppress(OSError):
            holder_socket.close()
        for instance in instances:  # the master replaces the killed worker
            instance.wait_ready(30)


def worker_kill(stack: Any, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"holder_found_by": HOLDER_LOOKUP[stack.db.kind]}
    for label, redis_up in (("redis_front_up", True), ("redis_stopped_database_path", False)):
        if not redis_up:
            stack.redis.stop()
        try:
            out[label] = [worker_kill_round(stack, i, label=f"kill_{label}") for i in range(rounds)]
        except Exception as exc:
            out[label] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            if not redis_up:
                stack.redis.start()
    return out


# -- Redis stopped mid-storm ------------------------------------------------------------------------


def redis_restart(
    stack: Any, concurrency: int, *, down_for: float = 1.0, after: float = 1.0, tail: float = 2.0
) -> dict[str, Any]:
    """parallel_5 logins for ``after`` + ``down_for`` + ``tail`` seconds; Redis stopped at
    ``after`` and restarted (empty) ``down_for`` s later."""
    site = stack.handle("guarded")
    events: dict[str, Any] = {}
    log_before = len(stack.logs("guarded"))
    started = time.perf_counter()
    deadline = started + after + down_for + tail

    def bounce() -> None:
        time.sleep(after)
        events["keys_before_stop"] = stack.redis.dbsize()
        stack.redis.stop()
        events["stopped_at_s"] = round(time.perf_counter() - started, 3)
        time.sleep(down_for)
        stack.redis.start()
        events["restarted_empty_at_s"] = round(time.perf_counter() - started, 3)
        events["keys_after_restart"] = stack.redis.dbsize()

    def browser(first: int) -> list[Login]:
        done, index = [], first
        while time.perf_counter() < deadline:
            done.append(run_login(site, "redis_restart", index, count_sql=True, pattern="parallel_5"))
            index += concurrency
        return done

    bouncer = threading.Thread(target=bounce)
    bouncer.start()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        done = [login for logins in pool.map(browser, range(concurrency)) for login in logins]
    bouncer.join()
    events["storm_s"] = round(time.perf_counter() - started, 3)
    events["keys_at_end"] = stack.redis.dbsize()
    warnings = [line for line in stack.logs("guarded")[log_before:].splitlines() if "cache front" in line]
    return {
        **events,
        **_seen(done),
        "exchanges_per_code": _exchanges(stack.fake, done),
        "cache_front_warnings_logged": len(warnings),
        "note": "pattern parallel_5 (same instance); the app rate-limits its cache warnings "
        "to one a minute per worker",
    }


# -- the database server stopped mid-storm ---------------------------------------------------------

PrivateServer = PrivatePostgres | PrivateMariaDB

#: The message of the app's page for a database error (DATABASE_PAGE in wechat_oauth/responses.py).
DATABASE_PAGE_TEXT = "The site cannot complete logins right now."
RESTART_PATTERNS = ("plain", "abort_resend")
THINK_TIME = 0.05  # between two logins of one browser: a storm, not a busy loop of error pages


class Timed(NamedTuple):
    """A login and when it ran: which phase it belongs to depends on both ends."""

    started: float
    ended: float
    login: Login


def _keep_logging_in(site: SiteHandle, first: int, step: int, stop: threading.Event) -> list[Timed]:
    """One browser: plain and abort-and-resend logins in turn until ``stop``."""
    done, index = [], first
    while not stop.is_set():
        started = time.perf_counter()
        login = run_login(
            site, "database_restart", index, count_sql=False, pattern=RESTART_PATTERNS[(index // step) % 2]
        )
        done.append(Timed(started, time.perf_counter(), login))
        index += step
        stop.wait(THINK_TIME)
    return done


def _page(hit: Hit | None, stopped_at: float) -> dict[str, Any]:
    """What one cut request got: its status, whether it is the app's database page, when."""
    if hit is None:
        return {"status": "no answer"}
    return {
        "status": hit.status or hit.error,
        "database_page": DATABASE_PAGE_TEXT in hit.body,
        "answered_s_after_stop": round(hit.started + hit.elapsed - stopped_at, 3),
    }


class CutExchange:
    """A login whose exchange is in flight when the database stops: the holder sits in its
    claim transaction while WeChat takes ``delay`` s to answer (the code is spent on receipt), a
    twin of the callback waits behind it; once the database is back the callback is re-sent."""

    def __init__(self, site: SiteHandle, fake: Any, delay: float = 2.5) -> None:
        self.fake, self.delay = fake, delay
        self.login = Login(site.name, "database_restart_cut", 0, new_person(site.name, "cut", 0))
        self.ctx = Context(site, False, self.login)
        self.browser = self.ctx.browser()
        self.callback = ""
        self.sent_at = 0.0
        self.hits: dict[str, Hit] = {}
        self.threads: list[threading.Thread] = []

    def send(self) -> None:
        """The holder's callback, and its twin's 50 ms later (the code is claimed by then)."""
        authorize = self.ctx.start(self.browser)
        self.callback = self.ctx.at(self.ctx.authorize(self.browser, authorize), self.ctx.home)
        self.fake.add_fault("access_token", code=self.login.codes[-1], delay=self.delay, times=1)
        self.sent_at = time.perf_counter()
        for role in ("holder", "twin"):
            thread = threading.Thread(target=self._request, args=(role, self.browser.copy()))
            thread.start()
            self.threads.append(thread)
            time.sleep(0.05)

    def _request(self, role: str, tab: Browser) -> None:
        self.hits[role] = self.ctx.callback(tab, self.callback, role)

    def in_flight(self, db: Database) -> dict[str, int]:
        """Claims once the twin waits on the holder's row lock (it waits on Redis first, up to
        1 s), or at the latest 0.5 s before WeChat answers the holder."""
        deadline = self.sent_at + self.delay - 0.5
        with db.connect("guarded") as conn:
            while True:
                claims = db.claims(conn, "guarded")
                both = claims["waiting_on_a_claim"] and claims["holding_a_claim"]
                if both or time.perf_counter() > deadline:
                    return claims
                time.sleep(max(0.02, db.poll_interval))

    def resend(self) -> None:
        """The callback once more, as WeChat re-sends it, now that the database is back."""
        for thread in self.threads:
            thread.join(30)
        try:
            hit = self.ctx.callback(
                self.browser, with_query(self.callback, resend_params()), "re-sent after the restart"
            )
            conclude(self.login, partial(self.ctx.settle, self.browser, hit))
        except Exception as exc:
            self.login.outcome, self.login.reason = "failed", f"{type(exc).__name__}: {exc}"

    def figures(self, db: Database, secret_key: str, events: dict[str, Any]) -> dict[str, Any]:
        holder = self.hits.get("holder")
        return {
            "delay_fault_s": self.delay,
            "claims_at_stop": events["claims_at_stop"],
            "holder": _page(holder, events["stop"]),
            "twin": _page(self.hits.get("twin"), events["stop"]),
            "holder_answered_while_down": holder is not None
            and events["stop"] < holder.started + holder.elapsed < events["up"],
            **_code_fate(db, self.fake, self.login.codes[0], secret_key),
            "after_restart": {**_seen([self.login]), "outcome": self.login.outcome},
        }


def _bounce(
    server: PrivateServer,
    cut: CutExchange,
    events: dict[str, Any],
    *,
    before: float,
    down_for: float,
    after: float,
) -> None:
    """``before`` s of logins, then the cut login and the database server stopped, ``down_for``
    s later started again, the cut login's callback re-sent, ``after`` s more."""
    time.sleep(before)
    cut.send()
    events["claims_at_stop"] = cut.in_flight(server.database())
    events["stop"] = time.perf_counter()
    server.stop()
    events["stopped"] = time.perf_counter()
    time.sleep(down_for)
    events["start"] = time.perf_counter()
    server.start()
    events["up"] = time.perf_counter()
    cut.resend()
    time.sleep(max(0.0, events["up"] + after - time.perf_counter()))


def _phase(timed: Timed, events: dict[str, Any]) -> str:
    """before: ended before the stop began; after: started once the database accepted
    connections again; down: overlapped the outage."""
    if timed.ended < events["stop"]:
        return "before"
    return "after" if timed.started >= events["up"] else "down"


def _phase_figures(logins: list[Login], fake: Any) -> dict[str, Any]:
    """What users saw, and whether a 503 was the app's readable database page."""
    visible_503 = [hit for login in logins for hit in login.visible if hit.status == 503]
    return {
        **_seen(logins),
        "http_503_database_page": sum(DATABASE_PAGE_TEXT in hit.body for hit in visible_503),
        "http_503_other": sum(DATABASE_PAGE_TEXT not in hit.body for hit in visible_503),
        "exchanges_per_code": _exchanges(fake, logins),
    }


def _consistency(db: Database, fake: Any, logins: list[Login], secret_key: str) -> dict[str, Any]:
    """Rows of the private database and exchanges per code, after the storm."""
    by_status = _rows_by_status(db)
    codes = [code for login in logins for code in login.codes]
    calls = {code: int(n) for code, n in fake.stats()["exchange_calls"].items()}
    rows = code_rows(db, codes, secret_key)
    twice = [code for code in codes if calls.get(code, 0) > 1]
    spent = [code for code in twice if calls[code] == 2 and rows.get(code, {}).get("error") == "spent"]
    return {
        "rows_by_status": by_status,
        "rows_not_exchanged_or_failed": sum(
            n for status, n in by_status.items() if status not in ("exchanged", "failed")
        ),
        "rows_of_codes_never_exchanged": sum(calls.get(code, 0) == 0 for code in rows),
        "codes_exchanged_without_a_row": sum(calls.get(code, 0) > 0 and code not in rows for code in codes),
        "exchanges_per_code": _exchanges(fake, logins),
        "second_exchange_after_holder_died_ended_spent": len(spent),
        "exchanged_twice_otherwise": len(twice) - len(spent),
    }


def _server_log(text: str) -> dict[str, int]:
    lines = text.splitlines()
    return {
        "database_pages_logged": sum("login failed: database unavailable" in line for line in lines),
        "internal_server_errors": sum("Internal Server Error" in line for line in lines),
        "tracebacks": sum(line.startswith("Traceback") for line in lines),
    }


def _guarded_on(stack: Any, db: Database) -> dict[str, str]:
    """The environment of a guarded site on ``db`` (its database created and migrated), with
    the stack's fake WeChat and Redis."""
    db.create("guarded")
    env = stack.environment("guarded", db)
    finish_migration(migrate(env))
    return env


def _restart_storm(
    stack: Any,
    server: PrivateServer,
    instance: Instance,
    *,
    browsers: int,
    before: float,
    down_for: float,
    after: float,
) -> dict[str, Any]:
    """Browsers log in on ``instance`` throughout while :func:`_bounce` restarts ``server``."""
    db = server.database()
    site = SiteHandle("guarded", [instance.url] * 2, stack.fake.base_url)
    cut, stop = CutExchange(site, stack.fake), threading.Event()
    events: dict[str, Any] = {}
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=browsers) as pool:
        futures = [pool.submit(_keep_logging_in, site, i, browsers, stop) for i in range(browsers)]
        try:
            _bounce(server, cut, events, before=before, down_for=down_for, after=after)
        finally:
            stop.set()
        timed = [t for future in futures for t in future.result()]
    phases: dict[str, list[Login]] = {"before": [], "down": [], "after": []}
    for t in timed:
        phases[_phase(t, events)].append(t.login)
    logins = [t.login for t in timed]
    first_ok = min(
        (t.ended for t in timed if not t.login.failed and t.ended >= events["start"]), default=None
    )
    secret = instance.env["STORM_SECRET_KEY"]
    result: dict[str, Any] = {
        "stopped_at_s": round(events["stop"] - started, 3),
        "stopped_how": server.how_stopped,
        "stop_s": round(events["stopped"] - events["stop"], 3),
        "restarted_at_s": round(events["start"] - started, 3),
        "start_s": round(events["up"] - events["start"], 3),
        "down_s": round(events["up"] - events["stop"], 3),
        "recovery_s": round(first_ok - events["start"], 3) if first_ok is not None else None,
        "storm_s": round(time.perf_counter() - started, 3),
        "phases": {name: _phase_figures(done, stack.fake) for name, done in phases.items()},
        "cut_exchange": cut.figures(db, secret, events),
        "http_500_reached_a_user": sum(
            hit.status == 500 for login in [*logins, cut.login] for hit in login.callbacks
        ),
        "consistency": _consistency(db, stack.fake, [*logins, cut.login], secret),
        "server_log": _server_log(instance.log_text()),
        "note": (
            f"private {db.label} server, one guarded instance (2 workers) on it; browsers "
            "alternate plain and abort_resend logins. Phases: before = logins that ended "
            "before the stop began; down = logins overlapping the outage (until the "
            "restarted server accepted connections); after = logins started later. "
            "recovery_s: from the restart to the end of the first successful login"
        ),
    }
    return {"checks": _checks(result), **result}


def _checks(result: dict[str, Any]) -> dict[str, bool]:
    """The issue's requirements, each read off the figures."""
    phases, cut, consistency = result["phases"], result["cut_exchange"], result["consistency"]
    cut_503s = [cut[role] for role in ("holder", "twin") if cut[role]["status"] == 503]
    after = phases["after"]
    return {
        "no_500_reached_a_user": result["http_500_reached_a_user"] == 0,
        "every_503_was_the_database_page": all(page["database_page"] for page in cut_503s)
        and not any(phase["http_503_other"] for phase in phases.values()),
        "no_row_left_in_flight": consistency["rows_not_exchanged_or_failed"] == 0,
        "no_second_exchange_but_after_a_cut_holder": consistency["exchanged_twice_otherwise"] == 0,
        "every_login_after_the_restart_succeeded": 0 < after["logins"] == after["logged_in"]
        and cut["after_restart"]["outcome"] != "failed",
    }


#: Why a database has no restart scenario.
NO_RESTART = {"sqlite": "SQLite has no server to stop: the database is a file each worker opens itself"}


def private_server(stack: Any) -> PrivateServer | None:
    """A disposable server of the stack's kind of database (the shared one serves other work)."""
    log = stack.log_dir / f"{stack.db.kind}-private.log"
    if stack.db.kind == "postgres":
        return PrivatePostgres(log)
    if stack.db.kind == "mariadb":
        return PrivateMariaDB(log)
    return None


def database_restart(
    stack: Any, *, browsers: int, before: float, down_for: float = 2.0, after: float = 2.0
) -> dict[str, Any]:
    """The storm around a restart of the database server, on a private one (skipped if none
    can run, or the database has no server)."""
    server = private_server(stack)
    if server is None:
        return {"skipped": NO_RESTART[stack.db.kind]}
    reason = server.unavailable()
    if reason is not None:
        return {"skipped": reason}
    instance: Instance | None = None
    try:
        try:
            server.start()
        except RuntimeError as exc:
            return {"skipped": f"the private {stack.db.label} server did not start: {exc}"}
        instance = Instance(
            "guarded",
            "private",
            _guarded_on(stack, server.database()),
            stack.log_dir / "guarded-private.log",
            threads=stack.threads,
            server=stack.server,
        )
        instance.start()
        instance.wait_ready()
        return _restart_storm(
            stack, server, instance, browsers=browsers, before=before, down_for=down_for, after=after
        )
    finally:
        if instance is not None:
            instance.stop()
        server.remove()


def run_faults(stack: Any, *, quick: bool) -> dict[str, Any]:
    sites = {name: stack.handle(name) for name in ("guarded", "naive")}
    secret = stack.envs["guarded"]["STORM_SECRET_KEY"]
    out: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("worker_sigkill", lambda: worker_kill(stack, 1 if quick else 2)),
        ("redis_restart", lambda: redis_restart(stack, 6, tail=1.0 if quick else 3.0)),
        (
            "database_restart",
            lambda: database_restart(
                stack, browsers=3 if quick else 4, before=1.5 if quick else 3.0, after=2.0 if quick else 3.0
            ),
        ),
        *[
            (name, partial(upstream_fault, stack.db, sites, stack.fake, name, 4 if quick else 10, secret))
            for name in UPSTREAM_FAULTS
        ],
    ]
    for name, step in steps:
        started = time.perf_counter()
        try:
            out[name] = step()
        except Exception as exc:  # a fault scenario never crashes the run
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        if isinstance(out[name], dict):
            out[name]["scenario_s"] = round(time.perf_counter() - started, 2)
    try:
        out["guarded_rows_after_faults"] = _rows_by_status(stack.db)
    except Exception as exc:
        out["guarded_rows_after_faults"] = {"error": f"{type(exc).__name__}: {exc}"}
    return out
