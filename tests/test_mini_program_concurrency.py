"""One ``wx.login()`` code POSTed to ``<app>/session/`` many times at once, on every database of
the run (``alias``: a SQLite file, PostgreSQL, MariaDB): from threads of one process, and from
separate server processes (``runserver``, tests/live_servers.py) sharing the database.

Every POST must get the same identity (openid, unionid, user id; the token names the same
account, though it carries its second of issue and may differ by that), WeChat's
``jscode2session`` must be called once, and the session_key kept must be that one call's (a
second call would have rotated it at the fake).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings as django_settings
from django.db import connections
from django.test import Client

from tests.concurrency import run_together, start_thread, wait_until
from tests.live_servers import LiveServer, running_servers
from tests.test_mini_program import MINI_APP_ID, SESSION, mini  # noqa: F401 (the fixture)
from tests.test_sqlite_default import Everything
from wechat_oauth.miniprogram import account_for_token, session_key_of
from wechat_oauth.models import OAuthCodeUse, WeChatAccount
from wechat_oauth.testing import openid_for, unionid_for

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.usefixtures("mini")]

#: How many POSTs of one code at once.
POSTS = 8
#: How long the fake WeChat takes to answer: every duplicate arrives while the first is in
#: flight (results are compared, never timed).
LATENCY = 0.3
#: A slow WeChat: the second server's POST arrives well inside the first one's exchange.
SLOW = 2.0
TIMEOUT = 30


@pytest.fixture
def on(settings, alias: str) -> str:
    """Every query of this process (the views included) on ``alias``."""
    settings.DATABASE_ROUTERS = [Everything(alias)]
    return alias


def post_here(code: str) -> tuple[int, str, Any]:
    """POST ``code`` through this process's Django: (status, content type, JSON body)."""
    response = Client(raise_request_exception=False).post(
        SESSION, data=json.dumps({"code": code}), content_type="application/json"
    )
    return response.status_code, response["Content-Type"], json.loads(response.content)


def post_to(server: LiveServer, code: str) -> tuple[int, str, Any]:
    """POST ``code`` to a server process, as a Mini Program's wx.request does."""
    response = requests.post(f"{server.url}{SESSION}", json={"code": code}, timeout=TIMEOUT)
    return response.status_code, response.headers["Content-Type"], response.json()


def assert_one_identity_from_one_call(
    answers: list[tuple[int, str, Any]], fake, code: str, person: str, alias: str
) -> None:
    assert [(status, kind) for status, kind, _ in answers] == [(200, "application/json")] * len(answers), (
        answers
    )
    bodies = [body for _, _, body in answers]
    account = WeChatAccount.objects.using(alias).get()
    assert {(body["openid"], body["unionid"], body["user_id"]) for body in bodies} == {
        (openid_for(MINI_APP_ID, person), unionid_for(person), account.user_id)
    }
    assert {account_for_token(body["token"]).pk for body in bodies} == {account.pk}
    assert fake.exchange_calls(code) == 1
    assert fake.calls("jscode2session") == 1
    assert session_key_of(account) == fake.session_key_of(MINI_APP_ID, account.openid)
    assert session_key_of(account)
    assert OAuthCodeUse.objects.using(alias).get().duplicates == len(answers) - 1


# -- threads of this process ------------------------------------------------------------------


def test_posts_of_one_code_from_threads_at_once_get_one_identity_from_one_call(fake_wechat, on):
    fake_wechat.set_latency(LATENCY)
    code = fake_wechat.issue_js_code(MINI_APP_ID, person="alice")

    results = run_together([partial(post_here, code) for _ in range(POSTS)], TIMEOUT)

    assert [kind for kind, _ in results] == ["ok"] * POSTS, results
    assert_one_identity_from_one_call([value for _, value in results], fake_wechat, code, "alice", on)


def test_a_post_after_the_burst_gets_the_same_identity_without_a_call(fake_wechat, on):
    fake_wechat.set_latency(LATENCY)
    code = fake_wechat.issue_js_code(MINI_APP_ID, person="bob")

    burst = [value for _, value in run_together([partial(post_here, code)] * 3, TIMEOUT)]
    later = post_here(code)

    assert_one_identity_from_one_call([*burst, later], fake_wechat, code, "bob", on)


# -- server processes -------------------------------------------------------------------------


@contextmanager
def servers_on(alias: str, names: str, log_dir: Path) -> Iterator[dict[str, LiveServer]]:
    """Server processes named by the letters of ``names``, all on ``alias``'s test database
    and this test's WECHAT_OAUTH (the fake's Mini Program included)."""
    config = {
        "database": dict(connections[alias].settings_dict),
        "wechat_oauth": django_settings.WECHAT_OAUTH,
    }
    with running_servers(list(names), config, log_dir) as servers:
        yield servers


def test_posts_of_one_code_to_three_server_processes_at_once_get_one_identity_from_one_call(
    fake_wechat, on, tmp_path
):
    fake_wechat.set_latency(LATENCY)
    code = fake_wechat.issue_js_code(MINI_APP_ID, person="carol")

    with servers_on(on, "ABC", tmp_path) as servers:
        targets = [servers[name] for name in "ABCABCAB"[:POSTS]]
        results = run_together([partial(post_to, server, code) for server in targets], TIMEOUT)
        logs = {name: server.log_text() for name, server in servers.items()}

    assert [kind for kind, _ in results] == ["ok"] * POSTS, (results, logs)
    assert_one_identity_from_one_call([value for _, value in results], fake_wechat, code, "carol", on)


def test_a_second_server_asked_while_wechat_is_slow_answers_as_the_first(fake_wechat, on, tmp_path):
    """Server A's call to WeChat is in flight (WeChat takes SLOW seconds) when the Mini Program
    retries at server B: B waits for A's exchange and answers the same identity."""
    fake_wechat.set_latency(SLOW)
    code = fake_wechat.issue_js_code(MINI_APP_ID, person="dan")

    with servers_on(on, "AB", tmp_path) as servers:
        first, first_outcome = start_thread(partial(post_to, servers["A"], code))
        wait_until(lambda: fake_wechat.exchange_calls(code) == 1)  # A is waiting for WeChat
        a_in_flight = first.is_alive()
        second = post_to(servers["B"], code)
        first.join(TIMEOUT)

    assert a_in_flight, "A had its answer before B was asked: nothing was concurrent"
    assert first_outcome and first_outcome[0][0] == "ok", first_outcome
    answers = [first_outcome[0][1], second]
    without_token = [{key: value for key, value in body.items() if key != "token"} for _, _, body in answers]
    assert without_token[0] == without_token[1]
    assert_one_identity_from_one_call(answers, fake_wechat, code, "dan", on)
