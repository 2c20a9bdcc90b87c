"""``python -m bench.asgi --quick`` (WSGI vs ASGI sync views vs ASGI async views): the report's
shape and its correctness facts (every duplicate of the burst redirected to the page and
logged in, one exchange of the code, no failed login), never its timings.

Needs PostgreSQL (marker ``postgres``), ``redis-server`` on the PATH, gunicorn and
uvicorn-worker (skips, saying which, otherwise). Its database has a name of its own, so a
``python -m bench.asgi`` or storm running beside it is not disturbed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from bench.asgi.__main__ import main, parse_args
from bench.asgi.serving import FRONTS, SERVINGS
from bench.storm import databases
from tests.test_storm_asgi import stack_unavailable

pytestmark = pytest.mark.bench

KEYS = [f"{front}/{serving.name}" for front in FRONTS for serving in SERVINGS]


def test_the_command_line_defaults():
    args = parse_args([])
    assert (args.quick, args.serving, args.front, args.burst) == (False, None, None, 50)
    assert (args.latency, args.burst_exchange) == (0.1, 0.5)
    assert parse_args(["--quick", "--serving", "asgi_async", "--front", "none"]).serving == ["asgi_async"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    reason = stack_unavailable()
    if reason is not None:
        pytest.skip(reason)
    output: Path = tmp_path_factory.mktemp("bench-asgi") / "asgi.json"
    names = pytest.MonkeyPatch()
    names.setitem(databases.NAMES, "guarded", f"wechat_oauth_test_bench_asgi_{os.getpid()}")
    try:
        main(["--quick", "--output", str(output)])  # exit status: a target, not checked here
    finally:
        names.undo()
    return json.loads(output.read_text())


@pytest.mark.postgres
def test_the_report_has_every_serving_and_figure(report):
    assert report["mode"] == "quick"
    assert list(report["servings"]) == KEYS and list(report["summary"]) == KEYS
    for key in KEYS:
        serving = report["servings"][key]
        for pattern in ("plain", "parallel_20"):
            assert {"p50", "p99"} <= set(serving[pattern]["callback_ms"]), (key, pattern)
            assert serving[pattern]["logins_per_s"] > 0
        for burst in serving["burst"]:
            for figure in ("threads", "db_connections"):
                assert {"idle", "peak", "peak_above_idle", "peak_while_waiting"} <= set(
                    burst[figure]["total"]
                ), (key, figure)
            assert burst["samples"]["threads"] > 50 and burst["samples"]["db_connections"] > 50
    assert "all_met" in report["targets"]


@pytest.mark.postgres
def test_every_burst_duplicate_is_logged_in_and_the_code_exchanged_once(report):
    for key in KEYS:
        serving = report["servings"][key]
        for burst in serving["burst"]:
            assert burst["redirected_to_page_and_logged_in"] == burst["duplicates"] == 50, key
            assert burst["statuses"] == {"302": 50}, key
            assert burst["exchanges_of_code"] == 1, key
        assert report["targets"][f"{key.replace('/', '_')}_every_duplicate_logged_in_one_exchange"]


@pytest.mark.postgres
def test_no_login_fails_in_any_serving(report):
    for key in KEYS:
        serving = report["servings"][key]
        assert serving["warm_up_failed"] == 0, key
        assert serving["plain"]["failed_logins"] == serving["parallel_20"]["failed_logins"] == 0, (
            key,
            serving["plain"]["failures"],
            serving["parallel_20"]["failures"],
        )
        assert serving["tracebacks_in_logs"] == 0, key


@pytest.mark.postgres
def test_the_docs_table_is_written_from_the_report(report):
    from bench.asgi import tables

    table = tables.rst(report)
    assert table.startswith(f"*Run of {report['when'][:10]} ")
    listed = table[table.index(".. list-table::") : table.index("\n\nTargets met")]
    rows = [row.strip().splitlines() for row in listed.split("   * - ")[1:]]
    assert [line.strip() for line in rows[0]] == ["Figure", *(f"- {label}" for _, label in tables.SERVINGS)]
    assert len(rows) == 1 + len(FRONTS) * len(tables.FIGURES)
    logged_in = [row for row in rows if "logged in" in row[0]]
    for row in logged_in:  # every duplicate of the burst logged in, the code exchanged once
        assert [line.strip() for line in row[1:]] == ["- 50; 1"] * len(SERVINGS), row
    wsgi_plain = report["summary"]["redis/wsgi"]["plain_callback_p50_p99_ms"]
    assert f"{wsgi_plain[0]:.0f} / {wsgi_plain[1]:.0f} ms" in table


def test_the_async_target_is_the_holder_and_the_claims_at_once():
    from bench.asgi.__main__ import FEW_CONNECTIONS
    from wechat_oauth.guard.async_exchange import ATTEMPTS_AT_ONCE

    assert FEW_CONNECTIONS == ATTEMPTS_AT_ONCE + 1
