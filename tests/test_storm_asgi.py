"""The storm under ASGI (``python -m bench.storm --asgi``): its command line and settings
plumbing, and the storm's own stack (gunicorn with uvicorn workers, the fake WeChat under
uvicorn) on PostgreSQL through every Official Account pattern, and a worker killed while it
holds an exchange.

The served tests need PostgreSQL (marker ``postgres``), ``redis-server`` on the PATH, gunicorn
and uvicorn-worker (the ``test`` extra); they skip, saying which, otherwise. Their databases
have names of their own, so a ``python -m bench.storm`` running beside them is not disturbed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.util import find_spec
from typing import Any

import pytest
import requests

from bench.storm import databases, faults
from bench.storm.__main__ import parse_args
from bench.storm.apps import APP_IDS
from bench.storm.databases import SQLite, database
from bench.storm.passes import Storm
from bench.storm.services import ROOT, Instance, site_environment
from bench.storm.serving import ASGI_APPLICATION, ASGI_WORKER
from tests.storm_checks import assert_no_guarded_login_failed_and_every_code_exchanged_once

pytestmark = pytest.mark.bench

# -- the command line and the settings -------------------------------------------------------


def test_asgi_and_async_views_are_asked_for_and_wsgi_stays_the_default():
    default = parse_args([])
    assert (default.server, default.async_views) == ("wsgi", None)
    assert parse_args(["--asgi"]).server == "asgi"
    assert parse_args(["--asgi", "--async-views"]).async_views is True
    assert parse_args(["--sync-views"]).async_views is False
    with pytest.raises(SystemExit):
        parse_args(["--async-views", "--sync-views"])
    with pytest.raises(SystemExit):  # a library site's settings are its own
        parse_args(["--library", "social", "--async-views"])


def test_an_asgi_instance_runs_uvicorn_workers_on_the_asgi_module(tmp_path, monkeypatch):
    started: list[list[str]] = []
    monkeypatch.setattr(subprocess, "Popen", lambda command, **kw: started.append(command))
    Instance("guarded", "A", {}, tmp_path / "a.log", server="asgi").start()
    Instance("guarded", "B", {}, tmp_path / "b.log", threads=5).start()
    asgi, wsgi = started
    assert asgi[3] == ASGI_APPLICATION and asgi[asgi.index("--worker-class") + 1] == ASGI_WORKER
    assert "--threads" not in asgi
    assert wsgi[3] == "bench.storm.wsgi:application"
    assert wsgi[wsgi.index("--worker-class") + 1 : wsgi.index("--threads") + 2] == [
        "gthread",
        "--threads",
        "5",
    ]


def guarded_wechat_oauth(env: dict[str, str]) -> dict[str, Any]:
    """WECHAT_OAUTH of the storm's guarded site, as its settings module builds it from ``env``."""
    script = (
        "import json, bench.storm.guarded.settings as s; "
        "print(json.dumps({'has': 'ASYNC_VIEWS' in s.WECHAT_OAUTH, "
        "'value': s.WECHAT_OAUTH.get('ASYNC_VIEWS')}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("async_views", "expected"),
    [
        (True, {"has": True, "value": True}),
        (False, {"has": True, "value": False}),
        (None, {"has": False, "value": None}),  # the app's default (automatic)
    ],
)
def test_async_views_reach_the_guarded_sites_wechat_oauth(async_views, expected, tmp_path):
    env = site_environment(
        "guarded",
        SQLite(tmp_path),
        fake_url="http://127.0.0.1:1",
        app_secrets=dict.fromkeys(APP_IDS["guarded"], "s"),
        redis_url="",
        async_views=async_views,
    )
    assert env.get("STORM_ASYNC_VIEWS") == {True: "1", False: "0", None: None}[async_views]
    assert guarded_wechat_oauth(env) == expected


# -- the stack under ASGI --------------------------------------------------------------------


def stack_unavailable() -> str | None:
    """Why the storm's stack cannot run here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is not on the PATH (the storm starts a private one)"
    for module, package in (
        ("gunicorn", "gunicorn"),
        ("uvicorn_worker", "uvicorn-worker"),
        ("uvicorn", "uvicorn"),
    ):
        if find_spec(module) is None:
            return f"{package} is not installed (pip install -e '.[test]')"
    return database("postgres").unavailable()


@pytest.fixture(scope="module")
def asgi_storm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Storm, dict[str, Any]]]:
    """The storm's stack under ASGI on PostgreSQL (databases of this test's own names), warmed
    up, with every Official Account pattern run once: 2 logins per pattern and site; and the
    report's figures of those patterns, through JSON."""
    from bench.storm.stack import Stack

    reason = stack_unavailable()
    if reason is not None:
        pytest.skip(reason)
    names = pytest.MonkeyPatch()
    for site in ("guarded", "naive"):
        names.setitem(databases.NAMES, site, f"wechat_oauth_test_storm_asgi_{site}_{os.getpid()}")
    args = parse_args(["--asgi", "--kind", "mp", "--logins", "11", "--only", "patterns"])
    try:
        with Stack(
            database("postgres"), tmp_path_factory.mktemp("storm-asgi"), latency=0.08, server=args.server
        ) as stack:
            storm = Storm(args, stack, lambda *parts: None)
            storm.warm_up()
            figures = json.loads(json.dumps(storm.patterns()))
            yield stack, storm, figures
    finally:
        names.undo()


@pytest.mark.postgres
def test_both_sites_and_the_fake_are_served_by_uvicorn(asgi_storm):
    stack, _, _ = asgi_storm
    for site in ("guarded", "naive"):
        for instance in stack.instances[site]:
            assert len(instance.worker_pids()) == 2
            assert requests.get(f"{instance.url}/whoami/", timeout=5).headers["server"] == "uvicorn"
    assert requests.get(f"{stack.fake.base_url}/", timeout=5).headers["server"] == "uvicorn"


@pytest.mark.postgres
def test_under_asgi_no_guarded_login_fails_and_every_code_is_exchanged_once(asgi_storm):
    stack, storm, _ = asgi_storm
    assert_no_guarded_login_failed_and_every_code_exchanged_once(stack, storm)
    by_pattern = storm.runs["mp"]
    # The duplicates really reached the servers: the naive site fails them.
    naive_failed = sum(
        login.failed
        for pattern in ("abort_resend", "parallel_5", "refresh")
        for run in by_pattern[pattern]["naive"]
        for login in run.logins
    )
    assert naive_failed >= 3
    assert storm.logs_after_patterns["guarded"]["tracebacks"] == 0


@pytest.mark.postgres
def test_the_docs_table_is_written_from_the_report(asgi_storm):
    from bench.storm import tables

    stack, storm, figures = asgi_storm
    instances, workers = len(stack.instances["guarded"]), stack.workers
    report = {
        "setup": {"instances": instances, "workers": workers},
        "when": "2026-01-01T00:00:00+00:00",
        "command": "python -m bench.storm --quick --asgi",
        "server": "asgi",
        "async_views": None,
        "machine": {"cpus": 2},
        "databases": {"postgres": {"server": "asgi", "database": {"version": "15"}, "patterns": figures}},
    }
    table = tables.rst([report])
    assert table is not None
    assert table.startswith("*Run of 2026-01-01 00:00 UTC,* ``python -m bench.storm --quick --asgi``")
    assert "uvicorn workers (ASGI), the views ASYNC_VIEWS picks" in table
    assert f"{instances} instances x {workers} workers per site" in table
    rows = [  # after the header row: each row's cells
        [line.strip().removeprefix("- ") for line in row.strip().splitlines()]
        for row in table.split("   * - ")[2:]
    ]
    assert [row[1] for row in rows] == [f"``{name}``" for name in storm.runs["mp"]]
    for row in rows:  # guarded / naive: no guarded login failed, one exchange per code
        assert row[0] == "mp" and row[2].startswith("0 of 2 / ") and row[3].startswith("1 / "), row
    assert tables.rst([{"databases": {"postgres": {"spike": {}}}}]) is None
    # The layout is the report's, not the writer's: a stack of another shape says so.
    report["setup"] = {"instances": 3, "workers": 5}
    assert "3 instances x 5 workers per site" in (tables.rst([report]) or "")


@pytest.mark.postgres
def test_a_uvicorn_worker_killed_holding_an_exchange_is_replaced_and_no_500_reaches_a_user(asgi_storm):
    stack, _, _ = asgi_storm
    before = {instance.name: instance.worker_pids() for instance in stack.instances["guarded"]}
    record = faults.worker_kill_round(stack, 0, label="kill_asgi")
    assert "not_run" not in record, record
    assert record["http_500_reached_a_user"] == 0, record
    assert record["exchanges_of_code"] == 1 or record["second_exchange_after_holder_died_ended_spent"]
    killed = record["killed_worker"].removeprefix("instance ")
    after = {instance.name: instance.worker_pids() for instance in stack.instances["guarded"]}
    assert len(after[killed]) == 2 and after[killed] != before[killed]  # the master replaced it
