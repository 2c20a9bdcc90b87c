"""Turn the runs into the JSON report: per pattern and site, the throughput pass, the targets.

What each figure counts (also written into the report under ``definitions``):
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.storm.patterns import Login
from bench.storm.runner import Run, summary
from bench.storm.stats import ms_summary, value_summary

DEFINITIONS = {
    "logins": "logins attempted (each a new openid: a first login that creates the user)",
    "user_visible_failure_rate": (
        "share of logins whose user-visible callback response did not end logged in: not a "
        "302 to /whoami/, or /whoami/ then not naming the login's user. User-visible: plain -> "
        "the callback; abort_resend -> the re-sent callback; parallel_N/two_codes/"
        "spread_parallel_4 -> the duplicate sent last (a browser renders its last navigation); "
        "refresh -> the callback and its refresh. The app's one automatic restart of a login "
        "(302 to WeChat's authorize page) is followed and counted in restarted_rate, not as a "
        "failure, when the login then completes"),
    "any_callback_4xx_5xx_rate": (
        "share of logins where any answered callback request (every duplicate, not the "
        "deliberately aborted ones) got a 4xx/5xx or no answer"),
    "exchanges_per_code": (
        "access_token requests the fake received per code issued in the pattern (its own "
        "per-code counter); codes_not_exactly_1 counts codes exchanged 0 or 2+ times"),
    "users_per_openid": (
        "auth_user rows named wx_<openid> per openid, from each site's database (both sites "
        "name users so; the name is unique, so 0 means the login never created its user); "
        "guarded also: WeChatAccount rows per openid"),
    "callback_ms": ("latency of the user-visible callback responses, measured in the load "
                    "generator from just before the request is sent to the last byte read"),
    "all_callbacks_ms": "same, over every answered callback request (duplicates included)",
    "server_ms / server_cpu_ms / server_sql_ms": (
        "per user-visible callback, from X-Storm-Time-Ms / X-Storm-CPU-Ms / X-Storm-SQL-Ms: wall "
        "time inside Django; CPU time of the worker thread that served it (Django, the app, its "
        "client libraries; not the database server, Redis or the fake); time in SQL statements as "
        "Django's debug cursor times them"),
    "callback_ms_by_role": "refresh pattern: the callback and its refresh apart",
    "throughput_logins_per_s": (
        "logins of the pattern / wall time of the pattern's run (login view, authorize, "
        "callbacks, /whoami/ checks, all included)"),
    "sql_per_callback": (
        "X-Storm-SQL of answered callback requests: SQL statements Django sent during the "
        "whole request as its debug cursor logs them (execute/executemany plus BEGIN/COMMIT/"
        "ROLLBACK; session load and save included; Redis commands not counted). 'visible' over "
        "the user-visible callbacks, 'all' over every answered one, 'histogram' count->requests"),
    "pg_per_login": (
        "PostgreSQL only: pg_stat_database deltas of the site's database over the pattern's run, per login: "
        "transactions (commit+rollback; every statement outside a transaction counts as one) and "
        "rows written (inserted+updated+deleted); covers every request of the login"),
    "duplicates": (
        "guarded only: duplicate callbacks (answered + aborted callback requests - codes) and "
        "which path of the guard answered them: the database path counts each in "
        "OAuthCodeUse.duplicates (read by code hash); the rest the Redis front answered"),
    "load_generator_cpu": "CPU seconds of the bench process / wall time (1.0 = one core)",
    "machine_busy": "share of both cores busy during the run (/proc/stat), other work included",
}


def _exchange_figures(codes: list[str], calls: dict[str, int]) -> dict[str, Any]:
    counts = [int(calls.get(code, 0)) for code in codes]
    if not counts:
        return {"codes": 0}
    return {"mean": round(sum(counts) / len(counts), 3), "max": max(counts), "codes": len(counts),
            "codes_not_exactly_1": sum(count != 1 for count in counts)}


def _users_figures(openids: list[str], users: Counter[str], accounts: Counter[str] | None
                   ) -> dict[str, Any]:
    per = [users.get(f"wx_{openid}", 0) for openid in openids]
    out: dict[str, Any] = {"mean": round(sum(per) / len(per), 3) if per else 0,
                           "max": max(per, default=0),
                           "openids_without_user": sum(count == 0 for count in per)}
    if accounts is not None:
        out["accounts_per_openid_max"] = max((accounts.get(o, 0) for o in openids), default=0)
    return out


def _duplicate_paths(logins: list[Login], db_duplicates: dict[str, int]) -> dict[str, Any]:
    """How the guarded site answered the duplicates: its database path counts each duplicate in
    OAuthCodeUse.duplicates; the rest were answered by the Redis front."""
    total = sum(len(login.callbacks) + login.aborted - len(login.codes) for login in logins)
    by_database = sum(db_duplicates.get(code, 0) for login in logins for code in login.codes)
    return {"total": total, "answered_by_database_path": by_database,
            "answered_by_redis_front": total - by_database}


def pattern_figures(runs: list[Run], calls: dict[str, int], users: Counter[str],
                    accounts: Counter[str] | None,
                    db_duplicates: dict[str, int] | None = None) -> dict[str, Any]:
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
        "users_per_openid": _users_figures([login.openid for login in logins], users, accounts),
        "callback_ms": ms_summary([hit.elapsed for hit in visible]),
        "all_callbacks_ms": ms_summary([hit.elapsed for hit in every]),
        "server_ms": ms_summary([hit.server_ms / 1000 for hit in visible if hit.server_ms is not None]),
        "server_cpu_ms": ms_summary([hit.cpu_ms / 1000 for hit in visible if hit.cpu_ms is not None]),
        "server_sql_ms": ms_summary([hit.sql_ms / 1000 for hit in visible if hit.sql_ms is not None]),
        **({"callback_ms_by_role": {role: ms_summary([hit.elapsed for hit in visible if hit.role == role])
                                    for role in sorted({hit.role for hit in visible})}}
           if len({hit.role for hit in visible}) > 1 else {}),
        "throughput_logins_per_s": round(n / wall, 2),
        "sql_per_callback": {
            "visible": value_summary(sql_visible),
            "all": value_summary(sql_all),
            "histogram": dict(sorted(Counter(sql_all).items())),
        },
        **({"pg_per_login": {
            "transactions": round((pg.get("xact_commit", 0) + pg.get("xact_rollback", 0)) / n, 2),
            "rows_written": round((pg.get("tup_inserted", 0) + pg.get("tup_updated", 0)
                                   + pg.get("tup_deleted", 0)) / n, 2),
        }} if pg else {}),
        **({"duplicates": _duplicate_paths(logins, db_duplicates)} if db_duplicates is not None else {}),
        "callback_statuses": dict(sorted(Counter(str(hit.status) for hit in every).items())),
        "failure_reasons": dict(Counter(login.reason[:100] for login in logins if login.reason)
                                .most_common(3)),
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
        "runs_callback_p50_ms": [ms_summary([hit.elapsed for login in run.logins
                                             for hit in login.visible]).get("p50") for run in runs],
        "user_visible_failure_rate": round(sum(login.failed for login in logins) / len(logins), 4),
        "callback_ms": ms_summary([hit.elapsed for login in logins for hit in login.visible]),
        "concurrency_browsers": base["concurrency"],
        "load_generator_cpu": round(base["bench_cpu"] / (base["wall"] or 1e-9), 2),
        "machine_busy": round(base["machine_busy"], 2),
    }


def targets(probe: dict[str, Any], patterns: dict[str, dict[str, Any]],
            throughput: dict[str, Any]) -> list[dict[str, Any]]:
    guarded = {name: sites["guarded"] for name, sites in patterns.items()}
    failures = sum(round(f["user_visible_failure_rate"] * f["logins"]) for f in guarded.values())
    not_once = sum(f["exchanges_per_code"].get("codes_not_exactly_1", 0) for f in guarded.values())
    max_exchanges = max((f["exchanges_per_code"].get("max", 0) for f in guarded.values()), default=0)
    storm, single = probe["storm_concurrency"], probe["one_browser"]
    ratio = storm["p50_ratio_guarded_over_naive"]
    tp_ratio = throughput.get("ratio_guarded_over_naive")
    return [
        {"target": "guarded user-visible failure rate = 0 (every pattern)",
         "value": failures, "unit": "failed logins", "met": failures == 0},
        {"target": "guarded upstream exchanges per code exactly 1 (every pattern)",
         "value": {"codes_not_exactly_1": not_once, "max": max_exchanges},
         "met": not_once == 0},
        {"target": "guarded callback p50 <= 1.05 x naive at 80 ms (latency probe: plain logins, "
                   "no instrumentation, storm concurrency)",
         "value": {"guarded_p50_ms": storm["guarded"]["callback_ms"]["p50"],
                   "naive_p50_ms": storm["naive"]["callback_ms"]["p50"], "ratio": ratio,
                   "ratio_with_one_browser": single["p50_ratio_guarded_over_naive"]},
         "met": ratio <= 1.05},
        {"target": "throughput guarded >= 0.85 x naive (plain logins, 0 ms upstream)",
         "value": tp_ratio, "met": tp_ratio is not None and tp_ratio >= 0.85},
    ]


def fault_target(faults: dict[str, Any]) -> dict[str, Any]:
    """The fault scenarios' common requirement, read off their figures: no 500 reached a user of
    the guarded site, no row was left in flight, and no code was exchanged twice but after its
    holder died (its second exchange then ends "code been used"); and every scenario ran (a
    worker-kill round whose holder was not found tested nothing)."""
    guarded = [faults[name]["guarded"] for name in faults if name.startswith("upstream_")
               and "guarded" in faults[name]]
    all_rounds = [round_ for rounds in faults.get("worker_sigkill", {}).values()
                  if isinstance(rounds, list) for round_ in rounds]
    kill_rounds = [round_ for round_ in all_rounds if "not_run" not in round_]
    not_run = len(all_rounds) - len(kill_rounds)
    restarts = [faults[name] for name in ("redis_restart", "database_restart") if name in faults]
    http_500 = sum(part.get("http_500_reached_a_user", 0) for part in [*guarded, *kill_rounds, *restarts])
    twice = sum(part["exchanges_per_code"].get("codes_exchanged_more_than_once", 0)
                for part in [*guarded, faults.get("redis_restart", {})] if "exchanges_per_code" in part)
    twice += sum(r["exchanges_of_code"] > 1 and not r["second_exchange_after_holder_died_ended_spent"]
                 for r in kill_rounds)
    restart = faults.get("database_restart", {})
    twice += restart.get("consistency", {}).get("exchanged_twice_otherwise", 0)
    rows = faults.get("guarded_rows_after_faults", {})
    left_in_flight = sum(n for status, n in rows.items()
                         if status not in ("exchanged", "failed", "error"))
    left_in_flight += restart.get("consistency", {}).get("rows_not_exchanged_or_failed", 0)
    errors = sorted(name for name, part in faults.items() if isinstance(part, dict) and "error" in part)
    return {"target": "faults: no 500 reached a guarded user, no row left in flight, no second "
                      "exchange while a holder was alive",
            "value": {"http_500": http_500, "rows_left_in_flight": left_in_flight,
                      "second_exchanges_not_after_a_dead_holder": twice,
                      "scenarios_that_crashed": errors, "worker_kill_rounds_not_run": not_run,
                      "database_restart_skipped": restart.get("skipped")},
            "met": http_500 == 0 and left_in_flight == 0 and twice == 0 and not errors
            and not not_run}


def side_by_side(patterns: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The headline figures, per pattern, as {figure: {"naive": x, "guarded": y}}."""
    def pick(figures: dict[str, Any]) -> dict[str, Any]:
        exchanges, sql = figures["exchanges_per_code"], figures["sql_per_callback"]
        return {
            "failure_rate": figures["user_visible_failure_rate"],
            "any_duplicate_4xx_5xx_rate": figures["any_callback_4xx_5xx_rate"],
            "exchanges_per_code_mean_max": [exchanges.get("mean"), exchanges.get("max")],
            "users_per_openid_max": figures["users_per_openid"]["max"],
            "callback_p50_p99_ms": [figures["callback_ms"].get("p50"), figures["callback_ms"].get("p99")],
            "logins_per_s": figures["throughput_logins_per_s"],
            "sql_per_visible_callback_mean": sql["visible"].get("mean"),
        }

    out: dict[str, Any] = {}
    for name, sites in patterns.items():
        naive, guarded = pick(sites["naive"]), pick(sites["guarded"])
        out[name] = {key: {"naive": naive[key], "guarded": guarded[key]} for key in naive}
    return out


def across_databases(sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The short table over every database run: per pattern and database, [guarded, naive]
    of the failure rate, exchanges per code (mean, max) and the callback p50; and whether each
    database met its targets."""
    table: dict[str, dict[str, Any]] = {}
    for kind, section in sections.items():
        for name, sites in section.get("patterns", {}).items():
            guarded, naive = sites["guarded"], sites["naive"]
            table.setdefault(name, {})[kind] = {
                "failure_rate": [guarded["user_visible_failure_rate"],
                                 naive["user_visible_failure_rate"]],
                "exchanges_per_code_mean_max": [
                    [guarded["exchanges_per_code"].get("mean"), guarded["exchanges_per_code"].get("max")],
                    [naive["exchanges_per_code"].get("mean"), naive["exchanges_per_code"].get("max")]],
                "callback_p50_ms": [guarded["callback_ms"].get("p50"), naive["callback_ms"].get("p50")],
            }
    return {"columns": "each figure as [guarded, naive], the naive site on the same database",
            "targets_met": {kind: section.get("all_targets_met") for kind, section in sections.items()},
            "skipped": {kind: section["skipped"] for kind, section in sections.items()
                        if "skipped" in section},
            "patterns": table}
