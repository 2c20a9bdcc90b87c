"""``python -m bench.tables``: the docs' micro-benchmark tables are written from a real run of
``python -m bench`` (its quick exchange and front suites, against PostgreSQL and Redis), with
the figures of that run in their cells and the suites' own targets beside them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench import tables
from tests.live_servers import ROOT

pytestmark = [pytest.mark.bench, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    command = [sys.executable, "-m", "bench", "--quick", "--only", "exchange", "--only", "front"]
    command += ["--results", str(folder)]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}  # bench.settings
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    return json.loads((folder / "latest.json").read_text())


def _cells(text):
    lines = (line.strip() for line in text.splitlines())
    return [line.removeprefix("* - ").removeprefix("- ") for line in lines if line.startswith(("* - ", "- "))]


def test_the_tables_of_the_suites_run_hold_their_figures(quick_run):
    written = tables.includes(quick_run)
    assert sorted(written) == ["micro-exchange.inc", "micro-front.inc"]  # no purge in this run
    exchange, front = quick_run["exchange"], quick_run["front"]
    cells = _cells(written["micro-exchange.inc"])
    assert f"{exchange['bare_exchange_code_ms']['p50']:.2f} ms" in cells
    assert f"{exchange['overhead_ms']['p99']:.2f} ms" in cells
    assert f"{exchange['waiting_duplicate_wakeup_after_commit_ms']['p50']:.2f} ms" in cells
    cells = _cells(written["micro-front.inc"])
    assert f"{front['late_duplicate_ms']['with_front']['p50']:.2f} ms" in cells
    assert f"{front['first_request_extra_cost_of_front_ms_p50']:.2f} ms" in cells
    assert "Late duplicate, Redis front (0 SQL statements)" in cells


def test_each_table_says_whether_its_suites_targets_were_met(quick_run):
    for target, text in tables.includes(quick_run).items():
        suite = quick_run[target.removeprefix("micro-").removesuffix(".inc")]
        verdict = "met." if suite["targets_met"] else "**not met**."
        assert text.rstrip().endswith(verdict), target
        assert text.startswith(f"*Run of {quick_run['when'][:10]}")


def test_the_command_writes_the_includes_it_has_figures_for(quick_run, tmp_path):
    run = tmp_path / "latest.json"
    run.write_text(json.dumps(quick_run))
    assert tables.main([str(run), "--out-dir", str(tmp_path)]) == 0
    for target, text in tables.includes(quick_run).items():
        assert (tmp_path / target).read_text() == text
    assert not (tmp_path / "purge-admin.inc").exists()
