"""The login flow as a browser sees it: login view -> fake WeChat -> callback -> logged in."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db import OperationalError, connections
from django.test import Client
from django.utils import timezone

from tests.concurrency import run_in_threads, run_together
from wechat_oauth import signals
from wechat_oauth.binding import fingerprint_of
from wechat_oauth.models import OAuthCodeUse, WeChatAccount
from wechat_oauth.testing.wechat_client import WECHAT_USER_AGENT

pytestmark = pytest.mark.django_db(transaction=True)

RESENT = "&uin=MTMyMjE0NDU%3D&key=63e987ba88ddfb44&pass_ticket=SISrTjV8ln27168AZM%2FsFXkc2yp5i2lm"


def authorize(
    client: Client, openid: str, *, start: str = "/wechat/login/?next=/whoami/", **fake: str
) -> str:
    """Start a login and let the fake WeChat approve it; the callback path WeChat sends back."""
    response = client.get(start)
    assert response.status_code == 302, response.content
    url = response["Location"].split("#", 1)[0]
    extra = "".join(f"&fake_{name}={value}" for name, value in {"openid": openid, **fake}.items())
    approved = requests.get(url + extra, allow_redirects=False, timeout=5)
    assert approved.status_code == 302, approved.text
    return approved.headers["Location"].replace("http://testserver", "")


def copy_of(browser: Client) -> Client:
    """Another request of the same browser: its own Client, the same cookies."""
    tab = Client()
    tab.cookies = browser.cookies.__class__(browser.cookies)
    return tab


def whoami(client: Client) -> dict:
    return client.get("/whoami/").json()


def assert_clean_redirect(response, to: str = "/whoami/") -> None:
    assert response.status_code == 302, response.content.decode()[:500]
    assert response["Location"] == to
    assert not {"code", "state", "uin", "key", "pass_ticket"} & set(parse_qs(urlsplit(to).query))


# -- the happy path ------------------------------------------------------------------------


def test_login_view_sends_the_browser_to_wechat_with_a_state_and_the_callback(client, fake_wechat):
    response = client.get("/wechat/login/?next=/whoami/")

    assert response.status_code == 302
    url = response["Location"]
    assert url.startswith(fake_wechat.authorize_url + "?appid=")
    assert url.endswith("#wechat_redirect")
    query = parse_qs(urlsplit(url.split("#")[0]).query)
    assert query["redirect_uri"] == ["http://testserver/wechat/callback/?next=%2Fwhoami%2F"]
    assert len(query["state"][0]) <= 128 and query["state"][0].isalnum()
    assert response["Cache-Control"].startswith("max-age=0")


def test_callback_logs_the_user_in_and_redirects_to_next(client, fake_wechat):
    callback = authorize(client, "o_alice")

    response = client.get(callback)

    assert_clean_redirect(response)
    assert whoami(client) == {"user": "wx_o_alice", "openid": "o_alice", "path": "/whoami/"}
    account = WeChatAccount.objects.get()
    assert (account.openid, account.user.username) == ("o_alice", "wx_o_alice")
    assert OAuthCodeUse.objects.get().status == "exchanged"


def test_duplicate_callback_with_wechat_resend_parameters_ends_logged_in(client, fake_wechat):
    callback = authorize(client, "o_bob")

    first = client.get(callback)
    second = client.get(callback + RESENT)

    assert_clean_redirect(first)
    assert_clean_redirect(second)
    assert whoami(client)["user"] == "wx_o_bob"
    code = parse_qs(urlsplit(callback).query)["code"][0]
    assert fake_wechat.exchange_calls(code) == 1
    row = OAuthCodeUse.objects.get()
    assert (row.duplicates, row.resent_variant_seen) == (1, True)


def test_unsafe_next_falls_back_to_login_redirect_url(client, fake_wechat, settings):
    settings.LOGIN_REDIRECT_URL = "/page/"
    callback = authorize(client, "o_carol", start="/wechat/login/?next=//evil.example/")

    assert_clean_redirect(client.get(callback), to="/page/")


def test_userinfo_is_fetched_once_for_snsapi_userinfo(client, fake_wechat, settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "SCOPE": "snsapi_userinfo"}
    callback = authorize(client, "o_dora", nickname="Dora")

    client.get(callback)
    client.get(callback + RESENT)

    assert fake_wechat.calls("userinfo") == 1
    account = WeChatAccount.objects.get()
    assert (account.nickname, account.scope) == ("Dora", "snsapi_userinfo")
    assert account.user.first_name == "Dora"


def test_duplicate_that_links_first_still_gets_the_profile(client, fake_wechat, settings):
    """The request the user sees is often a duplicate woken before the first one linked."""
    from wechat_oauth.guard import exchange_once

    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "SCOPE": "snsapi_userinfo"}
    callback = authorize(client, "o_dora2", nickname="Dora")
    query = parse_qs(urlsplit(callback).query)
    # The first request (from this browser, same login attempt) exchanged, but has not linked yet.
    exchange_once(
        query["code"][0],
        state=query["state"][0],
        fingerprint=fingerprint_of(client.cookies["wechat_oauth_binding"].value, ""),
    )

    assert_clean_redirect(client.get(callback + RESENT))

    assert get_user_model().objects.get().first_name == "Dora"
    assert WeChatAccount.objects.get().nickname == "Dora"
    assert fake_wechat.calls("userinfo") == 1


def test_snsapi_base_never_calls_userinfo(client, fake_wechat):
    client.get(authorize(client, "o_eve"))

    assert fake_wechat.calls("userinfo") == 0
    assert WeChatAccount.objects.get().nickname == ""


def test_unionid_links_a_second_app_to_the_same_user(client, fake_wechat, settings):
    client.get(authorize(client, "o_app1", unionid="u_frank"))
    other = WeChatAccount.objects.get()
    WeChatAccount.objects.filter(pk=other.pk).update(app_id="wxotherapp", openid="o_app0")

    second_browser = Client()
    second_browser.get(authorize(second_browser, "o_app1", unionid="u_frank"))

    assert get_user_model().objects.count() == 1
    assert WeChatAccount.objects.count() == 2


def test_wechat_login_signal_says_whether_the_account_is_new(client, fake_wechat):
    seen = []

    def receiver(sender, **kwargs):
        seen.append((kwargs["user"].username, kwargs["created"]))

    signals.wechat_login.connect(receiver)
    try:
        client.get(authorize(client, "o_gus"))
        client.get(authorize(client, "o_gus"))  # a second login of the same person
    finally:
        signals.wechat_login.disconnect(receiver)

    assert seen == [("wx_o_gus", True), ("wx_o_gus", False)]


# -- duplicates, races and refreshes -------------------------------------------------------


def test_two_codes_with_one_state_end_in_one_user(fake_wechat):
    browser = Client()
    start = browser.get("/wechat/login/?next=/whoami/")["Location"].split("#")[0]
    callbacks = [
        requests.get(start + "&fake_openid=o_hana", allow_redirects=False, timeout=5)
        .headers["Location"]
        .replace("http://testserver", "")
        for _ in range(2)
    ]
    assert callbacks[0] != callbacks[1]

    results = run_in_threads(2, lambda: copy_of(browser).get(callbacks.pop()))

    assert [value.status_code for _, value in results] == [302, 302]
    assert get_user_model().objects.count() == 1
    assert WeChatAccount.objects.count() == 1


def first_logins_at_once(openid: str, devices: int = 6) -> list:
    """One person logging in on ``devices`` browsers at once: each starts its own login, then
    all callbacks are released together; their outcomes."""
    callbacks = [(browser, authorize(browser, openid)) for browser in (Client() for _ in range(devices))]
    return run_together([partial(browser.get, callback) for browser, callback in callbacks])


def test_first_logins_of_one_new_openid_racing_create_one_user(fake_wechat):
    fake_wechat.set_latency(0.05)

    results = first_logins_at_once("o_ivan")

    assert all(kind == "ok" and value.status_code == 302 for kind, value in results), results
    assert get_user_model().objects.count() == 1
    assert WeChatAccount.objects.count() == 1


def test_concurrent_duplicates_from_one_cookie_all_end_logged_in(fake_wechat):
    fake_wechat.set_latency(0.2)
    browser = Client()
    browser.get("/whoami/")
    browser.session.save()  # the browser already has a session cookie, as a real one would
    callback = authorize(browser, "o_jill")

    def duplicate():
        tab = copy_of(browser)  # the same cookie jar, as sent by WeChat
        response = tab.get(callback)
        return response.status_code, whoami(tab)["user"]

    results = run_in_threads(3, duplicate)

    assert [value for _, value in results] == [(302, "wx_o_jill")] * 3
    assert fake_wechat.total_exchange_calls() == 1


def test_refresh_after_login_goes_to_next_without_an_error(client, fake_wechat):
    callback = authorize(client, "o_kim")
    client.get(callback)
    OAuthCodeUse.objects.update(first_seen_at=timezone.now() - timedelta(hours=1))

    assert_clean_redirect(client.get(callback))
    assert fake_wechat.total_exchange_calls() == 1


def test_refresh_by_another_browser_after_the_window_restarts_login_once(fake_wechat):
    """The other browser is WeChat's, without cookies: unbound, so allowed to try."""
    browser = Client()
    callback = authorize(browser, "o_lee")
    browser.get(callback)
    OAuthCodeUse.objects.update(first_seen_at=timezone.now() - timedelta(hours=1))
    stranger = Client(HTTP_USER_AGENT=WECHAT_USER_AGENT)

    restart = stranger.get(callback)

    assert restart.status_code == 302
    assert restart["Location"].startswith(fake_wechat.authorize_url)
    # The restarted login's own code is spent too (e.g. the same URL reopened later): the
    # loop guard shows the page instead of restarting again.
    again = requests.get(
        restart["Location"].split("#")[0] + "&fake_openid=o_lee", allow_redirects=False, timeout=5
    ).headers["Location"]
    again = again.replace("http://testserver", "")
    stranger.get(again)
    OAuthCodeUse.objects.update(first_seen_at=timezone.now() - timedelta(hours=1))
    final = Client(HTTP_USER_AGENT=WECHAT_USER_AGENT).get(again)
    assert final.status_code == 400
    assert b"already used" in final.content


# -- what the user sees when something is wrong --------------------------------------------


def _valid_callback(client) -> str:
    return authorize(client, "o_bad")


@pytest.mark.parametrize(
    "mangle, text",
    [
        (lambda cb: cb.replace("&code=", "&nocode="), b"did not allow"),  # consent refused
        (lambda cb: cb.replace("&state=", "&nostate="), b"not valid"),  # missing state
        (lambda cb: cb + "&code=again", b"not valid"),  # repeated code
        (lambda cb: cb + "&state=again", b"not valid"),  # repeated state
        (lambda cb: cb.replace("&code=", "&code=x" + "a" * 600), b"not valid"),  # oversized code
        (lambda cb: cb.replace("&code=", "&code=%E4%BD%A0"), b"not valid"),  # non-ASCII code
        (lambda cb: cb.split("&code=")[0] + "&code=&state=" + cb.split("&state=")[1], b"not valid"),
        (lambda cb: cb.replace("&state=2", "&state=3"), b"not valid"),  # forged state
        (lambda cb: cb.replace("next=%2Fwhoami%2F", "next=%2Fpage%2F"), b"not valid"),  # other next
    ],
)
def test_bad_callback_gets_a_400_page_and_nothing_is_stored(client, fake_wechat, mangle, text):
    bad = mangle(_valid_callback(client))

    response = client.get(bad)

    assert response.status_code == 400
    assert text in response.content
    assert b"/wechat/login/" in response.content  # a way to try again
    assert not OAuthCodeUse.objects.exists()
    assert not WeChatAccount.objects.exists()
    assert fake_wechat.total_exchange_calls() == 0


def test_expired_state_gets_a_400_page(client, fake_wechat, settings):
    callback = _valid_callback(client)
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "STATE_MAX_AGE": -120}

    response = client.get(callback)

    assert response.status_code == 400
    assert b"expired" in response.content
    assert fake_wechat.total_exchange_calls() == 0


def test_snapshot_user_gets_the_snapshot_page_and_no_account(client, fake_wechat):
    response = client.get(authorize(client, "o_snap", snapshot="1"))

    assert response.status_code == 200
    assert b"Open the full page" in response.content
    assert not WeChatAccount.objects.exists()
    assert get_user_model().objects.count() == 0


@pytest.mark.parametrize(
    "fault, status",
    [
        ({"errcode": -1}, 502),
        ({"status": 500, "body": "oops"}, 502),
        ({"errcode": 40125, "errmsg": "invalid appsecret"}, 503),
    ],
)
def test_upstream_failures_get_a_friendly_page(client, fake_wechat, fault, status):
    callback = _valid_callback(client)
    fake_wechat.add_fault("access_token", **fault)

    response = client.get(callback)

    assert response.status_code == status
    assert b"Log in again" in response.content


def test_wechat_answering_too_slowly_is_final_for_the_resent_duplicate(client, fake_wechat, settings):
    """WeChat may have spent the code on the request that timed out: the duplicate the user
    sees gets the same page, and the code is not sent a second time."""
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "TIMEOUT": (1.0, 0.3)}
    callback = _valid_callback(client)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    fake_wechat.add_fault("access_token", delay=1.0)

    first = client.get(callback)
    resent = client.get(callback + RESENT)

    assert (first.status_code, resent.status_code) == (502, 502)
    assert b"Log in again" in resent.content
    assert fake_wechat.exchange_calls(code) == 1


def test_database_down_gets_a_503_page(client, fake_wechat, monkeypatch):
    callback = _valid_callback(client)

    def database_gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("wechat_oauth.flow.exchange_once", database_gone)
    response = client.get(callback)

    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_database_outage_logs_its_traceback_once_then_a_line_per_login(
    client, fake_wechat, monkeypatch, caplog
):
    from wechat_oauth import responses
    from wechat_oauth.throttled_log import ThrottledLog

    monkeypatch.setattr(responses, "_database_down", ThrottledLog(responses.logger))

    def database_gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("wechat_oauth.flow.exchange_once", database_gone)
    statuses = [client.get(_valid_callback(client)).status_code for _ in range(3)]

    assert statuses == [503, 503, 503]
    records = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert [r.levelno for r in records] == [logging.ERROR] * 3
    assert [r.exc_info is not None for r in records] == [True, False, False]
    assert records[1].getMessage().endswith("OperationalError: server closed the connection unexpectedly")


def test_missing_backend_is_a_configuration_error_not_a_disabled_account(client, fake_wechat, settings):
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]

    response = client.get(_valid_callback(client))

    assert response.status_code == 503
    assert b"not available" in response.content


def test_refused_consent_with_a_forged_state_is_an_invalid_link(client, fake_wechat):
    callback = _valid_callback(client).replace("&code=", "&nocode=").replace("&state=2", "&state=3")

    response = client.get(callback)

    assert response.status_code == 400
    assert b"not valid" in response.content


def test_callback_pages_never_send_the_code_in_a_referer(client, fake_wechat):
    refused = client.get(_valid_callback(client).replace("&code=", "&nocode="))
    assert refused["Referrer-Policy"] == "no-referrer"


def test_inactive_user_gets_a_403_page(client, fake_wechat):
    client.get(authorize(client, "o_gone"))
    get_user_model().objects.update(is_active=False)

    response = client.get(authorize(client, "o_gone"))

    assert response.status_code == 403


def test_error_page_speaks_simplified_chinese(client, fake_wechat):
    callback = _valid_callback(client).replace("&code=", "&nocode=")

    response = client.get(callback, HTTP_ACCEPT_LANGUAGE="zh-hans")

    page = response.content.decode()
    assert response.status_code == 400
    assert "已取消登录" in page and "您没有在微信中同意授权登录。" in page


def test_error_page_template_can_be_overridden(client, fake_wechat, settings, tmp_path):
    (tmp_path / "wechat_oauth").mkdir()
    (tmp_path / "wechat_oauth" / "error.html").write_text("SITE ERROR PAGE {{ error_key }}")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]

    response = client.get(_valid_callback(client).replace("&code=", "&nocode="))

    assert response.content == b"SITE ERROR PAGE consent_refused"


# -- the middleware ------------------------------------------------------------------------


@pytest.fixture
def atomic_requests(monkeypatch):
    """The site sets ATOMIC_REQUESTS = True on its database: every view runs in a transaction."""
    monkeypatch.setitem(connections["default"].settings_dict, "ATOMIC_REQUESTS", True)


@pytest.mark.parametrize(
    "start, lands_on",
    [
        ("/wechat/login/?next=/whoami/", "/whoami/"),  # the callback view
        ("/page/login/", "/page/?x=1"),  # the middleware, on a page of the site
    ],
    ids=["callback view", "middleware"],
)
def test_atomic_requests_site_logs_in_with_one_exchange_per_code(
    client, fake_wechat, atomic_requests, start, lands_on
):
    """The exchange must commit on its own: the callback view opts out of the request's
    transaction, and the middleware runs before any view's transaction begins."""
    callback = authorize(client, "o_atomic", start=start)
    code = parse_qs(urlsplit(callback).query)["code"][0]

    assert_clean_redirect(client.get(callback), to=lands_on)
    assert_clean_redirect(client.get(callback + RESENT), to=lands_on)

    assert whoami(client)["openid"] == "o_atomic"
    assert fake_wechat.exchange_calls(code) == 1
    assert OAuthCodeUse.objects.get().duplicates == 1


def test_any_page_can_be_the_redirect_uri(client, fake_wechat):
    callback = authorize(client, "o_mia", start="/page/login/")
    assert callback.startswith("/page/?x=1&code=")

    response = client.get(callback + RESENT)

    assert_clean_redirect(response, to="/page/?x=1")
    assert client.get("/page/?x=1").json() == {"user": "wx_o_mia", "openid": "o_mia", "path": "/page/?x=1"}


@pytest.mark.parametrize("method", ["head", "post", "put", "delete", "options"])
def test_middleware_completes_logins_on_get_only(client, fake_wechat, method):
    """A HEAD from a link scanner (or any non-GET) must not spend the code and log in."""
    callback = authorize(client, "o_scanned", start="/page/login/")

    response = getattr(client, method)(callback)

    assert response.status_code != 302
    assert fake_wechat.total_exchange_calls() == 0
    assert_clean_redirect(client.get(callback), to="/page/?x=1")


def test_a_state_not_issued_for_the_page_is_left_to_the_page(client, fake_wechat):
    response = client.get("/page/?code=abc&state=xyz")

    assert response.status_code == 200
    assert response.json()["path"] == "/page/?code=abc&state=xyz"
    assert fake_wechat.total_exchange_calls() == 0


def test_auto_login_sends_anonymous_wechat_visitors_to_login(client, fake_wechat, settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "AUTO_LOGIN_PATHS": [r"^/page/"]}
    wechat_browser = "Mozilla/5.0 (iPhone) MicroMessenger/8.0.50"

    inside = client.get("/page/?x=1", HTTP_USER_AGENT=wechat_browser)
    outside = client.get("/page/?x=1", HTTP_USER_AGENT="Mozilla/5.0 Chrome/130")
    elsewhere = client.get("/whoami/", HTTP_USER_AGENT=wechat_browser)

    assert inside.status_code == 302
    assert inside["Location"] == "/wechat/login/?next=%2Fpage%2F%3Fx%3D1"
    assert (outside.status_code, elsewhere.status_code) == (200, 200)


def test_identity_without_django_users(client, fake_wechat, settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "LINK_USERS": False}

    client.get(authorize(client, "o_nina"))

    assert whoami(client) == {"user": None, "openid": "o_nina", "path": "/whoami/"}
    assert get_user_model().objects.count() == 0
