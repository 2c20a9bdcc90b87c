"""The campaign spike (``python -m bench.storm --only spike``, bench/storm/spike.py): its plan
and command line, and its ``--quick`` size (60 first logins per site within one second, 10%
duplicated by WeChat's patterns, each exchange answered after 80-300 ms) on the storm's own
stack on PostgreSQL: the report's shape and its facts (no failed guarded login, exactly one
exchange per code, the samplers saw the spike), never its timings.

The served test needs PostgreSQL (marker ``postgres``), ``redis-server`` on the PATH and
gunicorn; it skips, saying which, otherwise. Its databases have names of their own, so a
``python -m bench.storm`` running beside it is not disturbed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from bench.storm import databases, spike
from bench.storm.__main__ import parse_args
from bench.storm.databases import database
from bench.storm.passes import Storm

pytestmark = pytest.mark.bench


def test_the_spike_is_a_section_of_its_own_with_its_size():
    args = parse_args(["--only", "spike", "--quick"])
    assert args.sections == ["spike"] and args.spike_logins is None
    assert parse_args(["--only", "spike", "--spike-logins", "120"]).spike_logins == 120
    assert "spike" in parse_args([]).sections


def test_the_plan_duplicates_a_tenth_of_the_logins_inside_the_window():
    schedule = spike.plan(300, random.Random(1))
    assert len(schedule) == 300
    patterns = [pattern for pattern, _, _ in schedule]
    assert sum(p != "plain" for p in patterns) == 30
    assert {p for p in patterns if p != "plain"} == set(spike.DUPLICATE_PATTERNS)
    assert all(0 <= due < spike.WINDOW for _, due, _ in schedule)
    assert all(spike.UPSTREAM[0] <= delay <= spike.UPSTREAM[1] for _, _, delay in schedule)


def test_littles_law_is_capped_by_the_server_threads():
    assert spike.littles_law(60, 0.19, 0.01, 32)["expected_peak"] == 12.0
    assert spike.littles_law(300, 0.19, 0.01, 32)["expected_peak"] == 32


def stack_unavailable() -> str | None:
    if shutil.which("redis-server") is None:
        return "redis-server is not on the PATH (the storm starts a private one)"
    return database("postgres").unavailable()


@pytest.fixture(scope="module")
def quick_spike(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The storm's stack on PostgreSQL (databases of this test's own names), warmed up, the
    quick spike run on both sites: its report section, through JSON."""
    from bench.storm.stack import Stack

    reason = stack_unavailable()
    if reason is not None:
        pytest.skip(reason)
    names = pytest.MonkeyPatch()
    for site in ("guarded", "naive"):
        names.setitem(databases.NAMES, site, f"wechat_oauth_test_storm_spike_{site}_{os.getpid()}")
    args = parse_args(["--quick", "--kind", "mp", "--only", "spike"])
    try:
        with Stack(database("postgres"), tmp_path_factory.mktemp("storm-spike"), latency=0.08) as stack:
            storm = Storm(args, stack, lambda *parts: None)
            storm.warm_up()
            section = json.loads(json.dumps(spike.run_spike(storm)))
            yield stack, section
    finally:
        names.undo()


@pytest.mark.postgres
def test_the_spike_reports_both_sites_in_its_shape(quick_spike):
    stack, section = quick_spike
    assert section["logins_per_site"] == spike.QUICK_LOGINS and section["window_s"] == 1.0
    assert section["through_pgbouncer"] is False and section["server_threads_per_site"] == 32
    for site in ("guarded", "naive"):
        figures = section[site]
        assert figures["logins"] == spike.QUICK_LOGINS and figures["prepare_failed"] == 0
        assert figures["duplicated_logins"] == round(spike.QUICK_LOGINS * spike.DUPLICATE_SHARE)
        assert set(figures["by_pattern"]) == {"plain", *spike.DUPLICATE_PATTERNS}
        assert sum(p["logins"] for p in figures["by_pattern"].values()) == spike.QUICK_LOGINS
        assert set(figures["callback_ms"]) >= {"p50", "p99"}
        assert figures["callback_ms"]["n"] == spike.QUICK_LOGINS
        assert figures["exchanges_per_code"]["codes"] >= spike.QUICK_LOGINS
        # Every callback was sent (the window is the arrivals', not a timing target).
        assert figures["arrivals"]["late_ms"]["n"] == spike.QUICK_LOGINS
        db = figures["database"]
        assert db["samples"] > 10 and "sampler_error" not in db, db
        assert 0 < db["peak_connections"] <= 100
        assert db["peak_open_transactions"] <= db["peak_connections"]
        assert db["peak_idle_in_transaction"] <= db["peak_open_transactions"]
        assert set(figures["littles_law"]) >= {
            "rule",
            "estimate",
            "expected_peak",
            "measured_hold_ms_per_login",
        }
    # Callbacks reached the servers: the naive site exchanged some duplicated code again.
    assert section["naive"]["exchanges_per_code"]["max"] >= 2
    assert section["naive"]["database"]["peak_connections"] > 0
    # The fake's fixed latency is back after the spike.
    assert stack.fake._call("GET", "config")["latency"] == pytest.approx(0.08)


@pytest.mark.postgres
def test_in_the_spike_no_guarded_login_fails_and_every_code_is_exchanged_once(quick_spike):
    _, section = quick_spike
    guarded = section["guarded"]
    assert guarded["failed_logins"] == 0, guarded["failures"]
    assert guarded["exchanges_per_code"]["min"] == guarded["exchanges_per_code"]["max"] == 1
    assert guarded["exchanges_per_code"]["codes"] == spike.QUICK_LOGINS
    # The guarded site holds its transaction over the exchange: it was seen idle in one.
    assert guarded["database"]["peak_idle_in_transaction"] >= 1
    assert spike.target(section)["met"] is True


@pytest.mark.postgres
def test_the_docs_table_is_written_from_the_report(quick_spike):
    _, section = quick_spike
    report = {
        "when": "2026-01-01T00:00:00+00:00",
        "command": "python -m bench.storm --quick --only spike",
        "machine": {"cpus": 2, "databases": {"postgres": "15"}},
        "databases": {"postgres": {"loadavg_at_start": [1.0], "spike": section}},
    }
    table = spike.rst([report])
    assert table.startswith("Run of 2026-01-01 (direct;")
    assert ".. list-table::" in table and "guarded, direct" in table and "naive, direct" in table
    assert f"0 / {spike.QUICK_LOGINS}" in table
