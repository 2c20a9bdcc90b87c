"""Faults as extra scenarios, on the guarded site (and the naive one where it applies).

Each returns figures and never raises: a scenario that cannot run says why. After each: what
users saw (status of the response they see), whether any 500 reached a user, and exchanges per
code from the fake's counters (exactly 1 unless the holder of an exchange was killed: then a
second exchange, answered "code been used", is counted apart as
``second_exchange_after_holder_died_ended_spent``).

* ``worker_sigkill``: the holder of an exchange (found in pg_stat_activity: the one backend
  idle in its claim transaction, whose application_name names its gunicorn worker) is
  SIGKILLed while WeChat is answering (a 2 s delay fault on that code), with three duplicates
  of the callback waiting on instance B; once with the Redis front up, once with Redis
  stopped (database path only).
* ``redis_restart``: Redis stopped mid-storm (parallel_5 duplicates) and restarted empty.
* ``upstream_errcode_-1``, ``upstream_http_503``, ``upstream_timeout``: per-code faults of the
  fake (errcode -1; an HTML 503; an answer 1 s later than the client's 5 s read timeout),
  under abort-and-resend, on both sites.
* PostgreSQL restart: not covered (the cluster is shared with other work).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from bench.storm.browser import Browser, Hit, resend_query, run_together, with_query
from bench.storm.patterns import (
    RESEND_DELAY,
    Context,
    Login,
    LoginFailed,
    SiteHandle,
    _last_started,
    new_openid,
    run_login,
)
from bench.storm.services import DATABASES, pg_connect
from bench.storm.stats import ms_summary

READ_TIMEOUT = 5.0  # the guarded app's default TIMEOUT read part; the naive site uses the same


def code_hash(code: str, secret_key: str) -> str:
    """The app's keyed hash of a code (wechat_oauth.hashing.code_hash, with HASH_KEY unset)."""
    key = hashlib.sha256(b"wechat_oauth.code" + secret_key.encode()).digest()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def code_rows(codes: list[str], secret_key: str) -> dict[str, dict[str, Any]]:
    """OAuthCodeUse facts of ``codes`` in the guarded database."""
    hashes = {code_hash(code, secret_key): code for code in codes}
    if not hashes:
        return {}
    with pg_connect(DATABASES["guarded"]) as conn:
        rows = conn.execute(
            "SELECT code_hash, status, error, errcode, duplicates, exchange_ms"
            " FROM wechat_oauth_oauthcodeuse WHERE code_hash = ANY(%s)", [list(hashes)]).fetchall()
    return {hashes[row[0]]: {"status": row[1], "error": row[2], "errcode": row[3],
                             "duplicates_counted_in_db": row[4], "exchange_ms": row[5]}
            for row in rows}


def duplicates_by_code(codes: list[str], secret_key: str) -> dict[str, int]:
    """OAuthCodeUse.duplicates (duplicates its database path answered) of each code."""
    return {code: row["duplicates_counted_in_db"] for code, row in code_rows(codes, secret_key).items()}


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
        "http_500_reached_a_user": sum(hit.status == 500 for login in logins
                                       for hit in login.callbacks),
        "visible_ms": ms_summary([hit.elapsed for login in logins for hit in login.visible]),
        "failure_reasons": dict(Counter(login.reason[:90] for login in logins
                                        if login.reason).most_common(3)),
    }


def _exchanges(fake: Any, logins: list[Login]) -> dict[str, Any]:
    calls = fake.stats()["exchange_calls"]
    counts = [int(calls.get(code, 0)) for login in logins for code in login.codes]
    return {"codes": len(counts), "max": max(counts, default=0),
            "codes_exchanged_more_than_once": sum(count > 1 for count in counts),
            "codes_never_exchanged": sum(count == 0 for count in counts)}


def _judge(login: Login, ctx: Context, browser: Browser, hit: Hit) -> None:
    try:
        ctx.settle(browser, hit)
    except LoginFailed as exc:
        login.outcome, login.reason = "failed", str(exc)
    else:
        login.outcome = "restarted" if login.restarts else "ok"


# -- upstream faults --------------------------------------------------------------------------------

def _faulted_login(site: SiteHandle, fake: Any, index: int, fault: dict[str, Any], name: str) -> Login:
    """Abort-and-resend, with ``fault`` set on the fake for this login's code."""
    login = Login(site.name, name, index, new_openid(site.name, name, index))
    ctx = Context(site, True, login)
    try:
        browser = ctx.browser()
        callback = ctx.authorize(browser, ctx.start(browser))
        fake.add_fault("access_token", code=login.codes[-1], times=None, **fault)
        ctx.abort(browser, ctx.at(callback, ctx.home))
        time.sleep(RESEND_DELAY)
        hit = ctx.callback(browser, with_query(ctx.at(callback, ctx.other), resend_query()),
                           "re-sent callback")
        _judge(login, ctx, browser, hit)
    except Exception as exc:
        login.outcome, login.reason = "failed", f"{type(exc).__name__}: {exc}"
    return login


UPSTREAM_FAULTS = {
    "upstream_errcode_-1": {"errcode": -1},
    "upstream_http_503": {"status": 503},
    "upstream_timeout": {"delay": READ_TIMEOUT + 1.0},
}


def upstream_fault(sites: dict[str, SiteHandle], fake: Any, name: str, logins: int,
                   secret_key: str) -> dict[str, Any]:
    result: dict[str, Any] = {"fault": UPSTREAM_FAULTS[name]}
    for site_name, site in sites.items():
        with ThreadPoolExecutor(max_workers=logins) as pool:
            done = list(pool.map(lambda i, s=site: _faulted_login(s, fake, i, UPSTREAM_FAULTS[name], name),
                                 range(logins)))
        figures = {**_seen(done), "exchanges_per_code": _exchanges(fake, done)}
        if site_name == "guarded":
            rows = code_rows([code for login in done for code in login.codes], secret_key)
            figures["stored_outcomes"] = dict(Counter(f"{row['status']}:{row['error']}"
                                                      for row in rows.values()))
        result[site_name] = figures
    return result


# -- a worker killed while it holds an exchange ----------------------------------------------------

def _holder_pid(database: str, timeout: float = 3.0) -> int | None:
    """The gunicorn worker whose backend sits in an open transaction (the claim) on ``database``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with pg_connect() as conn:
            rows = conn.execute(
                "SELECT application_name FROM pg_stat_activity WHERE datname = %s"
                " AND state = 'idle in transaction' AND application_name LIKE 'storm-guarded-%%'",
                [database]).fetchall()
        if len(rows) == 1:
            return int(rows[0][0].rsplit("-", 1)[1])
        time.sleep(0.01)
    return None


def _open_raw(url: str) -> socket.socket:
    """Send GET ``url`` and leave the connection open, unread (WeChat's first, abandoned try)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
                 .encode("ascii"))
    return sock


def worker_kill_round(stack: Any, index: int, *, label: str) -> dict[str, Any]:
    site, fake = stack.handle("guarded"), stack.fake
    login = Login("guarded", label, index, new_openid("guarded", label, index))
    ctx = Context(site, True, login)
    record: dict[str, Any] = {}
    browser = ctx.browser()
    callback = ctx.authorize(browser, ctx.start(browser))
    code = login.codes[-1]
    fake.add_fault("access_token", code=code, delay=2.0, times=1)
    instances = stack.instances["guarded"]
    holder_socket = _open_raw(ctx.at(callback, instances[0].url))
    try:
        pid = _holder_pid(DATABASES["guarded"])
        workers = {p: i.name for i in instances for p in i.worker_pids()}
        if pid is None or pid not in workers:
            record["not_run"] = f"holder not found in pg_stat_activity (pid {pid})"
            return record
        # The duplicates go to instance B: a connection the killed worker had accepted would
        # die with it, which says nothing about the app.
        tabs = [browser.copy() for _ in range(3)]
        targets = [instances[1].url] * 3
        results: list[Any] = []
        runner = threading.Thread(target=lambda: results.extend(run_together(
            [partial(ctx.callback, tab, ctx.at(callback, url), "duplicate")
             for tab, url in zip(tabs, targets, strict=True)])))
        runner.start()
        time.sleep(0.3)  # the duplicates are waiting for the holder
        killed_at = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        runner.join(90)
        answered_after_kill = max((hit.started + hit.elapsed for hit in results if isinstance(hit, Hit)),
                                  default=killed_at) - killed_at
        tab, hit = _last_started(tabs, results)
        _judge(login, ctx, tab, hit)
        row = code_rows([code], stack.envs["guarded"]["STORM_SECRET_KEY"]).get(code, {})
        exchanges = int(fake.stats(code)["exchange_calls"].get(code, 0))
        record.update({
            "killed_worker": f"instance {workers[pid]}",
            "duplicates_answered_s_after_kill": round(answered_after_kill, 3),
            "exchanges_of_code": exchanges,
            "second_exchange_after_holder_died_ended_spent":
                int(exchanges == 2 and row.get("error") == "spent"),
            "stored_outcome": f"{row.get('status')}:{row.get('error')}",
            **_seen([login]),
        })
        return record
    finally:
        with contextlib.suppress(OSError):
            holder_socket.close()
        for instance in instances:  # the master replaces the killed worker
            instance.wait_ready(30)


def worker_kill(stack: Any, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
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

def redis_restart(stack: Any, concurrency: int, *, down_for: float = 1.0, after: float = 1.0,
                  tail: float = 2.0) -> dict[str, Any]:
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
    warnings = [line for line in stack.logs("guarded")[log_before:].splitlines()
                if "cache front" in line]
    return {**events, **_seen(done), "exchanges_per_code": _exchanges(stack.fake, done),
            "cache_front_warnings_logged": len(warnings),
            "note": "pattern parallel_5 (same instance); the app rate-limits its cache warnings "
                    "to one a minute per worker"}


def run_faults(stack: Any, *, quick: bool) -> dict[str, Any]:
    sites = {name: stack.handle(name) for name in ("guarded", "naive")}
    secret = stack.envs["guarded"]["STORM_SECRET_KEY"]
    out: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("worker_sigkill", lambda: worker_kill(stack, 1 if quick else 2)),
        ("redis_restart", lambda: redis_restart(stack, 6, tail=1.0 if quick else 3.0)),
        *[(name, partial(upstream_fault, sites, stack.fake, name, 4 if quick else 10, secret))
          for name in UPSTREAM_FAULTS],
    ]
    for name, step in steps:
        started = time.perf_counter()
        try:
            out[name] = step()
        except Exception as exc:  # a fault scenario never crashes the run
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        if isinstance(out[name], dict):
            out[name]["scenario_s"] = round(time.perf_counter() - started, 2)
    out["postgresql_restart"] = {"not_covered": "the PostgreSQL cluster is shared with other work; "
                                                "restarting it is not allowed here"}
    return out
