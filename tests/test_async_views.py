"""The async views under Django's ASGI handler: the same logins, duplicates and errors as the
sync views, each code exchanged once, and an exchange that outlives its cancelled request.

Requests go through ``AsyncClient`` (Django's ASGI request handler, in an event loop) or, for
cancellation, straight through ``ASGIHandler`` with a client that hangs up mid-exchange, as
WeChat's in-app browser does with the first callback. The fake WeChat is the real local one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from django.core.handlers.asgi import ASGIHandler
from django.test import AsyncClient, Client
from django.urls import resolve

from tests.concurrency import run_together
from tests.test_mini_program import MINI_APP_ID
from tests.test_mini_program import mini as mini
from tests.test_wecom import WECOM_UA, approve
from tests.test_wecom import corp as corp
from wechat_oauth import async_views, views
from wechat_oauth.guard import aexchange_once, async_exchange, exchange_once
from wechat_oauth.models import OAuthCodeUse, WeChatAccount
from wechat_oauth.testing import openid_for
from wechat_oauth.testing.wechat_client import WECHAT_USER_AGENT

pytestmark = pytest.mark.django_db(transaction=True)

RESENT = "&uin=MTMyMjE0NDU%3D&key=63e987ba88ddfb44&pass_ticket=SISrTjV8ln27168AZM%2FsFXkc2yp5i2lm"


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(main())


async def authorize(client: AsyncClient, openid: str, start: str = "/wechat/login/?next=/whoami/") -> str:
    """Start a login (async login view) and let the fake WeChat approve it: the callback path."""
    response = await client.get(start)
    assert response.status_code == 302, response.content
    url = response["Location"].split("#", 1)[0] + f"&fake_openid={openid}"
    approved = await asyncio.to_thread(requests.get, url, allow_redirects=False, timeout=5)
    assert approved.status_code == 302, approved.text
    return approved.headers["Location"].replace("http://testserver", "")


def tab_of(browser: AsyncClient) -> AsyncClient:
    """Another request of the same browser: its own client, the same cookies."""
    tab = AsyncClient()
    tab.cookies = SimpleCookie(browser.cookies)
    return tab


async def whoami(client: AsyncClient) -> dict[str, Any]:
    return json.loads((await client.get("/whoami/")).content)


# -- which views serve a request -----------------------------------------------------------


def test_a_request_in_an_event_loop_gets_the_async_views_and_wsgi_the_sync_ones():
    assert resolve("/wechat/callback/").func is views.callback

    async def resolved() -> Any:
        return resolve("/wechat/callback/").func, resolve("/wechat/mini/session/").func

    assert run(resolved) == (async_views.callback, async_views.session)


@pytest.mark.parametrize("choice, expected", [(True, async_views.callback), (False, views.callback)])
def test_async_views_setting_forces_one_kind(settings, choice, expected):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "ASYNC_VIEWS": choice}

    async def resolved() -> Any:
        return resolve("/wechat/callback/").func

    assert run(resolved) is expected
    assert resolve("/wechat/callback/").func is expected


# -- logins --------------------------------------------------------------------------------


def test_async_callback_logs_the_user_in(fake_wechat):
    async def main() -> tuple[Any, dict[str, Any]]:
        browser = AsyncClient()
        response = await browser.get(await authorize(browser, "o_async"))
        return response, await whoami(browser)

    response, me = run(main)

    assert response.status_code == 302 and response["Location"] == "/whoami/"
    assert me == {"user": "wx_o_async", "openid": "o_async", "path": "/whoami/"}
    assert OAuthCodeUse.objects.get().status == "exchanged"


def test_duplicates_at_once_share_one_exchange_and_all_end_logged_in(fake_wechat):
    fake_wechat.set_latency(0.2)

    async def main() -> tuple[list[Any], str]:
        browser = AsyncClient()
        callback = await authorize(browser, "o_twins")
        tabs = [tab_of(browser) for _ in range(6)]
        responses = await asyncio.gather(
            *(tab.get(callback + (RESENT if i % 2 else "")) for i, tab in enumerate(tabs))
        )
        return list(responses), callback

    responses, callback = run(main)

    assert [r.status_code for r in responses] == [302] * 6
    assert {r["Location"] for r in responses} == {"/whoami/"}
    code = callback.split("code=")[1].split("&")[0]
    assert fake_wechat.exchange_calls(code) == 1
    row = OAuthCodeUse.objects.get()
    assert row.duplicates == 5 and row.status == "exchanged"
    assert WeChatAccount.objects.count() == 1


def test_a_refresh_after_the_login_goes_on_without_a_new_exchange(fake_wechat):
    async def main() -> Any:
        browser = AsyncClient()
        callback = await authorize(browser, "o_refresh")
        await browser.get(callback)
        return await browser.get(callback)

    assert run(main)["Location"] == "/whoami/"
    assert fake_wechat.calls("access_token") == 1


def test_a_spent_code_restarts_the_login_once(fake_wechat):
    code = fake_wechat.issue_code("o_spent")
    exchange_once(code)  # spent elsewhere, by another login attempt

    async def main() -> Any:
        browser = AsyncClient()
        callback = await authorize(browser, "o_spent")
        state = callback.split("state=")[1].split("&")[0]
        return await browser.get(
            f"/wechat/callback/?{urlencode({'next': '/whoami/'})}&code={code}&state={state}"
        )

    response = run(main)

    assert response.status_code == 302
    assert response["Location"].startswith(fake_wechat.authorize_url)


def test_bad_input_gets_the_error_page_not_a_500(fake_wechat):
    async def main() -> Any:
        return await AsyncClient().get("/wechat/callback/?code=abc&state=forged")

    response = run(main)

    assert response.status_code == 400
    assert OAuthCodeUse.objects.count() == 0 and fake_wechat.calls("access_token") == 0


def test_mini_program_session_duplicates_share_one_jscode2session(mini):
    mini.set_latency(0.2)
    code = mini.issue_js_code(MINI_APP_ID, person="carol")

    async def main() -> list[Any]:
        return list(
            await asyncio.gather(
                *(
                    AsyncClient().post(
                        "/wechat/mini/session/", {"code": code}, content_type="application/json"
                    )
                    for _ in range(4)
                )
            )
        )

    responses = run(main)

    answers = [json.loads(r.content) for r in responses]
    assert [r.status_code for r in responses] == [200] * 4, answers
    assert {a["openid"] for a in answers} == {openid_for(MINI_APP_ID, "carol")}
    assert mini.exchange_calls(code) == 1
    assert OAuthCodeUse.objects.get().duplicates == 3


def test_mini_program_session_refuses_a_get_with_json(mini):
    async def main() -> Any:
        return await AsyncClient().get("/wechat/mini/session/")

    response = run(main)

    assert response.status_code == 405 and json.loads(response.content)["error"]


# -- the async guard next to the sync one --------------------------------------------------


def test_sync_and_async_callers_of_one_code_share_one_exchange(fake_wechat):
    """A WSGI and an ASGI server on one database: the same fence, the same outcome."""
    fake_wechat.set_latency(0.2)
    code = fake_wechat.issue_code("o_mixed")

    def in_an_event_loop() -> list[Any]:
        async def main() -> list[Any]:
            return list(await asyncio.gather(*(aexchange_once(code) for _ in range(3))))

        return asyncio.run(main())

    outcomes = run_together([lambda: [exchange_once(code)]] * 3 + [in_an_event_loop] * 2)

    exchanges = [exchange for kind, value in outcomes for exchange in value]
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    assert len(exchanges) == 9 and sum(not e.duplicate for e in exchanges) == 1
    assert {e.token.access_token for e in exchanges} == {exchanges[0].token.access_token}
    assert fake_wechat.exchange_calls(code) == 1


# -- cancellation ------------------------------------------------------------------------------


async def callback_then_hang_up(
    url: str, cookies: SimpleCookie, hang_up: Callable[[], bool]
) -> list[dict[str, Any]]:
    """GET ``url`` through Django's ASGI handler with ``cookies``; once ``hang_up()`` is true,
    the client disconnects (ASGI ``http.disconnect``). What the handler sent."""
    path, _, query = url.partition("?")
    cookie = "; ".join(f"{morsel.key}={morsel.coded_value}" for morsel in cookies.values())
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"cookie", cookie.encode()),
            (b"user-agent", WECHAT_USER_AGENT.encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        while not hang_up():
            await asyncio.sleep(0.005)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await ASGIHandler()(scope, receive, send)
    return sent


def first_callback_cancelled_then_duplicate(fake_wechat: Any) -> tuple[list[dict[str, Any]], Any]:
    """WeChat's pattern under ASGI: the first callback's client hangs up while WeChat is still
    answering its exchange; the re-sent duplicate comes after. The first request's sent
    messages, and the duplicate's response."""

    async def main() -> tuple[list[dict[str, Any]], Any]:
        browser = AsyncClient()
        callback = await authorize(browser, "o_cancelled")
        code = callback.split("code=")[1].split("&")[0]
        fake_wechat.add_fault(endpoint="access_token", delay=0.4, code=code)
        sent = await callback_then_hang_up(
            callback, browser.cookies, lambda: fake_wechat.exchange_calls(code) == 1
        )
        await asyncio.sleep(0.6)  # WeChat answered the first request's exchange meanwhile
        return sent, await browser.get(callback + RESENT, headers={"User-Agent": WECHAT_USER_AGENT})

    return run(main)


def test_an_exchange_outlives_its_cancelled_request_and_the_duplicate_is_logged_in(fake_wechat):
    sent, duplicate = first_callback_cancelled_then_duplicate(fake_wechat)

    assert not [m for m in sent if m["type"] == "http.response.start"]  # the view was cancelled
    assert duplicate.status_code == 302 and duplicate["Location"] == "/whoami/"
    row = OAuthCodeUse.objects.get()
    assert row.status == "exchanged" and row.duplicates == 1
    assert fake_wechat.calls("access_token") == 1
    assert WeChatAccount.objects.get().openid == "o_cancelled"


def test_without_the_exchange_loop_the_cancelled_request_loses_the_code(fake_wechat, monkeypatch):
    """The test above can fail: running the claim in the request's own task (no shield, no
    exchange loop) lets the cancellation roll the claim back after WeChat spent the code."""

    async def in_the_request_task(coroutine: Any) -> Any:
        return await coroutine

    monkeypatch.setattr(async_exchange, "run_on_exchange_loop", in_the_request_task)

    _sent, duplicate = first_callback_cancelled_then_duplicate(fake_wechat)

    assert duplicate.status_code != 302 or duplicate["Location"] != "/whoami/"
    assert not OAuthCodeUse.objects.filter(status="exchanged").exists()


def test_sync_client_still_gets_the_sync_callback(fake_wechat):
    client = Client()
    response = client.get("/wechat/login/?next=/whoami/")
    assert response.status_code == 302
    assert resolve("/wechat/login/").func is views.login


def test_without_httpx_the_automatic_choice_stays_on_the_sync_views(monkeypatch):
    from wechat_oauth import urls

    monkeypatch.setattr(urls, "_httpx_installed", lambda: False)

    async def resolved() -> Any:
        return resolve("/wechat/callback/").func

    assert run(resolved) is views.callback


def test_the_middleware_completes_a_callback_on_any_page_under_asgi(fake_wechat):
    async def main() -> tuple[Any, Any]:
        browser = AsyncClient()
        callback = await authorize(browser, "o_page", start="/page/login/")
        assert callback.startswith("/page/?x=1&code=")
        tabs = [tab_of(browser) for _ in range(3)]
        responses = await asyncio.gather(*(tab.get(callback + RESENT) for tab in tabs))
        return responses, await tabs[0].get("/page/?x=1")

    responses, page = run(main)

    assert [(r.status_code, r["Location"]) for r in responses] == [(302, "/page/?x=1")] * 3
    assert json.loads(page.content)["openid"] == "o_page"
    assert fake_wechat.calls("access_token") == 1


def test_a_wecom_login_under_asgi_shares_one_getuserinfo(corp):
    """A WeCom code goes through the sync guard, in a worker thread of the async view."""
    corp.set_latency(0.2)

    async def main() -> tuple[list[Any], str]:
        browser = AsyncClient()
        started = await browser.get("/wechat/corp/login/?next=/whoami/", headers={"User-Agent": WECOM_UA})
        callback = await asyncio.to_thread(approve, started["Location"], userid="zhouyi")
        tabs = [tab_of(browser) for _ in range(3)]
        return list(
            await asyncio.gather(*(tab.get(callback, headers={"User-Agent": WECOM_UA}) for tab in tabs))
        ), callback

    responses, callback = run(main)

    assert [r.status_code for r in responses] == [302] * 3
    assert corp.exchange_calls(callback.split("code=")[1].split("&")[0]) == 1
    assert WeChatAccount.objects.count() == 1
