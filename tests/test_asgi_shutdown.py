"""A server stopping while an exchange is in flight: its outcome is stored before the process
ends. Under uvicorn (SIGTERM, graceful) for a request its client has already cancelled; and a
plain Python process that exits normally. Real uvicorn, real PostgreSQL, the real fake
WeChat."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connections

from tests.concurrency import wait_until
from tests.live_servers import ROOT, Browser, LiveServer, Tally, on_server
from tests.services import CONFIG_VARIABLE, free_port
from wechat_oauth.hashing import code_hash
from wechat_oauth.models import OAuthCodeUse
from wechat_oauth.testing.wechat_client import send_unread

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases="__all__")]

#: How long the fake takes over the exchange: the server is stopped meanwhile.
EXCHANGE_DELAY = 1.5


def postgres_alias() -> str:
    return next(
        alias
        for alias, conf in settings.DATABASES.items()
        if conf["ENGINE"] == "django.db.backends.postgresql"
    )


@pytest.fixture
def uvicorn_server(request: pytest.FixtureRequest, fake_wechat: Any, tmp_path: Any) -> Iterator[LiveServer]:
    env = {"WECHAT_OAUTH_TEST_CANCEL_AT_ONCE": "1"} if getattr(request, "param", False) else {}
    server = LiveServer("asgi", free_port(), tmp_path / "uvicorn.log", asgi=True, env=env)
    database = dict(connections[postgres_alias()].settings_dict)
    server.start({"database": database, "wechat_oauth": {**settings.WECHAT_OAUTH, **fake_wechat.settings()}})
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def stop_during_the_exchange(server: LiveServer, fake: Any) -> str:
    """A login whose first callback is aborted by its client while WeChat is still answering
    its exchange; then SIGTERM, and wait for uvicorn to exit. The code."""
    browser = Browser(Tally("shutdown"))
    callback = browser.authorize(browser.start_login(server), "o_shutdown")
    code = browser.tally.code_of(callback)
    fake.add_fault(endpoint="access_token", delay=EXCHANGE_DELAY, code=code)
    connection = send_unread(on_server(callback, server), browser.session.cookies)
    wait_until(lambda: fake.exchange_calls(code) == 1)
    connection.close()  # the client hangs up while WeChat is still answering
    time.sleep(0.2)  # uvicorn tells Django, which cancels the request
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=EXCHANGE_DELAY + 10)
    return code


def test_a_stopping_server_completes_the_exchange_of_a_cancelled_request(uvicorn_server, fake_wechat):
    code = stop_during_the_exchange(uvicorn_server, fake_wechat)

    row = OAuthCodeUse.objects.using(postgres_alias()).get(code_hash=code_hash(code))
    assert row.status == "exchanged", uvicorn_server.log_text()[-3000:]
    assert fake_wechat.exchange_calls(code) == 1


@pytest.mark.parametrize("uvicorn_server", [True], indirect=True, ids=["cancelled at once"])
def test_a_cancelled_request_that_returns_at_once_lets_the_exchange_die_with_the_server(
    uvicorn_server, fake_wechat
):
    """The control: the test above fails when a cancelled request does not wait for the
    exchange it started (uvicorn then exits, by its signal, with the exchange in flight)."""
    code = stop_during_the_exchange(uvicorn_server, fake_wechat)

    assert (
        not OAuthCodeUse.objects.using(postgres_alias())
        .filter(code_hash=code_hash(code), status="exchanged")
        .exists()
    )


def test_a_process_that_exits_normally_waits_for_its_exchange_in_flight(fake_wechat, tmp_path):
    """The exchange loop's thread is a daemon: the exit's own wait (exchange_loop._drain) keeps
    the process alive until the claim has committed, on a claim thread that still takes work
    once the interpreter is shutting down (a ThreadPoolExecutor would refuse it)."""
    code = fake_wechat.issue_code("o_exiting")
    fake_wechat.add_fault(endpoint="access_token", delay=EXCHANGE_DELAY, code=code)
    database = dict(connections[postgres_alias()].settings_dict)
    config = {"database": database, "wechat_oauth": {**settings.WECHAT_OAUTH, **fake_wechat.settings()}}
    script = (
        "import django; django.setup()\n"
        "from wechat_oauth.guard import aexchange_once\n"
        "from wechat_oauth.guard.exchange_loop import exchange_loop\n"
        f"exchange_loop.submit(aexchange_once({code!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=EXCHANGE_DELAY + 20,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.server_settings",
            CONFIG_VARIABLE: json.dumps(config),
        },
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert "waiting for 1 exchange(s) in flight before exit" in done.stderr
    row = OAuthCodeUse.objects.using(postgres_alias()).get(code_hash=code_hash(code))
    assert row.status == "exchanged" and fake_wechat.exchange_calls(code) == 1
