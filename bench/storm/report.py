"""Turn the runs into the JSON report: per kind of login, pattern and site; the cross-app
check; the throughput pass; the targets.

What each figure counts (also written into the report under ``definitions``):
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from bench.storm.apps import StormApp
from bench.storm.patterns import Login
from bench.storm.runner import Run, summary
from bench.storm.stats import ms_summary, value_summary
from bench.storm.users import SiteUsers

DEFINITIONS = {
    "kinds": (
        "mp: the Official Account app (login/ -> the fake's authorize page -> callback/, "
        "WeChat's in-app browser); open: the website app, QR login (web/login/ -> the fake's "
        "qrconnect page, snsapi_login -> web/callback/, a desktop browser); mini: the Mini "
        "Program (a wx.login() code from the fake's control API, POSTed as JSON to "
        "mini/session/); wecom: the WeCom app (corp/login/ in WeCom's browser -> the fake's "
        "authorize page with an agentid -> corp/callback/; persons are corp members). Both "
        "sites have the four apps, all eight on one fake WeChat; the WeChat apps bound to one "
        "Open Platform account (one unionid per person), each site's WeCom app an agent of a "
        "corp of its own"
    ),
    "mini_patterns": (
        "plain: one POST; double_post: onLaunch and onLoad POST the one code at once, both "
        "answers kept; abort_retry: the POST's answer is lost (aborted ~5 ms after sending, "
        "unread: the server still handles it) and the front end POSTs again ~20 ms later, the "
        "retry's answer kept; double_retry: both (onLaunch's POST aborted and retried while "
        "onLoad's is in flight; onLoad's answer and the retry's kept); spread_double_retry: "
        "onLoad's POST and the retry to the other instance. A Mini Program login fails unless "
        "every kept answer is a 200 with a token for the person's openid whose /whoami/ "
        "(Authorization: Bearer) names the person's user"
    ),
    "logins": (
        "logins attempted; each a new person (a first login that creates the user) except the "
        "QR logins that reuse an Official Account login's person (cross_app)"
    ),
    "user_visible_failure_rate": (
        "share of logins whose user-visible callback response (mini: any answer its front end "
        "keeps, see mini_patterns) did not end logged in: not a "
        "302 to /whoami/, or /whoami/ then not naming the login's user. User-visible: plain -> "
        "the callback; abort_resend -> the re-sent callback; parallel_N/two_codes/"
        "spread_parallel_4 -> the duplicate sent last (a browser renders its last navigation); "
        "refresh -> the callback and its refresh. The app's one automatic restart of a login "
        "(302 to WeChat's authorize page) is followed and counted in restarted_rate, not as a "
        "failure, when the login then completes"
    ),
    "any_callback_4xx_5xx_rate": (
        "share of logins where any answered callback request (every duplicate, not the "
        "deliberately aborted ones) got a 4xx/5xx or no answer"
    ),
    "exchanges_per_code": (
        "requests spending a code the fake received per code issued in the pattern (its own "
        "per-code counter: access_token; mini: jscode2session; wecom: auth/getuserinfo); "
        "codes_not_exactly_1 counts codes exchanged 0 or 2+ times"
    ),
    "users_per_person": (
        "Django users per person of the pattern's logins, read from each site's database after "
        "every kind ran, so a person who logged in through both apps counts its users of both "
        "(target 1: one user per unionid; a WeCom member: per corp and userid). guarded: the "
        "users its WeChatAccount rows point to; naive: users named wx_<unionid> (or "
        "wx_<openid>; wecom_<userid>). 0 means the login never created its user. guarded "
        "also: WeChatAccount rows per (appid, openid)"
    ),
    "cross_app": (
        "every third QR login (index % 3 == 0) of each pattern reuses the person of the "
        "Official Account login with the same index, which ran earlier in the same run: it "
        "must end as that login's user. same_user_through_both_apps: both logins ended logged "
        "in and /whoami/ named one user; users_per_person over those persons from the database. "
        "both_apps_at_once: new persons whose two first logins (one per app, plain) are "
        "released at one instant. all_persons: users per person over every person of the "
        "patterns and both_apps_at_once"
    ),
    "fake_app_calls": (
        "the fake's own per-app counters (stats()['app_calls']; wecom: per agent, "
        "stats()['wecom_calls']) over the kind's pattern pass, per site (each site has its own "
        "apps): codes issued by its page (authorize or qrconnect page answers; each issues one "
        "code; mini has no page: its codes come from the control API) and the requests "
        "spending codes (access_token, jscode2session, getuserinfo), and their ratio"
    ),
    "wecom_gettoken": (
        "cgi-bin/gettoken requests of each site's WeCom agent over the whole run (warm-up, "
        "patterns, probe, throughput), the fake's per-agent counter. Target: 1 on the guarded "
        "site (its app token, shared by every worker, lives 7200 s)"
    ),
    "callback_ms": (
        "latency of the user-visible callback responses, measured in the load "
        "generator from just before the request is sent to the last byte read"
    ),
    "all_callbacks_ms": "same, over every answered callback request (duplicates included)",
    "server_ms / server_cpu_ms / server_sql_ms": (
        "per user-visible callback, from X-Storm-Time-Ms / X-Storm-CPU-Ms / X-Storm-SQL-Ms: wall "
        "time inside Django; CPU time of the worker thread that served it (Django, the app, its "
        "client libraries; not the database server, Redis or the fake); time in SQL statements as "
        "Django's debug cursor times them"
    ),
    "callback_ms_by_role": "refresh pattern: the callback and its refresh apart",
    "throughput_logins_per_s": (
        "logins of the pattern / wall time of the pattern's run (login view, authorize, "
        "callbacks, /whoami/ checks, all included)"
    ),
    "sql_per_callback": (
        "X-Storm-SQL of answered callback requests: SQL statements Django sent during the "
        "whole request as its debug cursor logs them (execute/executemany plus BEGIN/COMMIT/"
        "ROLLBACK; session load and save included; Redis commands not counted). 'visible' over "
        "the user-visible callbacks, 'all' over every answered one, 'histogram' count->requests"
    ),
    "pg_per_login": (
        "PostgreSQL only: pg_stat_database deltas of the site's database over the pattern's run, per login: "
        "transactions (commit+rollback; every statement outside a transaction counts as one) and "
        "rows written (inserted+updated+deleted); covers every request of the login"
    ),
    "duplicates": (
        "guarded only: duplicate callbacks (answered + aborted callback requests - codes) and "
        "which path of the guard answered them: the database path counts each in "
        "OAuthCodeUse.duplicates (read by code hash); the rest the Redis front answered"
    ),
    "load_generator_cpu": "CPU seconds of the bench process / wall time (1.0 = one core)",
    "machine_busy": "share of both cores busy during the run (/proc/stat), other work included",
}


def _exchange_figures(codes: list[str], calls: dict[str, int]) -> dict[str, Any]:
    counts = [int(calls.get(code, 0)) for code in codes]
    if not counts:
        return {"codes": 0}
    return {
        "mean": round(sum(counts) / len(counts), 3),
        "max": max(counts),
        "codes": len(counts),
        "total": sum(counts),
        "codes_not_exactly_1": sum(count != 1 for count in counts),
    }


def _users_figures(persons: list[str], users: SiteUsers) -> dict[str, Any]:
    persons = sorted(set(persons))
    per = [users.count(person) for person in persons]
    out: dict[str, Any] = {
        "persons": len(persons),
        "mean": round(sum(per) / len(per), 3) if per else 0,
        "max": max(per, default=0),
        "persons_without_user": sum(count == 0 for count in per),
        "histogram": {str(k): v for k, v in sorted(Counter(per).items())},
    }
    if users.accounts_per_identity is not None:
        out["accounts_per_identity_max"] = max(users.accounts_per_identity.values(), default=0)
    return out


def _duplicate_paths(logins: list[Login], db_duplicates: dict[str, int]) -> dict[str, Any]:
    """How the guarded site answered the duplicates: its database path counts each duplicate in
    OAuthCodeUse.duplicates; the rest were answered by the Redis front."""
    total = sum(len(login.callbacks) + login.aborted - len(login.codes) for login in logins)
    by_database = sum(db_duplicates.get(code, 0) for login in logins for code in login.codes)
    return {
        "total": total,
        "answered_by_database_path": by_database,
        "answered_by_redis_front": total - by_database,
    }


def pattern_figures(
    runs: list[Run], calls: dict[str, int], users: SiteUsers, db_duplicates: dict[str, int] | None = None
) -> dict[str, Any]:
    logins: list[Login] = [login for run in runs for login in run.logins]
    base = summary(runs)
    n = len(logins)
    visible = [hit for login in logins for hit in login.visible]
    every = [hit for login in logins for hit in login.callbacks]
    sql_all = [hit.sql for hit in every if hit.sql is not None]
    sql_visible = [hit.sql for hit in visible if hit.sql is not None]
    pg = base["pg"]
    wall = base["wall"] or 1e-9
    return {
        "logins": n,
        "user_visible_failure_rate": round(sum(login.failed for login in logins) / n, 4),
        "any_callback_4xx_5xx_rate": round(sum(login.any_callback_failed for login in logins) / n, 4),
        "restarted_rate": round(sum(login.outcome == "restarted" for login in logins) / n, 4),
        "exchanges_per_code": _exchange_figures([c for login in logins for c in login.codes], calls),
        "users_per_person": _users_figures([login.person for login in logins], users),
        **(
            {"logins_reusing_a_person_of_the_other_app": shared}
            if (shared := sum(login.partner is not None for login in logins))
            else {}
        ),
        "callback_ms": ms_summary([hit.elapsed for hit in visible]),
        "all_callbacks_ms": ms_summary([hit.elapsed for hit in every]),
        "server_ms": ms_summary([hit.server_ms / 1000 for hit in visible if hit.server_ms is not None]),
        "server_cpu_ms": ms_summary([hit.cpu_ms / 1000 for hit in visible if hit.cpu_ms is not None]),
        "server_sql_ms": ms_summary([hit.sql_ms / 1000 for hit in visible if hit.sql_ms is not None]),
        **(
            {
                "callback_ms_by_role": {
                    role: ms_summary([hit.elapsed for hit in visible if hit.role == role])
                    for role in sorted({hit.role for hit in visible})
                }
            }
            if len({hit.role for hit in visible}) > 1
            else {}
        ),
        "throughput_logins_per_s": round(n / wall, 2),
        "sql_per_callback": {
            "visible": value_summary(sql_visible),
            "all": value_summary(sql_all),
            "histogram": dict(sorted(Counter(sql_all).items())),
        },
        **(
            {
                "pg_per_login": {
                    "transactions": round((pg.get("xact_commit", 0) + pg.get("xact_rollback", 0)) / n, 2),
                    "rows_written": round(
                        (pg.get("tup_inserted", 0) + pg.get("tup_updated", 0) + pg.get("tup_deleted", 0)) / n,
                        2,
                    ),
                }
            }
            if pg
            else {}
        ),
        **({"duplicates": _duplicate_paths(logins, db_duplicates)} if db_duplicates is not None else {}),
        "callback_statuses": dict(sorted(Counter(str(hit.status) for hit in every).items())),
        "failure_reasons": dict(
            Counter(login.reason[:100] for login in logins if login.reason).most_common(3)
        ),
        "concurrency_browsers": base["concurrency"],
        "wall_s": round(base["wall"], 2),
        "load_generator_cpu": round(base["bench_cpu"] / wall, 2),
        "machine_busy": round(base["machine_busy"], 2),
    }


def throughput_figures(runs: list[Run]) -> dict[str, Any]:
    logins = [login for run in runs for login in run.logins]
    base = summary(runs)
    return {
        "logins": len(logins),
        "throughput_logins_per_s": round(len(logins) / (base["wall"] or 1e-9), 2),
        "runs_logins_per_s": [round(len(run.logins) / run.wall, 2) for run in runs],
        "runs_callback_p50_ms": [
            ms_summary([hit.elapsed for login in run.logins for hit in login.visible]).get("p50")
            for run in runs
        ],
        "user_visible_failure_rate": round(sum(login.failed for login in logins) / len(logins), 4),
        "callback_ms": ms_summary([hit.elapsed for login in logins for hit in login.visible]),
        "concurrency_browsers": base["concurrency"],
        "load_generator_cpu": round(base["bench_cpu"] / (base["wall"] or 1e-9), 2),
        "machine_busy": round(base["machine_busy"], 2),
    }


def _failures(patterns: dict[str, dict[str, Any]], site: str = "guarded") -> int:
    return sum(
        round(sites[site]["user_visible_failure_rate"] * sites[site]["logins"]) for sites in patterns.values()
    )


def exactly_once_targets(
    patterns: dict[str, dict[str, dict[str, Any]]], site: str = "guarded"
) -> list[dict[str, Any]]:
    """Per kind of login (``patterns``: kind -> pattern -> site): no failed login of ``site``
    and exactly one upstream exchange per code, in every pattern."""
    out: list[dict[str, Any]] = []
    for kind, by_pattern in patterns.items():
        ours = {name: sites[site] for name, sites in by_pattern.items()}
        failures = _failures(by_pattern, site)
        not_once = sum(f["exchanges_per_code"].get("codes_not_exactly_1", 0) for f in ours.values())
        max_exchanges = max((f["exchanges_per_code"].get("max", 0) for f in ours.values()), default=0)
        out += [
            {
                "target": f"{kind}: {site} user-visible failure rate = 0 (every pattern)",
                "value": failures,
                "unit": "failed logins",
                "met": failures == 0,
            },
            {
                "target": f"{kind}: {site} upstream exchanges per code exactly 1 (every pattern)",
                "value": {"codes_not_exactly_1": not_once, "max": max_exchanges},
                "met": not_once == 0,
            },
        ]
    return out


def targets(
    probe: dict[str, Any],
    patterns: dict[str, dict[str, dict[str, Any]]],
    throughput: dict[str, Any],
    cross_app: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """The guarded site's targets, per kind of login (``patterns``: kind -> pattern -> site),
    plus one user per person over every person of the run and the throughput ratio."""
    out = exactly_once_targets(patterns)
    if cross_app is not None:
        every = cross_app["guarded"]["all_persons"]
        out.append(
            {
                "target": "guarded: exactly 1 Django user per person across both apps (every person "
                "of the patterns and of both_apps_at_once; one user per unionid)",
                "value": {
                    "persons": every["persons"],
                    "max": every["max"],
                    "persons_without_user": every["persons_without_user"],
                    "shared_persons_not_the_same_user": cross_app["guarded"]["persons_not_one_user"],
                },
                "met": every["max"] == 1
                and every["persons_without_user"] == 0
                and cross_app["guarded"]["persons_not_one_user"] == 0,
            }
        )
    else:  # one kind only: its persons
        per = [
            sites["guarded"]["users_per_person"]
            for by_pattern in patterns.values()
            for sites in by_pattern.values()
        ]
        most = max((f["max"] for f in per), default=0)
        without = sum(f["persons_without_user"] for f in per)
        out.append(
            {
                "target": "guarded: exactly 1 Django user per person (every pattern)",
                "value": {
                    "persons": sum(f["persons"] for f in per),
                    "max": most,
                    "persons_without_user": without,
                },
                "met": most == 1 and without == 0,
            }
        )
    for kind, probes in probe.items():
        storm, single = probes["storm_concurrency"], probes["one_browser"]
        ratio = storm["p50_ratio_guarded_over_naive"]
        out.append(
            {
                "target": f"{kind}: guarded callback p50 <= 1.05 x naive at 80 ms (latency probe: "
                "plain logins, no instrumentation, storm concurrency)",
                "value": {
                    "guarded_p50_ms": storm["guarded"]["callback_ms"]["p50"],
                    "naive_p50_ms": storm["naive"]["callback_ms"]["p50"],
                    "ratio": ratio,
                    "ratio_with_one_browser": single["p50_ratio_guarded_over_naive"],
                },
                "met": ratio is not None and ratio <= 1.05,
            }
        )
    if throughput:
        tp_ratio = throughput.get("ratio_guarded_over_naive")
        out.append(
            {
                "target": f"{throughput.get('kind', 'mp')}: throughput guarded >= 0.85 x naive "
                "(plain logins, 0 ms upstream)",
                "value": tp_ratio,
                "met": tp_ratio is not None and tp_ratio >= 0.85,
            }
        )
    return out


def cross_app(
    runs: dict[str, dict[str, dict[str, list[Run]]]],
    at_once: dict[str, list[Run]],
    users: dict[str, SiteUsers],
    calls: dict[str, int],
) -> dict[str, Any]:
    """Per site: the QR logins that reused an Official Account login's person, the persons who
    logged in through both apps at once, and users per person over every person of the run."""
    out: dict[str, Any] = {}
    for site, site_users in users.items():
        qr = [
            login
            for by_site in runs.get("open", {}).values()
            for run in by_site.get(site, [])
            for login in run.logins
        ]
        shared = [login for login in qr if login.partner is not None]
        both = [login for run in at_once.get(site, []) for login in run.logins]
        pairs = [login for login in both if login.partner is not None]
        everyone = [
            login.person
            for by_pattern in runs.values()
            for by_site in by_pattern.values()
            for run in by_site.get(site, [])
            for login in run.logins
        ]
        everyone += [login.person for login in both]
        shared_figures = _pair_figures(shared, site_users)
        out[site] = {
            "qr_logins": len(qr),
            "qr_logins_reusing_an_official_account_person": {
                "share": round(len(shared) / len(qr), 3) if qr else 0,
                **shared_figures,
            },
            **(
                {
                    "both_apps_at_once": {
                        **_pair_figures(pairs, site_users),
                        "failed_logins": sum(login.failed for login in both),
                        "exchanges_per_code": _exchange_figures(
                            [c for login in both for c in login.codes], calls
                        ),
                        "callback_ms": ms_summary([hit.elapsed for login in both for hit in login.visible]),
                        "failure_reasons": dict(
                            Counter(login.reason[:100] for login in both if login.reason).most_common(3)
                        ),
                    }
                }
                if both
                else {}
            ),
            "all_persons": _users_figures(everyone, site_users),
            "persons_not_one_user": shared_figures["persons_not_one_user"]
            + (_pair_figures(pairs, site_users)["persons_not_one_user"] if pairs else 0),
            **(
                {
                    "users_without_account": site_users.users_without_account,
                    "union_row_names_another_user": site_users.union_user_differs,
                }
                if site_users.users_without_account is not None
                else {}
            ),
            "users_in_database": site_users.users_total,
        }
    return out


def _pair_figures(logins: list[Login], users: SiteUsers) -> dict[str, Any]:
    """Logins with a partner (the same person through the other app)."""
    ok = [
        login
        for login in logins
        if not login.failed and login.partner is not None and not login.partner.failed
    ]
    per = [users.count(login.person) for login in logins]
    return {
        "persons": len(logins),
        "both_logins_succeeded": len(ok),
        "same_user_through_both_apps": sum(
            login.user == login.partner.user for login in ok if login.partner is not None
        ),
        "users_per_person_max": max(per, default=0),
        "users_per_person_histogram": {str(k): v for k, v in sorted(Counter(per).items())},
        "persons_not_one_user": sum(count != 1 for count in per),
    }


def app_calls_delta(
    before: dict[str, Any], after: dict[str, Any], app_id: str, app: StormApp
) -> dict[str, Any]:
    """The fake's counters of ``app_id`` (a WeCom app: its corp's agent) between two snapshots
    of stats(): requests per endpoint, codes its page issued, requests spending codes."""
    if app.kind == "wecom":

        def counters(stats: dict[str, Any]) -> dict[str, int]:
            return next(iter(stats["wecom_calls"].get(app_id, {}).values()), {})
    else:

        def counters(stats: dict[str, Any]) -> dict[str, int]:
            return dict(stats["app_calls"].get(app_id, {}))

    start, end = counters(before), counters(after)
    delta = {endpoint: int(end.get(endpoint, 0)) - int(start.get(endpoint, 0)) for endpoint in end}
    exchanges = delta.get(app.exchange, 0)
    codes = delta.get(app.page, 0) if app.has_page else None
    return {
        "app_id": app_id,
        # A Mini Program has no page: its codes come from the control API, one per login
        # (counted in exchanges_per_code).
        "codes_issued": codes,
        f"{app.exchange}_requests": exchanges,
        **(
            {f"{app.exchange}_per_code": round(exchanges / codes, 3) if codes else None}
            if codes is not None
            else {}
        ),
        "calls": delta,
    }


def gettoken_target(gettoken: dict[str, Any]) -> dict[str, Any]:
    """One gettoken on the guarded site over the run: its app token outlives the run."""
    return {
        "target": "wecom: guarded gettoken requests = 1 over the run (one app token, "
        "shared by every worker, for its 7200 s lifetime)",
        "value": {"guarded": gettoken["guarded"], "naive": gettoken["naive"]},
        "met": gettoken["guarded"] == 1,
    }


def fault_target(faults: dict[str, Any]) -> dict[str, Any]:
    """The fault scenarios' common requirement, read off their figures: no 500 reached a user of
    the guarded site, no row was left in flight, and no code was exchanged twice but after its
    holder died (its second exchange then ends "code been used"); and every scenario ran (a
    worker-kill round whose holder was not found tested nothing)."""
    guarded = [
        faults[name]["guarded"]
        for name in faults
        if name.startswith("upstream_") and "guarded" in faults[name]
    ]
    all_rounds = [
        round_
        for rounds in faults.get("worker_sigkill", {}).values()
        if isinstance(rounds, list)
        for round_ in rounds
    ]
    kill_rounds = [round_ for round_ in all_rounds if "not_run" not in round_]
    not_run = len(all_rounds) - len(kill_rounds)
    restarts = [faults[name] for name in ("redis_restart", "database_restart") if name in faults]
    http_500 = sum(part.get("http_500_reached_a_user", 0) for part in [*guarded, *kill_rounds, *restarts])
    twice = sum(
        part["exchanges_per_code"].get("codes_exchanged_more_than_once", 0)
        for part in [*guarded, faults.get("redis_restart", {})]
        if "exchanges_per_code" in part
    )
    twice += sum(
        r["exchanges_of_code"] > 1 and not r["second_exchange_after_holder_died_ended_spent"]
        for r in kill_rounds
    )
    restart = faults.get("database_restart", {})
    twice += restart.get("consistency", {}).get("exchanged_twice_otherwise", 0)
    rows = faults.get("guarded_rows_after_faults", {})
    left_in_flight = sum(n for status, n in rows.items() if status not in ("exchanged", "failed", "error"))
    left_in_flight += restart.get("consistency", {}).get("rows_not_exchanged_or_failed", 0)
    errors = sorted(name for name, part in faults.items() if isinstance(part, dict) and "error" in part)
    return {
        "target": "faults: no 500 reached a guarded user, no row left in flight, no second "
        "exchange while a holder was alive",
        "value": {
            "http_500": http_500,
            "rows_left_in_flight": left_in_flight,
            "second_exchanges_not_after_a_dead_holder": twice,
            "scenarios_that_crashed": errors,
            "worker_kill_rounds_not_run": not_run,
            "database_restart_skipped": restart.get("skipped"),
        },
        "met": http_500 == 0 and left_in_flight == 0 and twice == 0 and not errors and not not_run,
    }


def side_by_side(
    patterns: dict[str, dict[str, dict[str, Any]]], sites: tuple[str, str] = ("naive", "guarded")
) -> dict[str, Any]:
    """The headline figures, per kind and pattern, as {figure: {"naive": x, "guarded": y}}
    (or the other ``sites``: a library's stock and drop-in)."""

    def pick(figures: dict[str, Any]) -> dict[str, Any]:
        exchanges, sql = figures["exchanges_per_code"], figures["sql_per_callback"]
        return {
            "failed_logins": round(figures["user_visible_failure_rate"] * figures["logins"]),
            "failure_rate": figures["user_visible_failure_rate"],
            "any_duplicate_4xx_5xx_rate": figures["any_callback_4xx_5xx_rate"],
            "exchanges_per_code_mean_max": [exchanges.get("mean"), exchanges.get("max")],
            "users_per_person_max": figures["users_per_person"]["max"],
            "callback_p50_p99_ms": [figures["callback_ms"].get("p50"), figures["callback_ms"].get("p99")],
            "logins_per_s": figures["throughput_logins_per_s"],
            "sql_per_visible_callback_mean": sql["visible"].get("mean"),
        }

    out: dict[str, Any] = {}
    for kind, by_pattern in patterns.items():
        out[kind] = {}
        for name, figures in by_pattern.items():
            picked = {site: pick(figures[site]) for site in sites}
            out[kind][name] = {key: {site: picked[site][key] for site in sites} for key in picked[sites[0]]}
    return out


#: A column of :func:`table`: its header, its width, and its figure of one site's pattern.
Column = tuple[str, int, Callable[[dict[str, Any]], Any]]


def failed_logins(figures: dict[str, Any]) -> int:
    return round(figures["user_visible_failure_rate"] * figures["logins"])


#: The storm's table (guarded/naive).
COLUMNS: list[Column] = [
    ("failed", 9, failed_logins),
    ("exch/code max", 14, lambda f: f["exchanges_per_code"].get("max", "-")),
    ("exch total", 11, lambda f: f["exchanges_per_code"].get("total", "-")),
    ("codes", 9, lambda f: f["exchanges_per_code"].get("codes", "-")),
    ("users/person max", 17, lambda f: f["users_per_person"].get("max", "-")),
    ("p50 ms", 13, lambda f: f["callback_ms"].get("p50", "-")),
]


def table(
    patterns: dict[str, dict[str, dict[str, Any]]],
    cross: dict[str, Any] | None,
    gettoken: dict[str, Any] | None = None,
    sites: tuple[str, str] = ("guarded", "naive"),
    columns: list[Column] = COLUMNS,
) -> str:
    """A plain-text table of the per-kind figures, each cell guarded/naive (or ``sites``, a
    library's drop-in/stock, with its ``columns``; printed to stderr at the end of a run, kept
    in the JSON as ``table``)."""
    head = " ".join(
        [f"{'kind':5} {'pattern':20} {'logins':>6}", *(f"{header:>{width}}" for header, width, _ in columns)]
    )
    lines = [head, "-" * len(head)]
    for kind, by_pattern in patterns.items():
        for name, figures in by_pattern.items():
            both = (figures[sites[0]], figures[sites[1]])
            lines.append(
                " ".join(
                    [
                        f"{kind:5} {name:20} {both[0]['logins']:>6}",
                        *(f"{'/'.join(str(cell(f)) for f in both):>{width}}" for _, width, cell in columns),
                    ]
                )
            )
    if cross:
        for site in ("guarded", "naive"):
            part = cross.get(site)
            if not part:
                continue
            reuse = part["qr_logins_reusing_an_official_account_person"]
            both = part.get("both_apps_at_once", {})
            every = part["all_persons"]
            lines.append(
                f"cross-app {site}: {reuse['persons']} QR logins reuse an mp person "
                f"({reuse['same_user_through_both_apps']} same user); at once "
                f"{both.get('same_user_through_both_apps', '-')}/{both.get('persons', '-')} same "
                f"user; users per person over {every['persons']} persons: "
                f"{every['histogram']}"
            )
    if gettoken:
        lines.append(
            f"wecom gettoken requests over the run, guarded/naive: {gettoken['guarded']}/{gettoken['naive']}"
        )
    return "\n".join(lines)


def across_databases(
    sections: dict[str, dict[str, Any]], sites: tuple[str, str] = ("guarded", "naive")
) -> dict[str, Any]:
    """The short table over every database run: per kind, pattern and database, [guarded,
    naive] (or ``sites``) of the failure rate, exchanges per code (mean, max) and the callback
    p50; and whether each database met its targets."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for db_kind, section in sections.items():
        for kind, by_pattern in section.get("patterns", {}).items():
            for name, figures in by_pattern.items():
                guarded, naive = figures[sites[0]], figures[sites[1]]
                out.setdefault(kind, {}).setdefault(name, {})[db_kind] = {
                    "failure_rate": [
                        guarded["user_visible_failure_rate"],
                        naive["user_visible_failure_rate"],
                    ],
                    "exchanges_per_code_mean_max": [
                        [guarded["exchanges_per_code"].get("mean"), guarded["exchanges_per_code"].get("max")],
                        [naive["exchanges_per_code"].get("mean"), naive["exchanges_per_code"].get("max")],
                    ],
                    "users_per_person_max": [
                        guarded["users_per_person"]["max"],
                        naive["users_per_person"]["max"],
                    ],
                    "callback_p50_ms": [guarded["callback_ms"].get("p50"), naive["callback_ms"].get("p50")],
                }
    return {
        "columns": (
            f"each figure as [{', '.join(sites)}], both sites on the same database"
            if sites != ("guarded", "naive")
            else "each figure as [guarded, naive], the naive site on the same database"
        ),
        "targets_met": {kind: section.get("all_targets_met") for kind, section in sections.items()},
        "skipped": {kind: section["skipped"] for kind, section in sections.items() if "skipped" in section},
        "patterns": out,
    }
