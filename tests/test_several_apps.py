"""Several WeChat apps on one site: an Official Account (in-WeChat login) and a website app
(QR login), one person one user by unionid, each app's codes, states and URLs its own."""

from __future__ import annotations

from functools import partial
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db import connections
from django.template import Context, Template
from django.test import Client
from django.utils.html import escapejs

from tests.concurrency import run_together, start_processes
from wechat_oauth.adapter import DefaultAdapter
from wechat_oauth.models import OAuthCodeUse, WeChatAccount, WeChatUnion
from wechat_oauth.testing import openid_for, unionid_for
from wechat_oauth.testing.wechat_client import WECHAT_USER_AGENT

pytestmark = pytest.mark.django_db(transaction=True)

WEB_APP_ID = "wxfakeweb000000001"
UNBOUND_APP_ID = "wxfakeunbound00001"


def two_apps_settings(fake) -> dict:
    """WECHAT_OAUTH of a site with the fake's default app as its Official Account ("mp", the
    default app) and a website app ("web"), both of one Open Platform account."""
    web_secret = fake.add_app(WEB_APP_ID)
    urls = {key: value for key, value in fake.settings().items() if key.endswith("_URL")}
    return {
        **urls,
        "DEFAULT_APP": "mp",
        "APPS": {
            "mp": {
                "KIND": "mp",
                "APP_ID": fake.app_id,
                "APP_SECRET": fake.app_secret,
                "SCOPE": "snsapi_userinfo",
            },
            "web": {"KIND": "open", "APP_ID": WEB_APP_ID, "APP_SECRET": web_secret},
        },
    }


@pytest.fixture
def two_apps(fake_wechat, settings):
    settings.WECHAT_OAUTH = two_apps_settings(fake_wechat)
    return fake_wechat


def authorize(browser: Client, start: str, person: str, **headers) -> str:
    """Start a login at ``start``, let the fake WeChat approve it for ``person``; the callback
    path WeChat sends the browser back to."""
    response = browser.get(start, **headers)
    assert response.status_code == 302, response.content
    url = response["Location"].split("#", 1)[0]
    approved = requests.get(f"{url}&fake_person={person}", allow_redirects=False, timeout=5)
    assert approved.status_code == 302, approved.text
    return approved.headers["Location"].replace("http://testserver", "")


def code_of(callback: str) -> str:
    return parse_qs(urlsplit(callback).query)["code"][0]


def log_in(start: str, person: str, browser: Client | None = None) -> tuple[Client, str]:
    browser = browser or Client()
    callback = authorize(browser, start, person)
    response = browser.get(callback)
    assert response.status_code == 302 and response["Location"] == "/whoami/", response.content
    return browser, callback


def user_of(browser: Client) -> str:
    return browser.get("/whoami/").json()["user"]


MP_LOGIN = "/wechat/login/?next=/whoami/"
WEB_LOGIN = "/wechat/web/login/?next=/whoami/"


def test_qr_login_sends_the_browser_to_qrconnect_with_the_website_apps_id(two_apps):
    response = Client().get(WEB_LOGIN)

    location = urlsplit(response["Location"])
    query = parse_qs(location.query)
    assert location.path.endswith("/connect/qrconnect")
    assert (query["appid"], query["scope"]) == ([WEB_APP_ID], ["snsapi_login"])
    assert urlsplit(query["redirect_uri"][0]).path == "/wechat/web/callback/"
    assert response["Location"].endswith("#wechat_redirect")


def test_the_plain_urls_serve_the_default_app(two_apps):
    response = Client().get(MP_LOGIN)

    query = parse_qs(urlsplit(response["Location"]).query)
    assert (query["appid"], query["scope"]) == ([two_apps.app_id], ["snsapi_userinfo"])
    assert urlsplit(query["redirect_uri"][0]).path == "/wechat/callback/"


@pytest.mark.parametrize("first, second", [(MP_LOGIN, WEB_LOGIN), (WEB_LOGIN, MP_LOGIN)])
def test_one_person_through_both_apps_is_one_user(two_apps, first, second):
    first_browser, first_callback = log_in(first, "alice")
    second_browser, second_callback = log_in(second, "alice")

    assert user_of(first_browser) == user_of(second_browser)
    accounts = WeChatAccount.objects.order_by("app_id")
    assert {(a.app_id, a.openid) for a in accounts} == {
        (two_apps.app_id, openid_for(two_apps.app_id, "alice")),
        (WEB_APP_ID, openid_for(WEB_APP_ID, "alice")),
    }
    assert {a.unionid for a in accounts} == {unionid_for("alice")}
    assert get_user_model().objects.count() == 1
    assert WeChatUnion.objects.get().unionid == unionid_for("alice")
    for callback in (first_callback, second_callback):
        assert two_apps.exchange_calls(code_of(callback)) == 1


def test_two_people_stay_two_users(two_apps):
    alice, _ = log_in(MP_LOGIN, "alice")
    bob, _ = log_in(WEB_LOGIN, "bob")

    assert user_of(alice) != user_of(bob)


def test_first_logins_of_one_person_through_both_apps_at_once_make_one_user(two_apps):
    two_apps.set_latency(0.05)
    logins = [
        (browser, authorize(browser, start, "carol"))
        for browser, start in ((Client(), MP_LOGIN), (Client(), WEB_LOGIN)) * 3
    ]

    results = run_together([partial(browser.get, callback) for browser, callback in logins])

    assert [value.status_code for _, value in results] == [302] * 6, results
    assert get_user_model().objects.count() == 1
    assert WeChatAccount.objects.count() == 2
    assert len({user_of(browser) for browser, _ in logins}) == 1


@pytest.mark.parametrize("start", [MP_LOGIN, WEB_LOGIN])
def test_every_duplicate_of_either_kind_ends_logged_in_with_one_exchange(two_apps, start):
    two_apps.set_latency(0.2)
    browser = Client()
    callback = authorize(browser, start, "dave")
    resent = callback + "&uin=MTMy&key=63e9&pass_ticket=SISr"
    tabs = [Client(), Client(), Client()]
    for tab in tabs:
        tab.cookies = browser.cookies
    headers = {"HTTP_USER_AGENT": WECHAT_USER_AGENT}

    results = run_together(
        [
            partial(tab.get, url, **headers)
            for tab, url in zip(tabs, [callback, resent, callback], strict=True)
        ]
    )
    refreshed = tabs[0].get(callback, **headers)

    assert [value.status_code for _, value in results] == [302] * 3, results
    assert {value["Location"] for _, value in results} == {"/whoami/"}
    assert refreshed.status_code == 302 and refreshed["Location"] == "/whoami/"
    assert two_apps.exchange_calls(code_of(callback)) == 1
    assert get_user_model().objects.count() == 1


def test_a_callback_on_another_apps_url_is_refused_before_its_code_is_spent(two_apps):
    browser = Client()
    callback = authorize(browser, MP_LOGIN, "erin")
    elsewhere = callback.replace("/wechat/callback/", "/wechat/web/callback/")

    refused = browser.get(elsewhere)

    assert refused.status_code == 400
    assert two_apps.exchange_calls(code_of(callback)) == 0
    assert OAuthCodeUse.objects.count() == 0
    assert browser.get(callback).status_code == 302  # its own app's callback still logs in


def test_an_app_that_is_not_configured_is_a_404(two_apps):
    assert Client().get("/wechat/shop/login/").status_code == 404
    assert Client().get("/wechat/shop/callback/?code=x&state=y").status_code == 404


def test_an_app_without_unionid_links_by_openid_alone(fake_wechat, settings):
    conf = two_apps_settings(fake_wechat)
    unbound_secret = fake_wechat.add_app(UNBOUND_APP_ID, unionid=False)
    conf["APPS"]["web"] = {"KIND": "open", "APP_ID": UNBOUND_APP_ID, "APP_SECRET": unbound_secret}
    settings.WECHAT_OAUTH = conf

    mp, _ = log_in(MP_LOGIN, "frank")
    web, _ = log_in(WEB_LOGIN, "frank")

    assert user_of(mp) != user_of(web)
    assert WeChatAccount.objects.get(app_id=UNBOUND_APP_ID).unionid == ""


class VetoingAdapter(DefaultAdapter):
    """An adapter that refuses one person and does not join identities by unionid."""

    def may_log_in(self, request, app, token):
        return token.openid != openid_for(app.app_id, "mallory")

    def links_by_unionid(self, app, token):
        return False


def test_the_adapter_vetoes_a_login_and_decides_on_unionid_linking(two_apps, settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "ADAPTER": "tests.test_several_apps.VetoingAdapter"}
    browser = Client()

    refused = browser.get(authorize(browser, WEB_LOGIN, "mallory"))
    mp, _ = log_in(MP_LOGIN, "grace")
    web, _ = log_in(WEB_LOGIN, "grace")

    assert refused.status_code == 403
    assert b"may not log in" in refused.content
    assert WeChatAccount.objects.filter(openid=openid_for(WEB_APP_ID, "mallory")).count() == 0
    assert user_of(mp) != user_of(web)


def test_the_qr_panel_gets_a_state_and_the_binding_cookie(two_apps):
    browser = Client()
    response = browser.get("/wechat/web/qr/?next=/whoami/")

    panel = response.json()
    assert (panel["appid"], panel["scope"]) == (WEB_APP_ID, "snsapi_login")
    assert urlsplit(unquote(panel["redirect_uri"])).path == "/wechat/web/callback/"
    assert "wechat_oauth_binding" in response.cookies
    # The panel's state logs the person in through the website app, as the redirect does.
    qrconnect = (
        f"{two_apps.qrconnect_url}?appid={WEB_APP_ID}&redirect_uri={panel['redirect_uri']}"
        f"&response_type=code&scope=snsapi_login&state={panel['state']}&fake_person=heidi"
    )
    approved = requests.get(qrconnect, allow_redirects=False, timeout=5)
    callback = approved.headers["Location"].replace("http://testserver", "")
    assert browser.get(callback)["Location"] == "/whoami/"
    assert WeChatAccount.objects.get().openid == openid_for(WEB_APP_ID, "heidi")


def test_the_qr_panel_is_only_for_website_apps(two_apps):
    response = Client().get("/wechat/qr/")

    assert response.status_code == 400
    assert response.json()["error"] == "not_a_website_app"


def test_the_qr_panel_tag_draws_wechats_script_and_asks_for_its_parameters(two_apps):
    html = Template('{% load wechat_oauth %}{% wechat_qr_panel "web" next="/shop/" %}').render(Context({}))

    assert two_apps.wxlogin_js_url in html  # the fake's own, as WXLOGIN_JS_URL
    assert escapejs("/wechat/web/qr/?next=%2Fshop%2F") in html
    assert "new WxLogin(" in html


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_first_links_of_one_person_through_two_apps_in_processes_make_one_user(
    fake_wechat, settings, server_alias
):
    conf = two_apps_settings(fake_wechat)
    database = dict(connections[server_alias].settings_dict)
    apps = ["mp", "web"] * 3
    openids = {"mp": openid_for(fake_wechat.app_id, "ivan"), "web": openid_for(WEB_APP_ID, "ivan")}
    groups = [
        start_processes(1, _link_worker(), database, conf, app, openids[app], unionid_for("ivan"))
        for app in apps
    ]

    results = [report for group in groups for report in group.collect()]

    assert [kind for _, kind, _ in results] == ["ok"] * 6, results
    assert len({user_id for _, _, user_id in results}) == 1
    assert WeChatAccount.objects.using(server_alias).count() == 2
    assert WeChatUnion.objects.using(server_alias).count() == 1


def _link_worker():
    from tests import workers

    return workers.link_after_barrier


def test_the_admin_names_each_app_filters_by_it_and_says_how_accounts_are_linked(
    fake_wechat, settings, admin_client
):
    conf = two_apps_settings(fake_wechat)
    unbound_secret = fake_wechat.add_app(UNBOUND_APP_ID, unionid=False)
    conf["APPS"]["web"] = {"KIND": "open", "APP_ID": UNBOUND_APP_ID, "APP_SECRET": unbound_secret}
    settings.WECHAT_OAUTH = conf
    log_in(MP_LOGIN, "judy")
    log_in(WEB_LOGIN, "judy")
    admin_client.cookies.clear()
    admin_client.force_login(get_user_model().objects.create_superuser("root", "r@x.cn", "pw"))

    accounts = admin_client.get("/admin/wechat_oauth/wechataccount/").content.decode()
    codes_of_web = admin_client.get("/admin/wechat_oauth/oauthcodeuse/?app=web")

    assert f"mp ({fake_wechat.app_id})" in accounts and f"web ({UNBOUND_APP_ID})" in accounts
    assert "openid only" in accounts and ">unionid<" in accounts
    assert list(codes_of_web.context["cl"].result_list.values_list("app_id", flat=True)) == [UNBOUND_APP_ID]
    assert codes_of_web.context["code_use_summary"]["week"]["codes"] == 1


def test_an_error_page_of_the_website_app_logs_in_again_through_it(two_apps):
    refused = Client().get("/wechat/web/callback/?next=/whoami/&code=abc")  # no state

    assert refused.status_code == 400
    assert b'href="/wechat/web/login/?next=%2Fwhoami%2F"' in refused.content


def test_an_apps_own_settings_override_the_global_ones_for_it_alone(fake_wechat, settings):
    from wechat_oauth.client import get_client

    conf = two_apps_settings(fake_wechat)
    conf["TIMEOUT"] = (3.0, 5.0)
    conf["APPS"]["mp"]["FORCE_POPUP"] = True
    conf["APPS"]["web"]["TIMEOUT"] = 2
    settings.WECHAT_OAUTH = conf

    mp, web = get_client("mp"), get_client("web")

    assert (mp.timeout, web.timeout) == ((3.0, 5.0), (2.0, 2.0))
    assert (mp.app_id, web.app_id) == (fake_wechat.app_id, WEB_APP_ID)
    assert "&forcePopup=true" in mp.authorize_url("https://shop.example/cb/", "s")
    assert get_client("web") is web  # one client per app and process


def test_the_middleware_logs_in_on_a_page_through_the_default_app(two_apps):
    """With APPS and no top-level APP_ID, a login on a page of the site (login_here and the
    middleware) is the default app's."""
    browser = Client()
    callback = authorize(browser, "/page/login/", "liam")
    assert callback.startswith("/page/?x=1&code=")

    response = browser.get(callback)

    assert response.status_code == 302 and response["Location"] == "/page/?x=1"
    assert WeChatAccount.objects.get().openid == openid_for(two_apps.app_id, "liam")


def test_an_apps_longer_timeout_lengthens_the_holders_bound(fake_wechat, settings):
    """The holder's transaction must outlive the slowest app's calls to WeChat: PostgreSQL
    would otherwise end it in the middle of that app's exchange."""
    from wechat_oauth.conf import app_settings

    conf = two_apps_settings(fake_wechat)
    conf["TIMEOUT"] = (1.0, 2.0)
    settings.WECHAT_OAUTH = conf
    default_bound = app_settings.hold_timeout

    settings.WECHAT_OAUTH = {
        **conf,
        "APPS": {**conf["APPS"], "web": {**conf["APPS"]["web"], "TIMEOUT": (2.0, 8.0)}},
    }

    assert default_bound == 2 * 3.0 + 1.0
    assert app_settings.hold_timeout == 2 * 10.0 + 1.0


@pytest.mark.parametrize("start", [MP_LOGIN, WEB_LOGIN])
def test_the_middleware_leaves_every_apps_callback_view_alone(two_apps, monkeypatch, start):
    """A callback on an app's own callback view is the view's: the middleware does not
    verify its state first (on every callback that would be wasted work)."""
    from wechat_oauth import middleware

    verified, verify = [], middleware.verify_state

    def recording_verify(*args, **kwargs):
        verified.append(args)
        return verify(*args, **kwargs)

    monkeypatch.setattr(middleware, "verify_state", recording_verify)
    browser, callback = log_in(start, "mona")

    assert callback.startswith(start.split("login/")[0] + "callback/?")
    app_id = two_apps.app_id if start == MP_LOGIN else WEB_APP_ID
    assert user_of(browser) == f"wx_{openid_for(app_id, 'mona')}"
    assert verified == []


@pytest.mark.parametrize("callback", ["/wechat/callback/", "/wechat/web/callback/"])
def test_a_next_into_any_apps_callback_view_is_refused(two_apps, callback):
    """The website app's callback is a callback too: a ``next`` there would land the user on a
    login's callback after this one (the default app's was refused already)."""
    from wechat_oauth.state import safe_next_url

    assert safe_next_url(callback) is None
    assert safe_next_url("/wechat/web/login/") == "/wechat/web/login/"
