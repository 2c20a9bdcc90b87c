"""WeCom (企业微信) login: the in-app authorisation inside WeCom, the SSO QR login anywhere
else, one callback through the exactly-once fence, and the app's access token single-flight."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.test import Client

from tests.concurrency import run_in_threads, run_together
from tests.test_several_apps import two_apps_settings
from wechat_oauth.client import get_client
from wechat_oauth.models import OAuthCodeUse, WeChatAccount, WeComAccessToken
from wechat_oauth.results import WECOM_NON_MEMBER_PREFIX
from wechat_oauth.testing import wecom_openid_for

pytestmark = pytest.mark.django_db(transaction=True)

CORP_ID = "wwfakecorp00000001"
AGENT_ID = "1000002"
LOGIN = "/wechat/corp/login/?next=/whoami/"
WECOM_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh"
)
DESKTOP_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15"


def wecom_settings(fake, scope: str = "snsapi_base") -> dict:
    """A site with the two web apps of test_several_apps and a WeCom app, "corp"."""
    conf = two_apps_settings(fake)
    conf["WECOM_API_BASE_URL"] = fake.wecom_api_base_url
    conf["WECOM_SSO_URL"] = fake.wecom_sso_url
    conf["APPS"]["corp"] = {
        "KIND": "wecom",
        "CORP_ID": CORP_ID,
        "AGENT_ID": AGENT_ID,
        "SECRET": fake.add_corp(CORP_ID, AGENT_ID),
        "SCOPE": scope,
    }
    return conf


@pytest.fixture
def corp(fake_wechat, settings):
    settings.WECHAT_OAUTH = wecom_settings(fake_wechat)
    return fake_wechat


@pytest.fixture
def private_corp(fake_wechat, settings):
    settings.WECHAT_OAUTH = wecom_settings(fake_wechat, "snsapi_privateinfo")
    return fake_wechat


def start(browser: Client, user_agent: str = DESKTOP_UA) -> str:
    response = browser.get(LOGIN, HTTP_USER_AGENT=user_agent)
    assert response.status_code == 302, response.content
    return response["Location"]


def approve(url: str, **who: str) -> str:
    """The fake WeCom page approves the login for ``who``: the callback path."""
    query = "".join(f"&fake_{name}={value}" for name, value in who.items()) or "&auto=1"
    approved = requests.get(url.split("#", 1)[0] + query, allow_redirects=False, timeout=5)
    assert approved.status_code == 302, approved.text
    return approved.headers["Location"].replace("http://testserver", "")


def log_in(user_agent: str = DESKTOP_UA, **who: str) -> tuple[Client, str]:
    browser = Client(HTTP_USER_AGENT=user_agent)
    callback = approve(start(browser, user_agent), **who)
    response = browser.get(callback)
    assert response.status_code == 302 and response["Location"] == "/whoami/", response.content
    return browser, callback


def gettoken_calls(fake) -> int:
    return fake.gettoken_calls(CORP_ID, AGENT_ID)


# -- Where the login starts ------------------------------------------------------------------


def test_a_desktop_browser_is_sent_to_the_sso_qr_login(corp):
    url = urlsplit(start(Client()))
    query = parse_qs(url.query)

    assert f"{url.scheme}://{url.netloc}{url.path}" == corp.wecom_sso_url
    assert (query["login_type"], query["appid"], query["agentid"]) == (["CorpApp"], [CORP_ID], [AGENT_ID])
    assert urlsplit(query["redirect_uri"][0]).path == "/wechat/corp/callback/"
    assert query["state"][0]


def test_a_browser_inside_wecom_gets_the_in_app_authorisation(corp):
    location = start(Client(), WECOM_UA)
    url = urlsplit(location)
    query = parse_qs(url.query)

    assert f"{url.scheme}://{url.netloc}{url.path}" == corp.authorize_url
    assert (query["appid"], query["agentid"], query["scope"]) == ([CORP_ID], [AGENT_ID], ["snsapi_base"])
    assert location.endswith("#wechat_redirect")


# -- Logging in ------------------------------------------------------------------------------


def test_a_member_logs_in_by_corp_and_userid_through_the_sso_page(corp):
    browser, _ = log_in(userid="zhangsan")

    account = WeChatAccount.objects.get()
    assert (account.app_id, account.openid, account.unionid) == (CORP_ID, "zhangsan", "")
    assert browser.get("/whoami/").json()["user"] == account.user.get_username()
    assert corp.calls("getuserinfo") == 1 and gettoken_calls(corp) == 1


def test_a_non_member_logs_in_by_openid_and_never_as_a_member(corp):
    log_in(WECOM_UA, member="0", person="lisi")

    account = WeChatAccount.objects.get()
    assert account.openid == WECOM_NON_MEMBER_PREFIX + wecom_openid_for(CORP_ID, "lisi")
    code_use = OAuthCodeUse.objects.get()
    assert code_use.openid == account.openid


def test_a_persons_logins_are_one_user_per_corp_and_apart_from_the_web_apps(corp):
    first, _ = log_in(userid="wangwu")
    again, _ = log_in(WECOM_UA, userid="wangwu")

    assert first.get("/whoami/").json() == again.get("/whoami/").json()
    assert WeChatAccount.objects.count() == 1 and get_user_model().objects.count() == 1
    assert gettoken_calls(corp) == 1  # the second login used the same app token


def test_privateinfo_fetches_the_members_details_inside_the_one_exchange(private_corp):
    log_in(WECOM_UA, userid="zhaoliu")

    account = WeChatAccount.objects.get()
    assert account.headimgurl.endswith("/zhaoliu/0") and account.sex == 1
    stored = OAuthCodeUse.objects.get()
    assert stored.profile["email"] == "zhaoliu@example.com"
    assert "user_ticket" not in stored.profile
    assert private_corp.calls("getuserdetail") == 1


def test_duplicate_callbacks_share_one_getuserinfo_and_one_user(corp):
    corp.set_latency(0.2)
    browser = Client(HTTP_USER_AGENT=WECOM_UA)
    callback = approve(start(browser, WECOM_UA), userid="sunqi")
    code = parse_qs(urlsplit(callback).query)["code"][0]

    results = run_together([lambda: browser.get(callback), lambda: browser.get(callback)])

    assert [r.status_code for _, r in results] == [302, 302], results
    assert corp.exchange_calls(code) == 1
    assert WeChatAccount.objects.count() == 1


def test_a_refused_login_and_a_spent_code_get_readable_pages(corp):
    refused = Client().get("/wechat/corp/callback/?next=/whoami/&code=nope")  # no state
    assert refused.status_code == 400

    _, callback = log_in(userid="qianba")
    other = Client(HTTP_USER_AGENT=DESKTOP_UA)
    assert other.get(callback).status_code in (400, 403)  # another browser: never logged in
    assert "_auth_user_id" not in other.session


# -- The app's access token ------------------------------------------------------------------


def test_fifty_workers_asking_for_the_token_at_once_cause_one_gettoken(corp):
    client = get_client("corp")
    corp.set_latency(0.1)

    results = run_in_threads(50, client.access_token)

    assert {kind for kind, _ in results} == {"ok"}, results
    assert len({value for _, value in results}) == 1
    assert gettoken_calls(corp) == 1


def test_a_token_wecom_ends_early_is_refreshed_once_and_the_login_goes_through(corp):
    log_in(userid="a1")
    corp.invalidate_wecom_token(CORP_ID, AGENT_ID)

    log_in(userid="a2")

    assert gettoken_calls(corp) == 2
    assert WeChatAccount.objects.count() == 2


def test_many_logins_on_a_token_ended_early_refresh_it_once(corp):
    log_in(userid="b0")
    corp.invalidate_wecom_token(CORP_ID, AGENT_ID)
    corp.set_latency(0.05)
    browsers = []
    for index in range(8):
        browser = Client(HTTP_USER_AGENT=WECOM_UA)
        browsers.append((browser, approve(start(browser, WECOM_UA), userid=f"b{index + 1}")))

    results = run_together([lambda b=b, c=c: b.get(c) for b, c in browsers])

    assert [r.status_code for _, r in results] == [302] * 8, results
    assert gettoken_calls(corp) == 2  # the first login's, then exactly one refresh
    assert WeChatAccount.objects.count() == 9


def test_a_token_near_its_end_is_fetched_again_and_kept_if_wecom_gives_the_same(corp):
    from datetime import timedelta

    from django.utils import timezone

    client = get_client("corp")
    first = client.access_token()
    WeComAccessToken.objects.update(refresh_at=timezone.now() - timedelta(seconds=1))
    client.tokens._memory = None  # another process: it sees only the table

    assert client.access_token() == first  # WeCom answers the live token again
    assert gettoken_calls(corp) == 2
    row = WeComAccessToken.objects.get()
    assert row.refresh_at > timezone.now()  # inside the margin: used until it expires
    client.tokens._memory = None
    client.access_token()
    assert gettoken_calls(corp) == 2


def test_the_token_is_in_no_log_and_not_in_the_admin(corp, caplog, admin_client):
    caplog.set_level(logging.DEBUG)
    log_in(userid="c1")
    token = WeComAccessToken.objects.get().access_token
    admin_client.force_login(get_user_model().objects.create_superuser("root", "r@x.cn", "pw"))

    assert token and token not in caplog.text
    assert admin_client.get("/admin/").status_code == 200
    assert token not in admin_client.get("/admin/").content.decode()
    assert token not in repr(WeComAccessToken.objects.get())


def test_a_wrong_secret_is_a_configuration_error_page_not_a_500(corp, settings):
    conf = wecom_settings(corp)
    conf["APPS"]["corp"]["SECRET"] = "wrong"
    settings.WECHAT_OAUTH = conf
    browser = Client(HTTP_USER_AGENT=WECOM_UA)
    callback = approve(start(browser, WECOM_UA), userid="d1")

    response = browser.get(callback)

    assert 400 <= response.status_code < 600 and response.status_code != 500
    assert OAuthCodeUse.objects.count() == 0  # the code was never spent


# -- Checks ----------------------------------------------------------------------------------


def test_checks_name_a_wecom_app_without_agent_id_or_secret(corp, settings):
    from wechat_oauth.checks import check_apps

    conf = wecom_settings(corp)
    conf["APPS"]["corp"] = {"KIND": "wecom", "CORP_ID": CORP_ID, "SCOPE": "snsapi_login"}
    settings.WECHAT_OAUTH = conf

    ids = {message.id for message in check_apps()}

    assert {"wechat_oauth.E017", "wechat_oauth.E020", "wechat_oauth.E022"} <= ids


def test_the_admin_filters_codes_and_accounts_by_kind_of_login(corp, admin_client):
    from tests.test_several_apps import MP_LOGIN
    from tests.test_several_apps import log_in as web_log_in

    web_log_in(MP_LOGIN, "ann")
    log_in(userid="f1")
    admin_client.force_login(get_user_model().objects.create_superuser("root", "r@x.cn", "pw"))

    codes = admin_client.get("/admin/wechat_oauth/oauthcodeuse/?kind=wecom")
    accounts = admin_client.get("/admin/wechat_oauth/wechataccount/?kind=mp")

    assert [row.app_id for row in codes.context["cl"].result_list] == [CORP_ID]
    assert codes.context["code_use_summary"]["week"]["codes"] == 1
    assert "WeCom" in codes.content.decode() and "Mini Program" not in codes.content.decode()
    assert [row.openid for row in accounts.context["cl"].result_list] != ["f1"]
    assert len(accounts.context["cl"].result_list) == 1
