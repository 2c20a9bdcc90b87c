"""The storm's per-phase profile (bench/storm/phases.py) on the smallest run: a few plain
logins of each site (the storm's guarded settings and its naive views), served in this process
by a threaded WSGI server with the storm sites' middleware (SQLCountMiddleware outermost,
ViewMarkMiddleware innermost) on PostgreSQL, on the fake WeChat. It checks the profile's shape
and that the phases' SQL adds up to the request's total as SQLCountMiddleware counts it: a
consistency check, no timing. The storm's own run is ``python -m bench.storm --only profile``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connections

from bench.storm import phases
from bench.storm.apps import APP_IDS
from bench.storm.patterns import SiteHandle
from tests.test_sqlite_default import Everything

pytestmark = [
    pytest.mark.bench,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

LOGINS = 3


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def _closing(handler: WSGIHandler):
    """The handler, closing this thread's connections after each request (as gunicorn's
    threads do at CONN_MAX_AGE 0), so none outlives the test."""

    def app(environ, start_response):
        try:
            return handler(environ, start_response)
        finally:
            connections.close_all()

    return app


@pytest.fixture
def serve(settings, pg_alias) -> Iterator:
    """Start a site on the current settings (the storm sites' middleware, every model on
    PostgreSQL): its base URL."""
    settings.DATABASE_ROUTERS = [Everything(pg_alias)]
    settings.STORM_COUNT_DATABASE = pg_alias
    settings.LOGIN_REDIRECT_URL = "/whoami/"
    settings.MIDDLEWARE = [
        "bench.storm.serverside.SQLCountMiddleware",
        *settings.MIDDLEWARE,
        "bench.storm.phases.ViewMarkMiddleware",
    ]
    servers: list[_Server] = []

    def start() -> str:
        server = make_server(
            "127.0.0.1", 0, _closing(WSGIHandler()), server_class=_Server, handler_class=_Quiet
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def guarded_site(serve, settings, fake) -> SiteHandle:
    app_id = APP_IDS["guarded"]["mp"]
    settings.ROOT_URLCONF = "bench.storm.guarded.urls"
    settings.WECHAT_OAUTH = {
        **{key: value for key, value in fake.settings().items() if key.endswith("_URL")},
        "DEFAULT_APP": "mp",
        "APPS": {"mp": {"KIND": "mp", "APP_ID": app_id, "APP_SECRET": fake.add_app(app_id)}},
    }
    url = serve()
    return SiteHandle("guarded", [url, url], fake.base_url)


def naive_site(serve, settings, fake) -> SiteHandle:
    app_id = APP_IDS["naive"]["mp"]
    settings.ROOT_URLCONF = "bench.storm.naive.urls"
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.startswith("wechat_oauth.")]
    settings.NAIVE_WECHAT = {
        "API_BASE_URL": fake.base_url,
        "APPS": {
            "mp": {
                "APP_ID": app_id,
                "APP_SECRET": fake.add_app(app_id),
                "SCOPE": "snsapi_base",
                "PAGE_URL": fake.authorize_url,
                "CALLBACK": "/wechat/callback/",
            }
        },
    }
    url = serve()
    return SiteHandle("naive", [url, url], fake.base_url)


def profiled(site: SiteHandle, *, floor: bool = False) -> dict:
    """The summary of LOGINS profiled mp logins on ``site`` (``floor``: inside the bare fence)."""
    return phases.summarise([phases.profile_login(site, "mp", index, floor=floor) for index in range(LOGINS)])


def check_shape(summary: dict, expected: set[str]) -> None:
    assert summary["logins"] == LOGINS
    assert summary["failed"] == 0, summary["failures"]
    assert set(summary["phases"]) >= expected
    assert set(summary["phases"]) <= set(phases.PHASES)
    for figures in summary["phases"].values():
        assert set(figures) == {"wall_ms", "cpu_ms", "sql", "redis_round_trips", "statements"}
        assert set(figures["wall_ms"]) == set(figures["cpu_ms"]) == {"p50", "p99"}
        assert figures["sql"]["median"] == len(figures["statements"])
    assert set(summary["request"]) >= {"callback_ms", "server_ms", "server_cpu_ms", "sql"}
    assert summary["phase_sql_adds_up"] is True


def test_the_guarded_callbacks_phases_add_up_to_its_sql_count(serve, settings, fake_wechat):
    site = guarded_site(serve, settings, fake_wechat)
    samples = [phases.profile_login(site, "mp", index) for index in range(LOGINS)]
    for sample in samples:
        assert "failed" not in sample, sample
        assert sum(row[2] for row in sample["phases"].values()) == sample["request_sql"] > 0
        assert sum(len(s) for s in sample["statements"].values()) == sample["request_sql"]
    summary = phases.summarise(samples)
    check_shape(
        summary,
        {"request", "state_check", "fence_claim", "upstream", "outcome_commit", "identity", "login_session"},
    )
    claim = summary["phases"]["fence_claim"]["statements"]
    assert claim[0] == "BEGIN" and "INSERT wechat_oauth_oauthcodeuse" in claim
    assert summary["phases"]["outcome_commit"]["statements"] == ["UPDATE wechat_oauth_oauthcodeuse", "COMMIT"]
    assert summary["phases"]["upstream"]["sql"]["max"] == 0


def test_the_naive_callback_has_only_its_own_phases(serve, settings, fake_wechat):
    site = naive_site(serve, settings, fake_wechat)
    samples = [phases.profile_login(site, "mp", index) for index in range(LOGINS)]
    summary = phases.summarise(samples)
    check_shape(summary, {"state_check", "upstream", "identity", "login_session", "response"})
    assert not {"fence_claim", "outcome_commit", "redis_front", "code_budget"} & set(summary["phases"])
    assert all(sample["request_sql"] == sum(r[2] for r in sample["phases"].values()) for sample in samples)


@pytest.fixture
def code_fence_table(pg_alias) -> Iterator[None]:
    """The floor's table (the naive site's one model; its app is not installed here)."""
    from bench.storm.naive.models import CodeFence

    with connections[pg_alias].schema_editor() as editor:
        editor.create_model(CodeFence)
    yield
    with connections[pg_alias].schema_editor() as editor:
        editor.delete_model(CodeFence)


def test_the_floor_is_the_naive_callback_inside_the_bare_fence(
    serve, settings, fake_wechat, code_fence_table
):
    site = naive_site(serve, settings, fake_wechat)
    plain, floor = profiled(site), profiled(site, floor=True)

    check_shape(
        floor, {"state_check", "fence_claim", "upstream", "outcome_commit", "identity", "login_session"}
    )
    assert floor["phases"]["fence_claim"]["statements"] == ["BEGIN", "INSERT naive_codefence"]
    assert floor["phases"]["outcome_commit"]["statements"] == ["UPDATE naive_codefence", "COMMIT"]
    assert floor["request"]["sql"]["median"] == plain["request"]["sql"]["median"] + 4
    assert {
        name: figures["statements"]
        for name, figures in floor["phases"].items()
        if name not in ("fence_claim", "outcome_commit")
    } == {name: figures["statements"] for name, figures in plain["phases"].items()}


def test_the_difference_is_the_floor_and_what_is_above_it(serve, settings, fake_wechat, code_fence_table):
    # One site at a time: both run on this process's settings.
    guarded = guarded_site(serve, settings, fake_wechat)
    summaries = {"guarded": profiled(guarded)}
    naive = naive_site(serve, settings, fake_wechat)
    summaries["naive"], summaries["floor"] = profiled(naive), profiled(naive, floor=True)

    gap = phases.difference(summaries)

    p50 = {site: summaries[site]["request"]["server_ms"]["p50"] for site in summaries}
    assert gap["server_p50_ms"] == p50
    assert gap["floor_ms"] == round(p50["floor"] - p50["naive"], 2)
    assert gap["above_floor_ms"] == round(p50["guarded"] - p50["floor"], 2)
    assert gap["guarded_over_floor"] == round(p50["guarded"] / p50["floor"], 3)
    above = gap["above_floor_by_phase"]
    # The guarded claim's statements are the bare fence's (its INSERT sets the wait bounds).
    assert above["fence_claim"]["sql"] == 0 and above["outcome_commit"]["sql"] == 0
    assert "redis_front" not in above or above["redis_front"]["sql"] == 0
    assert sum(row["sql"] for row in above.values()) == (
        summaries["guarded"]["request"]["sql"]["median"] - summaries["floor"]["request"]["sql"]["median"]
    )
    table = phases.rst(
        {
            "when": "2026-01-01T00:00:00+00:00",
            "profile": {
                "upstream_latency_ms": 0,
                "concurrency": 1,
                "logins_per_site_and_kind": LOGINS,
                "kinds": ["mp"],
                "mp": {**summaries, "difference": gap},
            },
        }
    )
    assert f"the floor {p50['floor']:.2f} ms" in table and "above it)." in table


def test_the_docs_table_is_written_from_the_report(serve, settings, fake_wechat):
    sites = {"guarded": guarded_site(serve, settings, fake_wechat)}
    profile = {
        "upstream_latency_ms": 0,
        "concurrency": 1,
        "logins_per_site_and_kind": 2,
        "kinds": ["mp"],
        "mp": {site: phases.summarise(phases.collect(sites, "mp", 2, concurrency=1)[site]) for site in sites},
    }
    table = phases.rst({"when": "2026-01-01T00:00:00+00:00", "machine": {"cpus": 2}, "profile": profile})
    assert table.startswith("Run of 2026-01-01")
    assert ".. list-table::" in table
    assert "fence claim" in table and "Needed for the guarantee?" in table
    assert "phases add up to the request's SQL count: yes" in table
