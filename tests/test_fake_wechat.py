"""The fake WeChat behaves like WeChat, over real HTTP (``requests``, no mocking)."""

from __future__ import annotations

import base64
import io
import json
import re
import time
from collections.abc import Iterator
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from wsgiref.util import setup_testing_defaults

import pytest
import requests

from wechat_oauth.testing import (
    DEFAULT_APP_ID,
    DEFAULT_OPENID,
    DEFAULT_PERSON,
    DEFAULT_WECOM_USERID,
    FakeAgent,
    FakeApp,
    FakeState,
    FakeWeChat,
    FakeWeChatApp,
    FakeWeChatControlError,
    FakeWeChatProcess,
    RemoteFakeWeChat,
    external_userid_for,
    openid_for,
    unionid_for,
    wecom_openid_for,
)
from wechat_oauth.testing.pytest_plugin import wechat_settings_override
from wechat_oauth.testing.server import ServerThread
from wechat_oauth.testing.wechat_client import WECHAT_USER_AGENT, send_and_abort, send_unread

RID = re.compile(r", rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$")
CALLBACK = "https://site.example/wechat/callback/?next=%2Fhome"


@pytest.fixture
def fake() -> Iterator[FakeWeChat]:
    with FakeWeChat() as server:
        yield server


@pytest.fixture
def consent_fake() -> Iterator[FakeWeChat]:
    with FakeWeChat(auto_approve=False) as server:
        yield server


def api(fake: Any, path: str, timeout: float = 5, **params: Any) -> requests.Response:
    return requests.get(f"{fake.api_base_url}{path}", params=params, timeout=timeout)


def exchange(fake: Any, code: str | None, timeout: float = 5, **overrides: Any) -> requests.Response:
    params = {
        "appid": fake.app_id,
        "secret": fake.app_secret,
        "code": code,
        "grant_type": "authorization_code",
    }
    params.update(overrides)
    return api(
        fake,
        "/sns/oauth2/access_token",
        timeout,
        **{k: v for k, v in params.items() if v is not None},
    )


def tokens(fake: Any, **code_options: Any) -> dict[str, Any]:
    body: dict[str, Any] = exchange(fake, fake.issue_code(**code_options)).json()
    assert "access_token" in body, body
    return body


def authorize(fake: Any, url: str | None = None, **overrides: str) -> requests.Response:
    params = {
        "appid": fake.app_id,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "snsapi_base",
        "state": "St4te",
        **overrides,
    }
    return requests.get(url or fake.authorize_url, params=params, allow_redirects=False, timeout=5)


def confirm(fake: Any, **overrides: str) -> requests.Response:
    form = {
        "appid": fake.app_id,
        "redirect_uri": CALLBACK,
        "scope": "snsapi_userinfo",
        "state": "St4te",
        "openid": "oChosenUser",
        "decision": "allow",
        **overrides,
    }
    return requests.post(f"{fake.authorize_url}/confirm", data=form, allow_redirects=False, timeout=5)


def script_string(html: str, name: str) -> str:
    """The JavaScript string literal assigned to ``var name`` in a page."""
    match = re.search(rf"var {name} = (\".*?\");", html)
    assert match is not None, name
    return str(json.loads(match.group(1)))


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


# Exchanging a code: sns/oauth2/access_token


def test_exchange_answers_tokens_for_a_fresh_code(fake: FakeWeChat) -> None:
    body = exchange(fake, fake.issue_code("oAlice", scope="snsapi_userinfo")).json()
    assert body["openid"] == "oAlice"
    assert body["scope"] == "snsapi_userinfo"
    assert body["expires_in"] == 7200
    assert body["access_token"] and body["refresh_token"]
    assert "unionid" not in body and "is_snapshotuser" not in body


def test_second_exchange_of_a_code_is_40163_and_both_are_counted(fake: FakeWeChat) -> None:
    code = fake.issue_code()
    assert "access_token" in exchange(fake, code).json()
    assert exchange(fake, code).json()["errcode"] == 40163
    assert fake.exchange_calls(code) == 2


def test_unknown_code_is_40029(fake: FakeWeChat) -> None:
    body = exchange(fake, "0" * 32).json()
    assert body["errcode"] == 40029
    assert body["errmsg"].startswith("invalid code")


def test_code_older_than_its_lifetime_is_40029() -> None:
    with FakeWeChat(code_ttl=0.05) as fake:
        code = fake.issue_code()
        time.sleep(0.1)
        assert exchange(fake, code).json()["errcode"] == 40029


def test_website_login_code_lives_ten_minutes(fake: FakeWeChat) -> None:
    code = fake.issue_code(scope="snsapi_login")
    fake.advance(500)
    assert exchange(fake, code).json()["scope"] == "snsapi_login"


def test_wrong_appid_is_40013(fake: FakeWeChat) -> None:
    assert exchange(fake, fake.issue_code(), appid="wxsomeoneelse00001").json()["errcode"] == 40013


def test_wrong_secret_is_40125(fake: FakeWeChat) -> None:
    assert exchange(fake, fake.issue_code(), secret="not-the-secret").json()["errcode"] == 40125


def test_missing_code_is_41008(fake: FakeWeChat) -> None:
    assert exchange(fake, None).json()["errcode"] == 41008


def test_rejected_credentials_do_not_spend_the_code(fake: FakeWeChat) -> None:
    code = fake.issue_code()
    exchange(fake, code, secret="not-the-secret")
    assert "access_token" in exchange(fake, code).json()


def test_errors_are_http_200_with_a_request_id(fake: FakeWeChat) -> None:
    response = exchange(fake, "unknown")
    assert response.status_code == 200
    assert RID.search(response.json()["errmsg"])


def test_exchange_reports_unionid_and_snapshot_user(fake: FakeWeChat) -> None:
    body = tokens(fake, openid="oSnap", unionid="uSnap", snapshot=True)
    assert body["unionid"] == "uSnap"
    assert body["is_snapshotuser"] == 1


# Refresh, userinfo, auth


def test_refresh_gives_a_working_access_token_after_expiry(fake: FakeWeChat) -> None:
    first = tokens(fake, openid="oAlice", scope="snsapi_userinfo")
    fake.advance(7201)
    body = api(
        fake,
        "/sns/oauth2/refresh_token",
        appid=fake.app_id,
        grant_type="refresh_token",
        refresh_token=first["refresh_token"],
    ).json()
    assert body["access_token"] != first["access_token"]
    assert body["expires_in"] == 7200
    assert api(fake, "/sns/auth", access_token=body["access_token"], openid="oAlice").json()["errcode"] == 0


def test_refresh_of_unknown_token_is_40030(fake: FakeWeChat) -> None:
    body = api(
        fake,
        "/sns/oauth2/refresh_token",
        appid=fake.app_id,
        grant_type="refresh_token",
        refresh_token="nope",
    ).json()
    assert body["errcode"] == 40030


def test_refresh_after_thirty_days_is_42002(fake: FakeWeChat) -> None:
    refresh_token = tokens(fake)["refresh_token"]
    fake.advance(30 * 86400 + 1)
    body = api(
        fake,
        "/sns/oauth2/refresh_token",
        appid=fake.app_id,
        grant_type="refresh_token",
        refresh_token=refresh_token,
    ).json()
    assert body["errcode"] == 42002


def test_userinfo_returns_the_profile_with_sex_as_a_string(fake: FakeWeChat) -> None:
    grant = tokens(fake, openid="oAlice", unionid="uAlice", scope="snsapi_userinfo", nickname="Alice")
    body = api(
        fake, "/sns/userinfo", access_token=grant["access_token"], openid="oAlice", lang="zh_CN"
    ).json()
    assert body["openid"] == "oAlice"
    assert body["nickname"] == "Alice"
    assert body["sex"] == "1"
    assert body["privilege"] == []
    assert body["unionid"] == "uAlice"
    assert {"province", "city", "country", "headimgurl"} <= set(body)


def test_userinfo_under_snsapi_base_is_48001(fake: FakeWeChat) -> None:
    grant = tokens(fake, openid="oAlice", scope="snsapi_base")
    body = api(fake, "/sns/userinfo", access_token=grant["access_token"], openid="oAlice").json()
    assert body["errcode"] == 48001
    assert body["errmsg"].startswith("api unauthorized")


def test_userinfo_with_unknown_token_is_40014(fake: FakeWeChat) -> None:
    assert api(fake, "/sns/userinfo", access_token="nope", openid="oAlice").json()["errcode"] == 40014


def test_userinfo_with_expired_token_is_42001(fake: FakeWeChat) -> None:
    grant = tokens(fake, openid="oAlice", scope="snsapi_userinfo")
    fake.advance(7201)
    assert (
        api(fake, "/sns/userinfo", access_token=grant["access_token"], openid="oAlice").json()["errcode"]
        == 42001
    )


def test_userinfo_for_another_openid_is_40003(fake: FakeWeChat) -> None:
    grant = tokens(fake, openid="oAlice", scope="snsapi_userinfo")
    assert (
        api(fake, "/sns/userinfo", access_token=grant["access_token"], openid="oBob").json()["errcode"]
        == 40003
    )


def test_auth_accepts_a_live_token(fake: FakeWeChat) -> None:
    grant = tokens(fake, openid="oAlice")
    assert api(fake, "/sns/auth", access_token=grant["access_token"], openid="oAlice").json() == {
        "errcode": 0,
        "errmsg": "ok",
    }


def test_auth_with_unknown_token_is_40014(fake: FakeWeChat) -> None:
    assert api(fake, "/sns/auth", access_token="nope", openid="oAlice").json()["errcode"] == 40014


def test_auth_with_expired_token_is_42001(fake: FakeWeChat) -> None:
    grant = tokens(fake, openid="oAlice")
    fake.advance(7201)
    assert (
        api(fake, "/sns/auth", access_token=grant["access_token"], openid="oAlice").json()["errcode"] == 42001
    )


def test_auth_for_another_openid_is_40003(fake: FakeWeChat) -> None:
    grant = tokens(fake, openid="oAlice")
    assert (
        api(fake, "/sns/auth", access_token=grant["access_token"], openid="oBob").json()["errcode"] == 40003
    )


# The authorize pages


def test_authorize_redirects_keeping_the_callback_query_and_passing_state(fake: FakeWeChat) -> None:
    response = authorize(fake)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("https://site.example/wechat/callback/?next=%2Fhome&code=")
    query = query_of(location)
    assert query["next"] == ["/home"]
    assert query["state"] == ["St4te"]
    assert "access_token" in exchange(fake, query["code"][0]).json()


def test_qrconnect_redirects_with_a_website_login_code(fake: FakeWeChat) -> None:
    response = authorize(fake, fake.qrconnect_url, scope="snsapi_login")
    code = query_of(response.headers["Location"])["code"][0]
    assert exchange(fake, code).json()["scope"] == "snsapi_login"


def test_authorize_with_a_wrong_appid_shows_an_error_page(fake: FakeWeChat) -> None:
    response = authorize(fake, appid="wxsomeoneelse00001")
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/html")
    assert "appid" in response.text


def test_authorize_with_a_state_outside_the_alphabet_shows_an_error_page(fake: FakeWeChat) -> None:
    assert authorize(fake, state="a.b:c").status_code == 400


def test_fake_openid_query_chooses_the_user(fake: FakeWeChat) -> None:
    response = authorize(fake, fake_openid="oChosen", fake_unionid="uChosen", fake_snapshot="1")
    body = exchange(fake, query_of(response.headers["Location"])["code"][0]).json()
    assert (body["openid"], body["unionid"], body["is_snapshotuser"]) == ("oChosen", "uChosen", 1)


def test_consent_page_shows_app_scope_and_default_openid(consent_fake: FakeWeChat) -> None:
    response = authorize(consent_fake, scope="snsapi_userinfo")
    assert response.status_code == 200
    assert consent_fake.app_id in response.text
    assert "snsapi_userinfo" in response.text
    assert f'name="openid" value="{DEFAULT_OPENID}"' in response.text
    assert 'action="/connect/oauth2/authorize/confirm"' in response.text
    assert 'value="allow"' in response.text and 'value="deny"' in response.text


def test_consent_page_escapes_what_it_echoes(consent_fake: FakeWeChat) -> None:
    response = authorize(consent_fake, redirect_uri='https://site.example/cb?x="><script>alert(1)</script>')
    assert "<script>alert(1)" not in response.text
    assert "&quot;&gt;&lt;script&gt;" in response.text


def test_consent_page_ticks_double_callback_when_asked(consent_fake: FakeWeChat) -> None:
    plain = authorize(consent_fake).text
    double = authorize(consent_fake, double="1").text
    assert 'name="double" value="1">' in plain
    assert 'name="double" value="1" checked>' in double


def test_auto_query_skips_the_consent_page(consent_fake: FakeWeChat) -> None:
    assert authorize(consent_fake, auto="1").status_code == 302


def test_allow_redirects_with_a_code_for_the_chosen_openid(consent_fake: FakeWeChat) -> None:
    response = confirm(consent_fake)
    assert response.status_code == 302
    query = query_of(response.headers["Location"])
    assert query["state"] == ["St4te"]
    assert exchange(consent_fake, query["code"][0]).json()["openid"] == "oChosenUser"


def test_deny_redirects_with_the_state_only(consent_fake: FakeWeChat) -> None:
    response = confirm(consent_fake, decision="deny")
    assert response.status_code == 302
    assert query_of(response.headers["Location"]) == {"next": ["/home"], "state": ["St4te"]}


def test_double_callback_page_aborts_the_first_request_and_resends_with_uin_key_pass_ticket(
    consent_fake: FakeWeChat,
) -> None:
    response = confirm(consent_fake, double="1")
    assert response.status_code == 200
    script = response.text
    first, second = (script_string(script, name) for name in ("first", "second"))
    assert set(query_of(first)) == {"next", "code", "state"}
    assert second.startswith(first + "&uin=")
    assert {"uin", "key", "pass_ticket"} <= set(query_of(second))
    assert "new AbortController()" in script and "controller.abort()" in script
    assert 'credentials: "include"' in script and 'redirect: "manual"' in script
    assert "location.replace(second)" in script


# Several apps, several persons

WEB_APP = "wxfakeweb000000002"
UNBOUND_APP = "wxfakeunbound00003"


@pytest.fixture
def apps_fake() -> Iterator[FakeWeChat]:
    apps = [FakeApp(WEB_APP, "web-secret"), FakeApp(UNBOUND_APP, unionid=False)]
    with FakeWeChat(apps=apps) as server:
        yield server


def exchange_as(fake: Any, app_id: str, code: str | None, **overrides: Any) -> dict[str, Any]:
    """The access_token answer for ``code`` sent with the appid and secret of ``app_id``."""
    credentials = {"appid": app_id, "secret": fake.app_secret_of(app_id)}
    body: dict[str, Any] = exchange(fake, code, **{**credentials, **overrides}).json()
    return body


def test_person_ids_are_shaped_like_wechats() -> None:
    openid, unionid = openid_for(DEFAULT_APP_ID, "alice"), unionid_for("alice")
    assert (len(openid), openid[0], len(unionid), unionid[0]) == (28, "o", 28, "u")
    assert re.fullmatch(r"[A-Za-z0-9_-]+", openid + unionid)
    assert openid == openid_for(DEFAULT_APP_ID, "alice") != openid_for(WEB_APP, "alice")
    assert openid != openid_for(DEFAULT_APP_ID, "bob")
    assert unionid == unionid_for("alice") != unionid_for("bob")


def test_one_person_through_two_apps_has_two_openids_and_one_unionid(
    apps_fake: FakeWeChat,
) -> None:
    official = exchange_as(apps_fake, DEFAULT_APP_ID, apps_fake.issue_code(person="alice"))
    website = exchange_as(
        apps_fake, WEB_APP, apps_fake.issue_code(app_id=WEB_APP, person="alice", scope="snsapi_login")
    )
    assert official["openid"] == openid_for(DEFAULT_APP_ID, "alice")
    assert website["openid"] == openid_for(WEB_APP, "alice")
    assert official["openid"] != website["openid"]
    assert official["unionid"] == website["unionid"] == unionid_for("alice")


def test_an_unbound_app_never_answers_a_unionid(apps_fake: FakeWeChat) -> None:
    code = apps_fake.issue_code(app_id=UNBOUND_APP, person="alice", scope="snsapi_userinfo")
    grant = exchange_as(apps_fake, UNBOUND_APP, code)
    assert grant["openid"] == openid_for(UNBOUND_APP, "alice")
    assert "unionid" not in grant
    profile = api(
        apps_fake, "/sns/userinfo", access_token=grant["access_token"], openid=grant["openid"]
    ).json()
    assert profile["openid"] == grant["openid"] and "unionid" not in profile
    with pytest.raises(ValueError, match="unionid"):
        apps_fake.issue_code("oExplicit", unionid="uExplicit", app_id=UNBOUND_APP)


def test_userinfo_of_a_person_carries_the_unionid(apps_fake: FakeWeChat) -> None:
    code = apps_fake.issue_code(app_id=WEB_APP, person="bob", scope="snsapi_login")
    grant = exchange_as(apps_fake, WEB_APP, code)
    profile = api(
        apps_fake, "/sns/userinfo", access_token=grant["access_token"], openid=grant["openid"]
    ).json()
    assert (profile["unionid"], profile["nickname"]) == (unionid_for("bob"), "bob")
    assert (
        api(apps_fake, "/sns/auth", access_token=grant["access_token"], openid=grant["openid"]).json()[
            "errcode"
        ]
        == 0
    )


def test_a_code_is_40029_for_another_app_and_stays_good_for_its_own(
    apps_fake: FakeWeChat,
) -> None:
    code = apps_fake.issue_code(app_id=WEB_APP, person="alice")
    assert exchange_as(apps_fake, DEFAULT_APP_ID, code)["errcode"] == 40029
    assert exchange_as(apps_fake, WEB_APP, code)["openid"] == openid_for(WEB_APP, "alice")
    assert exchange_as(apps_fake, WEB_APP, code)["errcode"] == 40163


def test_a_lost_answer_to_another_app_does_not_spend_the_code(apps_fake: FakeWeChat) -> None:
    code = apps_fake.issue_code(app_id=WEB_APP)
    apps_fake.add_fault(errcode=-1, consume=True)
    assert exchange_as(apps_fake, DEFAULT_APP_ID, code)["errcode"] == -1
    assert "access_token" in exchange_as(apps_fake, WEB_APP, code)


def test_the_secret_of_another_app_is_40125(apps_fake: FakeWeChat) -> None:
    code = apps_fake.issue_code(app_id=WEB_APP)
    assert exchange(apps_fake, code, appid=WEB_APP).json()["errcode"] == 40125
    assert "access_token" in exchange_as(apps_fake, WEB_APP, code)


def test_refresh_belongs_to_the_app_of_the_token(apps_fake: FakeWeChat) -> None:
    grant = exchange_as(apps_fake, WEB_APP, apps_fake.issue_code(app_id=WEB_APP, person="alice"))

    def refresh(appid: str) -> dict[str, Any]:
        body: dict[str, Any] = api(
            apps_fake,
            "/sns/oauth2/refresh_token",
            appid=appid,
            grant_type="refresh_token",
            refresh_token=grant["refresh_token"],
        ).json()
        return body

    assert refresh(DEFAULT_APP_ID)["errcode"] == 40030
    assert refresh("wxunknown000000009")["errcode"] == 40013
    assert refresh(WEB_APP)["openid"] == openid_for(WEB_APP, "alice")


def test_issue_code_refuses_an_unknown_app_and_a_person_with_an_openid(fake: FakeWeChat) -> None:
    with pytest.raises(ValueError, match="wxunknown000000009"):
        fake.issue_code(app_id="wxunknown000000009")
    with pytest.raises(ValueError, match="person"):
        fake.issue_code("oExplicit", person="alice")
    with pytest.raises(ValueError, match="person"):
        fake.issue_code(unionid="uExplicit", person="alice")


def test_add_app_returns_its_secret_and_keeps_the_default(fake: FakeWeChat) -> None:
    default_secret = fake.app_secret
    secret = fake.add_app(WEB_APP)
    assert fake.app_secret_of(WEB_APP) == secret and len(secret) >= 32
    assert fake.add_app(WEB_APP) == secret  # the same app again: nothing changes
    assert fake.add_app("wxchosensecret0004", "chosen") == "chosen"
    assert (fake.app_id, fake.app_secret) == (DEFAULT_APP_ID, default_secret)
    assert fake.app_secret_of(DEFAULT_APP_ID) == default_secret
    assert {secret, "chosen", default_secret} <= fake.issued_secrets()
    code = fake.issue_code(app_id=WEB_APP, person="carol")
    assert exchange_as(fake, WEB_APP, code)["openid"] == openid_for(WEB_APP, "carol")


def test_add_app_refuses_to_change_a_known_app(fake: FakeWeChat) -> None:
    fake.add_app(WEB_APP, "web-secret")
    with pytest.raises(ValueError, match="secret"):
        fake.add_app(WEB_APP, "other-secret")
    with pytest.raises(ValueError, match="unionid"):
        fake.add_app(WEB_APP, unionid=False)
    with pytest.raises(ValueError, match="wxunknown000000009"):
        fake.app_secret_of("wxunknown000000009")


def test_reset_keeps_the_apps(apps_fake: FakeWeChat) -> None:
    apps_fake.reset()
    assert apps_fake.app_secret_of(WEB_APP) == "web-secret"
    code = apps_fake.issue_code(app_id=WEB_APP)
    assert "access_token" in exchange_as(apps_fake, WEB_APP, code)


def test_calls_are_counted_per_app_too(apps_fake: FakeWeChat) -> None:
    code = apps_fake.issue_code(app_id=WEB_APP)
    exchange_as(apps_fake, DEFAULT_APP_ID, code)
    exchange_as(apps_fake, WEB_APP, code)
    authorize(apps_fake, apps_fake.qrconnect_url, appid=WEB_APP, scope="snsapi_login")
    assert apps_fake.exchange_calls(code) == 2
    assert apps_fake.calls("access_token") == 2
    assert apps_fake.calls("access_token", app_id=WEB_APP) == 1
    assert apps_fake.calls("qrconnect", app_id=WEB_APP) == 1
    assert apps_fake.calls("qrconnect", app_id=DEFAULT_APP_ID) == 0
    assert apps_fake.stats()["app_calls"][WEB_APP]["access_token"] == 1
    with pytest.raises(ValueError, match="appid"):
        apps_fake.calls("userinfo", app_id=WEB_APP)


def test_the_pages_accept_every_known_app(apps_fake: FakeWeChat) -> None:
    authorized = authorize(apps_fake, appid=UNBOUND_APP)
    code = query_of(authorized.headers["Location"])["code"][0]
    assert "access_token" in exchange_as(apps_fake, UNBOUND_APP, code)
    scanned = authorize(apps_fake, apps_fake.qrconnect_url, appid=WEB_APP, scope="snsapi_login")
    code = query_of(scanned.headers["Location"])["code"][0]
    assert exchange_as(apps_fake, WEB_APP, code)["scope"] == "snsapi_login"
    unknown = authorize(apps_fake, apps_fake.qrconnect_url, appid="wxunknown000000009")
    assert unknown.status_code == 400 and "appid" in unknown.text


@pytest.mark.parametrize("page", ["authorize", "qrconnect"])
def test_fake_person_query_chooses_the_person(consent_fake: FakeWeChat, page: str) -> None:
    consent_fake.add_app(WEB_APP)
    url = consent_fake.authorize_url if page == "authorize" else consent_fake.qrconnect_url
    scope = "snsapi_userinfo" if page == "authorize" else "snsapi_login"
    response = authorize(consent_fake, url, appid=WEB_APP, scope=scope, fake_person="dora")
    assert response.status_code == 302
    grant = exchange_as(consent_fake, WEB_APP, query_of(response.headers["Location"])["code"][0])
    assert (grant["openid"], grant["unionid"]) == (openid_for(WEB_APP, "dora"), unionid_for("dora"))


def test_fake_person_with_fake_openid_shows_an_error_page(fake: FakeWeChat) -> None:
    response = authorize(fake, fake_person="dora", fake_openid="oDora")
    assert response.status_code == 400 and "person" in response.text


def test_consent_page_offers_a_person(consent_fake: FakeWeChat) -> None:
    page = authorize(consent_fake, scope="snsapi_userinfo").text
    assert f'name="person" value="{DEFAULT_PERSON}"' in page
    assert DEFAULT_PERSON == "alice"


def test_the_consent_form_as_shown_logs_the_same_person_in_through_two_apps(
    consent_fake: FakeWeChat,
) -> None:
    consent_fake.add_app(WEB_APP)
    shown = {"person": DEFAULT_PERSON, "openid": DEFAULT_OPENID, "unionid": "", "nickname": ""}
    in_wechat = confirm(consent_fake, **shown)
    on_the_web = requests.post(
        f"{consent_fake.qrconnect_url}/confirm",
        data={"appid": WEB_APP, "redirect_uri": CALLBACK, "scope": "snsapi_login", "state": "s"}
        | shown
        | {"decision": "allow"},
        allow_redirects=False,
        timeout=5,
    )
    official = exchange_as(consent_fake, DEFAULT_APP_ID, query_of(in_wechat.headers["Location"])["code"][0])
    website = exchange_as(consent_fake, WEB_APP, query_of(on_the_web.headers["Location"])["code"][0])
    assert official["openid"] == openid_for(DEFAULT_APP_ID, "alice")
    assert website["openid"] == openid_for(WEB_APP, "alice")
    assert official["unionid"] == website["unionid"] == unionid_for("alice")


def test_an_openid_typed_over_the_shown_one_wins_over_the_person(
    consent_fake: FakeWeChat,
) -> None:
    response = confirm(consent_fake, person=DEFAULT_PERSON, openid="oTyped", unionid="uTyped")
    grant = exchange(consent_fake, query_of(response.headers["Location"])["code"][0]).json()
    assert (grant["openid"], grant["unionid"]) == ("oTyped", "uTyped")


def test_qrconnect_page_is_a_scan_page_confirmed_on_the_phone(consent_fake: FakeWeChat) -> None:
    consent_fake.add_app(WEB_APP)
    page = authorize(consent_fake, consent_fake.qrconnect_url, appid=WEB_APP, scope="snsapi_login")
    assert page.status_code == 200
    assert "Scan" in page.text and "Confirm on phone" in page.text
    assert 'action="/connect/qrconnect/confirm"' in page.text
    assert f'name="person" value="{DEFAULT_PERSON}"' in page.text
    assert 'name="double"' not in page.text  # the double callback is the in-app browser's
    hidden = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text)
    form = {name: unescape(value) for name, value in hidden}
    form |= {"person": "erin", "decision": "allow"}
    response = requests.post(
        f"{consent_fake.qrconnect_url}/confirm", data=form, allow_redirects=False, timeout=5
    )
    assert response.status_code == 302
    grant = exchange_as(consent_fake, WEB_APP, query_of(response.headers["Location"])["code"][0])
    assert (grant["openid"], grant["scope"]) == (openid_for(WEB_APP, "erin"), "snsapi_login")


# Latency and faults


def test_latency_delays_every_api_answer(fake: FakeWeChat) -> None:
    fake.set_latency(0.2)
    started = time.monotonic()
    api(fake, "/sns/auth", access_token="nope", openid="oAlice")
    assert time.monotonic() - started >= 0.2


def test_code_is_spent_on_receipt_even_if_the_client_gives_up(fake: FakeWeChat) -> None:
    fake.set_latency(0.5)
    code = fake.issue_code()
    with pytest.raises(requests.ReadTimeout):
        exchange(fake, code, timeout=0.1)
    fake.set_latency(0)
    assert exchange(fake, code).json()["errcode"] == 40163


def test_errcode_fault_answers_the_next_request_only(fake: FakeWeChat) -> None:
    fake.add_fault(errcode=-1)
    faulted = exchange(fake, fake.issue_code()).json()
    assert faulted["errcode"] == -1 and RID.search(faulted["errmsg"])
    assert "access_token" in exchange(fake, fake.issue_code()).json()


def test_fault_errmsg_is_sent_verbatim(fake: FakeWeChat) -> None:
    fake.add_fault(errcode=40029, errmsg="invalid code, hints: [ req_id: abc ]")
    assert exchange(fake, fake.issue_code()).json() == {
        "errcode": 40029,
        "errmsg": "invalid code, hints: [ req_id: abc ]",
    }


def test_status_fault_answers_an_http_error_page(fake: FakeWeChat) -> None:
    fake.add_fault(status=500)
    response = exchange(fake, fake.issue_code())
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/html")


def test_body_fault_answers_a_raw_body(fake: FakeWeChat) -> None:
    fake.add_fault(status=502, body="<html>bad gateway</html>")
    response = exchange(fake, fake.issue_code())
    assert response.status_code == 502
    with pytest.raises(ValueError):
        response.json()


def test_delay_fault_outlasts_a_client_timeout(fake: FakeWeChat) -> None:
    fake.add_fault(delay=0.5)
    with pytest.raises(requests.ReadTimeout):
        exchange(fake, fake.issue_code(), timeout=0.1)


def test_fault_applies_as_many_times_as_asked(fake: FakeWeChat) -> None:
    fake.add_fault(errcode=-1, times=2)
    answers = [exchange(fake, fake.issue_code()).json().get("errcode") for _ in range(3)]
    assert answers == [-1, -1, None]


def test_fault_for_one_code_spares_the_others(fake: FakeWeChat) -> None:
    target, other = fake.issue_code(), fake.issue_code()
    fake.add_fault(errcode=-1, code=target)
    assert "access_token" in exchange(fake, other).json()
    assert exchange(fake, target).json()["errcode"] == -1


def test_consuming_fault_spends_the_code(fake: FakeWeChat) -> None:
    code = fake.issue_code()
    fake.add_fault(errcode=-1, consume=True)
    exchange(fake, code)
    assert exchange(fake, code).json()["errcode"] == 40163


def test_non_consuming_fault_leaves_the_code_valid(fake: FakeWeChat) -> None:
    code = fake.issue_code()
    fake.add_fault(status=500, consume=False)
    exchange(fake, code)
    assert "access_token" in exchange(fake, code).json()


def test_faulted_requests_are_counted(fake: FakeWeChat) -> None:
    code = fake.issue_code()
    fake.add_fault(status=500)
    exchange(fake, code)
    assert (fake.exchange_calls(code), fake.total_exchange_calls()) == (1, 1)


def test_fault_on_another_endpoint_leaves_the_exchange_alone(fake: FakeWeChat) -> None:
    fake.add_fault("userinfo", errcode=-1)
    grant = tokens(fake, openid="oAlice", scope="snsapi_userinfo")
    assert (
        api(fake, "/sns/userinfo", access_token=grant["access_token"], openid="oAlice").json()["errcode"]
        == -1
    )


def test_fault_needs_a_known_endpoint(fake: FakeWeChat) -> None:
    with pytest.raises(ValueError):
        fake.add_fault("qrconnect", errcode=-1)


def test_reset_forgets_codes_faults_and_counters(fake: FakeWeChat) -> None:
    code = fake.issue_code()
    fake.add_fault(errcode=-1)
    exchange(fake, code)
    fake.reset()
    assert fake.total_exchange_calls() == 0
    assert exchange(fake, code).json()["errcode"] == 40029
    assert "access_token" in exchange(fake, fake.issue_code()).json()


# Mounting under a path prefix (SCRIPT_NAME)


def call_wsgi(
    app: FakeWeChatApp, path: str, query: str = "", method: str = "GET"
) -> tuple[str, dict[str, str], str]:
    environ: dict[str, Any] = {
        "SCRIPT_NAME": "/fake-wechat",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "REQUEST_METHOD": method,
        "wsgi.input": io.BytesIO(b""),
    }
    setup_testing_defaults(environ)
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        captured["status"], captured["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response)).decode()
    return captured["status"], captured["headers"], body


def test_consent_form_posts_under_the_mount_prefix() -> None:
    state = FakeState(auto_approve=False)
    query = urlencode(
        {"appid": state.app_id, "redirect_uri": CALLBACK, "response_type": "code"}
        | {"scope": "snsapi_base", "state": "s"}
    )
    status, _, body = call_wsgi(FakeWeChatApp(state), "/connect/oauth2/authorize", query)
    assert status == "200 OK"
    assert 'action="/fake-wechat/connect/oauth2/authorize/confirm"' in body


def test_api_answers_under_the_mount_prefix() -> None:
    state = FakeState()
    code = state.issue_code()
    query = f"appid={state.app_id}&secret={state.app_secret}&code={code}&grant_type=authorization_code"
    status, headers, body = call_wsgi(FakeWeChatApp(state), "/sns/oauth2/access_token", query)
    assert status == "200 OK"
    assert headers["Content-Type"].startswith("application/json")
    assert "access_token" in json.loads(body)


# Control API and remote handles


def test_remote_handle_issues_codes_and_reads_counters(fake: FakeWeChat) -> None:
    remote = RemoteFakeWeChat(fake.base_url)
    code = remote.issue_code("oRemote", unionid="uRemote", scope="snsapi_userinfo")
    assert exchange(fake, code).json()["unionid"] == "uRemote"
    assert (
        remote.exchange_calls(code),
        remote.total_exchange_calls(),
        remote.calls("userinfo"),
    ) == (1, 1, 0)


def test_remote_handle_adds_faults(fake: FakeWeChat) -> None:
    RemoteFakeWeChat(fake.base_url).add_fault(errcode=45011, times=1)
    assert exchange(fake, fake.issue_code()).json()["errcode"] == 45011


def test_remote_handle_learns_appid_and_secret(fake: FakeWeChat) -> None:
    assert RemoteFakeWeChat(fake.base_url).settings() == fake.settings()


def test_control_api_refuses_a_bad_fault(fake: FakeWeChat) -> None:
    with pytest.raises(FakeWeChatControlError, match="400"):
        RemoteFakeWeChat(fake.base_url).add_fault("nowhere", errcode=-1)


def test_remote_handle_adds_apps_and_issues_codes_for_persons(apps_fake: FakeWeChat) -> None:
    remote = RemoteFakeWeChat(apps_fake.base_url)
    secret = remote.add_app("wxremote0000000005", unionid=False)
    assert remote.app_secret_of("wxremote0000000005") == secret
    assert remote.app_secret_of(WEB_APP) == "web-secret"
    code = remote.issue_code(app_id=WEB_APP, person="frank")
    assert exchange_as(apps_fake, WEB_APP, code)["openid"] == openid_for(WEB_APP, "frank")
    code = remote.issue_code(app_id="wxremote0000000005", person="frank")
    assert "unionid" not in exchange_as(apps_fake, "wxremote0000000005", code)
    with pytest.raises(ValueError, match="wxunknown000000009"):
        remote.app_secret_of("wxunknown000000009")
    with pytest.raises(FakeWeChatControlError, match="400"):
        remote.issue_code(app_id="wxunknown000000009")


PROCESS_WEB_APP = "wxprocessweb000002"


@pytest.fixture(scope="module")
def fake_process() -> Iterator[FakeWeChatProcess]:
    apps = [FakeApp(PROCESS_WEB_APP, unionid=False)]
    with FakeWeChatProcess(app_id="wxprocess000000001", apps=apps) as process:
        yield process


def test_process_fake_knows_the_apps_it_was_given_and_added(
    fake_process: FakeWeChatProcess,
) -> None:
    fake_process.reset()
    secret = fake_process.add_app("wxprocessmore00003")
    assert fake_process.app_secret_of("wxprocessmore00003") == secret
    assert fake_process.app_secret_of(PROCESS_WEB_APP) == fake_process.apps[0].app_secret
    for app_id in (fake_process.app_id, PROCESS_WEB_APP, "wxprocessmore00003"):
        grant = exchange_as(fake_process, app_id, fake_process.issue_code(app_id=app_id, person="gus"))
        assert grant["openid"] == openid_for(app_id, "gus")
        assert grant.get("unionid") == (None if app_id == PROCESS_WEB_APP else unionid_for("gus"))


def test_process_fake_exchanges_codes_and_counts_them(fake_process: FakeWeChatProcess) -> None:
    fake_process.reset()
    code = fake_process.issue_code("oProcess")
    assert exchange(fake_process, code).json()["openid"] == "oProcess"
    assert exchange(fake_process, code).json()["errcode"] == 40163
    assert fake_process.stats()["exchange_calls"] == {code: 2}


def test_process_fake_applies_latency(fake_process: FakeWeChatProcess) -> None:
    fake_process.set_latency(0.2)
    try:
        started = time.monotonic()
        exchange(fake_process, "unknown")
        assert time.monotonic() - started >= 0.2
    finally:
        fake_process.set_latency(0)


def test_process_fake_ends_on_stop() -> None:
    process = FakeWeChatProcess()
    process.start()
    url = process.base_url
    process.stop()
    assert not process.running
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)


def test_process_fake_prints_only_its_ready_line(capfd: pytest.CaptureFixture[str]) -> None:
    with FakeWeChatProcess() as process:
        code = process.issue_code()
        token = exchange(process, code).json()["access_token"]
        exchange(process, code)
        secret = process.app_secret
    out, err = capfd.readouterr()
    assert not any(value in out + err for value in (code, token, secret))


def test_server_prints_nothing_even_when_clients_hang_up(
    fake: FakeWeChat, capfd: pytest.CaptureFixture[str]
) -> None:
    fake.add_fault(delay=0.3)
    with pytest.raises(requests.ReadTimeout):
        exchange(fake, fake.issue_code(), timeout=0.05)
    exchange(fake, "unknown")
    time.sleep(0.4)
    assert capfd.readouterr() == ("", "")


# The pytest plugin


def test_settings_point_at_the_fake(fake: FakeWeChat) -> None:
    assert fake.settings() == {
        "APP_ID": fake.app_id,
        "APP_SECRET": fake.app_secret,
        "API_BASE_URL": fake.base_url,
        "AUTHORIZE_URL": f"{fake.base_url}/connect/oauth2/authorize",
        "QRCONNECT_URL": f"{fake.base_url}/connect/qrconnect",
        "WXLOGIN_JS_URL": f"{fake.base_url}/connect/wxLogin.js",
        "WECOM_API_BASE_URL": fake.base_url,
        "WECOM_SSO_URL": f"{fake.base_url}/wwlogin/sso/login",
    }


def test_fake_wechat_fixture_points_django_settings_at_the_fake(
    fake_wechat: FakeWeChat, settings: Any
) -> None:
    assert settings.WECHAT_OAUTH["API_BASE_URL"] == fake_wechat.api_base_url
    assert settings.WECHAT_OAUTH["APP_SECRET"] == fake_wechat.app_secret


@pytest.fixture
def site_scope(settings: Any) -> None:
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "SCOPE": "snsapi_userinfo"}


def test_fake_wechat_fixture_keeps_the_sites_other_settings(
    site_scope: None, fake_wechat: FakeWeChat, settings: Any
) -> None:
    assert settings.WECHAT_OAUTH["SCOPE"] == "snsapi_userinfo"
    assert settings.WECHAT_OAUTH["APP_ID"] == fake_wechat.app_id


def test_app_settings_follow_the_fake_wechat_fixture(fake_wechat: FakeWeChat) -> None:
    from wechat_oauth.conf import app_settings

    assert app_settings.API_BASE_URL == fake_wechat.api_base_url


def test_fake_wechat_fixture_starts_from_a_clean_fake(
    fake_wechat_server: FakeWeChat, request: pytest.FixtureRequest
) -> None:
    exchange(fake_wechat_server, "unknown-before")
    fake_wechat_server.set_latency(1.5)
    fake = request.getfixturevalue("fake_wechat")
    assert (fake.total_exchange_calls(), fake.state.latency) == (0, 0)


def test_settings_override_is_undone_on_exit(fake: FakeWeChat) -> None:
    from django.conf import settings

    before = dict(settings.WECHAT_OAUTH)
    with wechat_settings_override(fake):
        assert settings.WECHAT_OAUTH["API_BASE_URL"] == fake.base_url
    assert settings.WECHAT_OAUTH == before


# wxLogin.js and the QR panel it draws (login_type=jssdk)


def wxlogin_iframe_url(fake: Any, *, self_redirect: str = "false", **overrides: str) -> str:
    """The iframe address wxLogin.js builds: no response_type, redirect_uri URL-encoded once."""
    params = {"appid": WEB_APP, "scope": "snsapi_login", "redirect_uri": CALLBACK, "state": "s1"}
    params |= overrides
    return (
        f"{fake.qrconnect_url}?appid={params['appid']}&scope={params['scope']}"
        f"&redirect_uri={requests.utils.quote(params['redirect_uri'], safe='')}"
        f"&state={params['state']}&login_type=jssdk&self_redirect={self_redirect}"
        "&styletype=&sizetype=&bgcolor=&rst=&style=black"
    )


def test_wxlogin_js_is_served_beside_qrconnect(fake: FakeWeChat) -> None:
    response = requests.get(f"{fake.base_url}/connect/wxLogin.js", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/javascript")
    script = response.text
    assert "window.WxLogin = function" in script
    assert 'new URL("qrconnect", script' in script  # its own qrconnect, under any mount prefix
    assert "&login_type=jssdk&self_redirect=" in script and "response_type" not in script


def test_wxlogin_js_is_served_under_the_mount_prefix() -> None:
    status, headers, body = call_wsgi(FakeWeChatApp(FakeState()), "/connect/wxLogin.js", "")
    assert status == "200 OK" and headers["Content-Type"].startswith("application/javascript")
    assert "WxLogin" in body


def test_qr_panel_page_answers_in_the_top_window(consent_fake: FakeWeChat) -> None:
    consent_fake.add_app(WEB_APP)
    page = requests.get(wxlogin_iframe_url(consent_fake), timeout=5)
    assert page.status_code == 200
    assert "Confirm on phone" in page.text
    assert 'action="/connect/qrconnect/confirm" target="_top"' in page.text
    assert f'name="person" value="{DEFAULT_PERSON}"' in page.text
    assert consent_fake.calls("qrconnect", app_id=WEB_APP) == 1
    hidden = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text)
    form = {name: unescape(value) for name, value in hidden}
    assert form == {"appid": WEB_APP, "redirect_uri": CALLBACK, "scope": "snsapi_login", "state": "s1"}
    response = requests.post(
        f"{consent_fake.qrconnect_url}/confirm",
        data=form | {"person": DEFAULT_PERSON, "decision": "allow"},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(CALLBACK + "&code=") and location.endswith("&state=s1")
    grant = exchange_as(consent_fake, WEB_APP, query_of(location)["code"][0])
    assert grant["openid"] == openid_for(WEB_APP, DEFAULT_PERSON)
    assert grant["unionid"] == unionid_for(DEFAULT_PERSON)


def test_qr_panel_page_with_self_redirect_answers_in_the_iframe(consent_fake: FakeWeChat) -> None:
    consent_fake.add_app(WEB_APP)
    page = requests.get(wxlogin_iframe_url(consent_fake, self_redirect="true"), timeout=5)
    assert page.status_code == 200
    assert 'action="/connect/qrconnect/confirm" target="_self"' in page.text


def test_qr_panel_approved_at_once_moves_the_top_window(apps_fake: FakeWeChat) -> None:
    page = requests.get(wxlogin_iframe_url(apps_fake), allow_redirects=False, timeout=5)
    assert page.status_code == 200
    found = re.search(r"window\.top\.location\.replace\((\"[^\"]*\")\)", page.text)
    assert found, page.text
    location = json.loads(found.group(1))
    assert location.startswith(CALLBACK + "&code=")
    assert "access_token" in exchange_as(apps_fake, WEB_APP, query_of(location)["code"][0])
    in_frame = requests.get(
        wxlogin_iframe_url(apps_fake, self_redirect="true"), allow_redirects=False, timeout=5
    )
    assert in_frame.status_code == 302
    assert in_frame.headers["Location"].startswith(CALLBACK + "&code=")


def test_qr_panel_page_refuses_what_qrconnect_refuses(consent_fake: FakeWeChat) -> None:
    unknown = requests.get(wxlogin_iframe_url(consent_fake, appid="wxunknown000000009"), timeout=5)
    assert unknown.status_code == 400 and "appid" in unknown.text
    consent_fake.add_app(WEB_APP)
    wrong_scope = requests.get(wxlogin_iframe_url(consent_fake, scope="snsapi_base"), timeout=5)
    assert wrong_scope.status_code == 400 and "scope" in wrong_scope.text


# Mini Program: sns/jscode2session (codes from issue_js_code, as wx.login hands them out)

MINI_APP = "wxfakemini00000006"
UNBOUND_MINI_APP = "wxfakeminiunb00007"


@pytest.fixture
def mini_fake(fake: FakeWeChat) -> FakeWeChat:
    fake.add_app(MINI_APP, "mini-secret")
    fake.add_app(UNBOUND_MINI_APP, unionid=False)
    return fake


def jscode2session(
    fake: Any, js_code: str | None, app_id: str = MINI_APP, **overrides: Any
) -> dict[str, Any]:
    params = {
        "appid": app_id,
        "secret": fake.app_secret_of(app_id),
        "js_code": js_code,
        "grant_type": "authorization_code",
        **overrides,
    }
    body: dict[str, Any] = api(
        fake, "/sns/jscode2session", **{k: v for k, v in params.items() if v is not None}
    ).json()
    return body


def test_jscode2session_answers_openid_session_key_and_unionid(mini_fake: FakeWeChat) -> None:
    body = jscode2session(mini_fake, mini_fake.issue_js_code(MINI_APP, person="hana"))
    assert set(body) == {"openid", "session_key", "unionid"}
    assert (body["openid"], body["unionid"]) == (openid_for(MINI_APP, "hana"), unionid_for("hana"))
    assert len(base64.b64decode(body["session_key"])) == 16
    assert mini_fake.session_key_of(MINI_APP, body["openid"]) == body["session_key"]
    assert body["session_key"] in mini_fake.issued_secrets()


def test_jscode2session_of_an_unbound_app_answers_no_unionid(mini_fake: FakeWeChat) -> None:
    body = jscode2session(
        mini_fake, mini_fake.issue_js_code(UNBOUND_MINI_APP, person="hana"), UNBOUND_MINI_APP
    )
    assert set(body) == {"openid", "session_key"}
    assert body["openid"] == openid_for(UNBOUND_MINI_APP, "hana")
    explicit = jscode2session(mini_fake, mini_fake.issue_js_code(MINI_APP, openid="oMini"))
    assert explicit["openid"] == "oMini" and "unionid" not in explicit


def test_js_code_works_once_and_for_five_minutes(mini_fake: FakeWeChat) -> None:
    code = mini_fake.issue_js_code(MINI_APP)
    assert jscode2session(mini_fake, code)["openid"] == DEFAULT_OPENID
    assert jscode2session(mini_fake, code)["errcode"] == 40163
    late = mini_fake.issue_js_code(MINI_APP)
    mini_fake.advance(299)
    assert "session_key" in jscode2session(mini_fake, late)
    expired = mini_fake.issue_js_code(MINI_APP)
    mini_fake.advance(301)
    assert jscode2session(mini_fake, expired)["errcode"] == 40029
    unknown = jscode2session(mini_fake, "unknown")
    assert unknown["errcode"] == 40029 and RID.search(unknown["errmsg"])


def test_jscode2session_refuses_bad_credentials_and_leaves_the_code_unspent(
    mini_fake: FakeWeChat,
) -> None:
    code = mini_fake.issue_js_code(MINI_APP, person="ivy")
    assert jscode2session(mini_fake, code, appid="wxunknown000000009")["errcode"] == 40013
    assert jscode2session(mini_fake, code, secret="wrong")["errcode"] == 40125
    assert jscode2session(mini_fake, None)["errcode"] == 41008
    assert jscode2session(mini_fake, code, UNBOUND_MINI_APP)["errcode"] == 40029
    assert jscode2session(mini_fake, code)["openid"] == openid_for(MINI_APP, "ivy")


def test_each_jscode2session_rotates_the_session_key(mini_fake: FakeWeChat) -> None:
    openid = openid_for(MINI_APP, "jay")
    assert mini_fake.session_key_of(MINI_APP, openid) is None
    first = jscode2session(mini_fake, mini_fake.issue_js_code(MINI_APP, person="jay"))
    second = jscode2session(mini_fake, mini_fake.issue_js_code(MINI_APP, person="jay"))
    assert first["openid"] == second["openid"] == openid
    assert first["session_key"] != second["session_key"]
    assert mini_fake.session_key_of(MINI_APP, openid) == second["session_key"]
    jscode2session(mini_fake, "unknown")  # a refused call rotates nothing
    assert mini_fake.session_key_of(MINI_APP, openid) == second["session_key"]
    with pytest.raises(ValueError, match="wxunknown000000009"):
        mini_fake.session_key_of("wxunknown000000009", openid)


def test_js_codes_and_web_codes_are_not_interchangeable(mini_fake: FakeWeChat) -> None:
    js_code, web_code = mini_fake.issue_js_code(MINI_APP), mini_fake.issue_code(app_id=MINI_APP)
    assert exchange_as(mini_fake, MINI_APP, js_code)["errcode"] == 40029
    assert jscode2session(mini_fake, web_code)["errcode"] == 40029
    assert "session_key" in jscode2session(mini_fake, js_code)
    assert "access_token" in exchange_as(mini_fake, MINI_APP, web_code)


def test_issue_js_code_refuses_an_unknown_app_and_a_person_with_an_openid(
    mini_fake: FakeWeChat,
) -> None:
    with pytest.raises(ValueError, match="wxunknown000000009"):
        mini_fake.issue_js_code("wxunknown000000009")
    with pytest.raises(ValueError, match="person"):
        mini_fake.issue_js_code(MINI_APP, person="kim", openid="oKim")
    default_app_code = mini_fake.issue_js_code()
    assert "session_key" in jscode2session(mini_fake, default_app_code, DEFAULT_APP_ID)


@pytest.mark.parametrize("errcode", [45011, 40226, -1])
def test_jscode2session_faults_answer_wechats_errors(mini_fake: FakeWeChat, errcode: int) -> None:
    mini_fake.add_fault("jscode2session", errcode=errcode)
    code = mini_fake.issue_js_code(MINI_APP)
    faulted = jscode2session(mini_fake, code)
    assert faulted["errcode"] == errcode and RID.search(faulted["errmsg"])
    assert jscode2session(mini_fake, code)["errcode"] == 40163  # processed, answer replaced
    assert "session_key" in jscode2session(mini_fake, mini_fake.issue_js_code(MINI_APP))


def test_jscode2session_fault_for_one_code_and_without_consuming(mini_fake: FakeWeChat) -> None:
    target, other = mini_fake.issue_js_code(MINI_APP), mini_fake.issue_js_code(MINI_APP)
    mini_fake.add_fault("jscode2session", errcode=-1, code=target, consume=False)
    assert "session_key" in jscode2session(mini_fake, other)
    assert jscode2session(mini_fake, target)["errcode"] == -1
    assert "session_key" in jscode2session(mini_fake, target)
    assert exchange(mini_fake, mini_fake.issue_code()).json()["scope"] == "snsapi_base"


def test_jscode2session_calls_are_counted_per_code_and_per_app(mini_fake: FakeWeChat) -> None:
    code = mini_fake.issue_js_code(MINI_APP)
    jscode2session(mini_fake, code)
    jscode2session(mini_fake, code)
    assert mini_fake.exchange_calls(code) == 2
    assert mini_fake.calls("jscode2session") == 2
    assert mini_fake.calls("jscode2session", app_id=MINI_APP) == 2
    assert mini_fake.calls("jscode2session", app_id=UNBOUND_MINI_APP) == 0
    assert mini_fake.total_exchange_calls() == 0  # access_token requests only
    mini_fake.reset()
    assert mini_fake.calls("jscode2session") == 0
    assert jscode2session(mini_fake, mini_fake.issue_js_code(MINI_APP)).get("session_key")
    assert mini_fake.session_key_of(MINI_APP, DEFAULT_OPENID)


def test_remote_handle_issues_js_codes_and_reads_session_keys(mini_fake: FakeWeChat) -> None:
    remote = RemoteFakeWeChat(mini_fake.base_url)
    body = jscode2session(mini_fake, remote.issue_js_code(MINI_APP, person="lou"))
    assert body["openid"] == openid_for(MINI_APP, "lou")
    assert remote.session_key_of(MINI_APP, body["openid"]) == body["session_key"]
    assert remote.session_key_of(MINI_APP, "oNobody") is None
    with pytest.raises(FakeWeChatControlError, match="400"):
        remote.issue_js_code("wxunknown000000009")
    with pytest.raises(ValueError, match="wxunknown000000009"):
        remote.session_key_of("wxunknown000000009", "oNobody")


def test_process_fake_serves_the_mini_program_api(fake_process: FakeWeChatProcess) -> None:
    fake_process.reset()
    fake_process.add_app(MINI_APP, "mini-secret")
    code = fake_process.issue_js_code(MINI_APP, person="max")
    body = jscode2session(fake_process, code)
    assert body["unionid"] == unionid_for("max")
    assert fake_process.session_key_of(MINI_APP, body["openid"]) == body["session_key"]
    assert fake_process.exchange_calls(code) == 1


# WeCom (企业微信): cgi-bin/gettoken, auth/getuserinfo, auth/getuserdetail and the pages

CORP = "wwfakecorp00000001"
AGENT = "1000002"
OTHER_AGENT = "1000003"
WECOM_RID = re.compile(r", hint: \[\d+-[0-9a-f]+\], more info at https://open\.work\.weixin\.qq\.com/")


@pytest.fixture
def wecom_fake(fake: FakeWeChat) -> FakeWeChat:
    fake.add_corp(CORP, AGENT, "agent-secret")
    fake.add_corp(CORP, OTHER_AGENT)
    return fake


def wecom(fake: Any, path: str, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = requests.get(
        f"{fake.wecom_api_base_url}/cgi-bin/{path}", params=params, timeout=5
    ).json()
    return body


def wecom_token(fake: Any, agent: str = AGENT) -> str:
    body = wecom(fake, "gettoken", corpid=CORP, corpsecret=fake.wecom_secret_of(CORP, agent))
    assert body["errcode"] == 0, body
    return str(body["access_token"])


def user_detail(fake: Any, token: str, ticket: Any) -> dict[str, Any]:
    body: dict[str, Any] = requests.post(
        f"{fake.wecom_api_base_url}/cgi-bin/auth/getuserdetail",
        params={"access_token": token},
        json={"user_ticket": ticket},
        timeout=5,
    ).json()
    return body


def test_add_corp_returns_the_agents_secret(fake: FakeWeChat) -> None:
    assert fake.add_corp(CORP, AGENT, "agent-secret") == "agent-secret"
    assert fake.add_corp(CORP, 1000002) == "agent-secret"  # agentids are numbers too
    other = fake.add_corp(CORP, OTHER_AGENT)
    assert len(other) >= 32 and fake.wecom_secret_of(CORP, OTHER_AGENT) == other
    assert {"agent-secret", other} <= fake.issued_secrets()
    with pytest.raises(ValueError, match="secret"):
        fake.add_corp(CORP, AGENT, "another-secret")
    with pytest.raises(ValueError, match="1000009"):
        fake.wecom_secret_of(CORP, "1000009")


def test_gettoken_answers_the_agents_token(wecom_fake: FakeWeChat) -> None:
    body = wecom(wecom_fake, "gettoken", corpid=CORP, corpsecret="agent-secret")
    assert set(body) == {"errcode", "errmsg", "access_token", "expires_in"}
    assert (body["errcode"], body["errmsg"], body["expires_in"]) == (0, "ok", 7200)
    again = wecom(wecom_fake, "gettoken", corpid=CORP, corpsecret="agent-secret")
    assert again["access_token"] == body["access_token"]  # the same while it lives
    assert wecom_token(wecom_fake, OTHER_AGENT) != body["access_token"]
    assert body["access_token"] in wecom_fake.issued_secrets()
    wecom_fake.advance(7200)
    assert wecom_token(wecom_fake) != body["access_token"]


def test_gettoken_refuses_a_wrong_secret_and_an_unknown_corp(wecom_fake: FakeWeChat) -> None:
    wrong = wecom(wecom_fake, "gettoken", corpid=CORP, corpsecret="wrong")
    assert wrong["errcode"] == 40001 and WECOM_RID.search(wrong["errmsg"])
    unknown = wecom(wecom_fake, "gettoken", corpid="wwunknown000000009", corpsecret="agent-secret")
    assert unknown["errcode"] == 40013


def test_gettoken_calls_are_counted_per_agent(wecom_fake: FakeWeChat) -> None:
    wecom_token(wecom_fake)
    wecom_token(wecom_fake)
    wecom_token(wecom_fake, OTHER_AGENT)
    wecom(wecom_fake, "gettoken", corpid=CORP, corpsecret="wrong")
    assert wecom_fake.gettoken_calls(CORP, AGENT) == 2
    assert wecom_fake.gettoken_calls(CORP, int(OTHER_AGENT)) == 1
    assert wecom_fake.calls("gettoken") == 4
    assert wecom_fake.stats()["wecom_calls"][CORP][AGENT]["gettoken"] == 2
    with pytest.raises(ValueError, match="1000009"):
        wecom_fake.gettoken_calls(CORP, "1000009")


def test_an_invalidated_token_is_expired_and_gettoken_answers_a_new_one(
    wecom_fake: FakeWeChat,
) -> None:
    old = wecom_token(wecom_fake)
    other = wecom_token(wecom_fake, OTHER_AGENT)
    wecom_fake.invalidate_wecom_token(CORP, AGENT)
    code = wecom_fake.issue_wecom_code(CORP, AGENT, "zhangsan")
    expired = wecom(wecom_fake, "auth/getuserinfo", access_token=old, code=code)
    assert expired["errcode"] == 42001 and WECOM_RID.search(expired["errmsg"])
    assert wecom(wecom_fake, "auth/getuserinfo", access_token="never", code=code)["errcode"] == 40014
    assert wecom(wecom_fake, "auth/getuserinfo", code=code)["errcode"] == 41001
    new = wecom_token(wecom_fake)
    assert new != old
    assert wecom(wecom_fake, "auth/getuserinfo", access_token=new, code=code)["userid"] == "zhangsan"
    assert wecom_token(wecom_fake, OTHER_AGENT) == other  # the other agent's token lives on


def test_getuserinfo_answers_a_member_once(wecom_fake: FakeWeChat) -> None:
    token = wecom_token(wecom_fake)
    code = wecom_fake.issue_wecom_code(CORP, AGENT, "zhangsan")
    body = wecom(wecom_fake, "auth/getuserinfo", access_token=token, code=code)
    assert body == {"errcode": 0, "errmsg": "ok", "userid": "zhangsan"}
    reused = wecom(wecom_fake, "auth/getuserinfo", access_token=token, code=code)
    assert reused["errcode"] == 40029 and WECOM_RID.search(reused["errmsg"])
    assert wecom(wecom_fake, "auth/getuserinfo", access_token=token, code="nope")["errcode"] == 40029
    assert wecom_fake.exchange_calls(code) == 2
    assert wecom_fake.stats()["wecom_calls"][CORP][AGENT]["getuserinfo"] == 3


def test_wecom_code_lives_five_minutes_and_belongs_to_its_agent(wecom_fake: FakeWeChat) -> None:
    token, other_token = wecom_token(wecom_fake), wecom_token(wecom_fake, OTHER_AGENT)
    code = wecom_fake.issue_wecom_code(CORP, AGENT)
    assert wecom(wecom_fake, "auth/getuserinfo", access_token=other_token, code=code)["errcode"] == 40029
    wecom_fake.advance(299)
    assert wecom(wecom_fake, "auth/getuserinfo", access_token=token, code=code)["userid"] == (
        DEFAULT_WECOM_USERID
    )
    late = wecom_fake.issue_wecom_code(CORP, AGENT)
    wecom_fake.advance(301)
    token = wecom_token(wecom_fake)
    assert wecom(wecom_fake, "auth/getuserinfo", access_token=token, code=late)["errcode"] == 40029


def test_getuserinfo_answers_a_non_member_by_openid(wecom_fake: FakeWeChat) -> None:
    token = wecom_token(wecom_fake)
    code = wecom_fake.issue_wecom_code(CORP, AGENT, member=False, person="nina")
    body = wecom(wecom_fake, "auth/getuserinfo", access_token=token, code=code)
    assert body == {
        "errcode": 0,
        "errmsg": "ok",
        "openid": wecom_openid_for(CORP, "nina"),
        "external_userid": external_userid_for(CORP, "nina"),
    }
    with pytest.raises(ValueError, match="userid"):
        wecom_fake.issue_wecom_code(CORP, AGENT, "zhangsan", member=False)
    with pytest.raises(ValueError, match="scope"):
        wecom_fake.issue_wecom_code(CORP, AGENT, scope="snsapi_userinfo")
    with pytest.raises(ValueError, match="1000009"):
        wecom_fake.issue_wecom_code(CORP, "1000009")


def test_privateinfo_code_answers_a_user_ticket_for_getuserdetail(wecom_fake: FakeWeChat) -> None:
    token = wecom_token(wecom_fake)
    code = wecom_fake.issue_wecom_code(CORP, AGENT, "lisi", scope="snsapi_privateinfo")
    body = wecom(wecom_fake, "auth/getuserinfo", access_token=token, code=code)
    assert (body["userid"], body["expires_in"]) == ("lisi", 1800)
    assert body["user_ticket"] in wecom_fake.issued_secrets()
    detail = user_detail(wecom_fake, token, body["user_ticket"])
    assert detail["errcode"] == 0 and detail["userid"] == "lisi"
    assert set(detail) >= {"gender", "avatar", "qr_code", "mobile", "email", "biz_mail", "address"}
    assert user_detail(wecom_fake, token, body["user_ticket"])["userid"] == "lisi"  # reusable
    assert wecom_fake.stats()["wecom_calls"][CORP][AGENT]["getuserdetail"] == 2


def test_getuserdetail_refuses_a_bad_or_expired_ticket(wecom_fake: FakeWeChat) -> None:
    token, other_token = wecom_token(wecom_fake), wecom_token(wecom_fake, OTHER_AGENT)
    code = wecom_fake.issue_wecom_code(CORP, AGENT, "lisi", scope="snsapi_privateinfo")
    ticket = wecom(wecom_fake, "auth/getuserinfo", access_token=token, code=code)["user_ticket"]
    bad = user_detail(wecom_fake, token, "nope")
    assert bad["errcode"] == 40029 and WECOM_RID.search(bad["errmsg"])
    assert user_detail(wecom_fake, token, None)["errcode"] == 40029
    assert user_detail(wecom_fake, other_token, ticket)["errcode"] == 40029
    assert user_detail(wecom_fake, "never", ticket)["errcode"] == 40014
    as_get = wecom(wecom_fake, "auth/getuserdetail", access_token=token)
    assert as_get["errcode"] == 43002
    wecom_fake.advance(1800)
    token = wecom_token(wecom_fake)
    assert user_detail(wecom_fake, token, ticket)["errcode"] == 40029


def test_a_base_code_and_a_non_member_get_no_user_ticket(wecom_fake: FakeWeChat) -> None:
    token = wecom_token(wecom_fake)
    outsider = wecom_fake.issue_wecom_code(CORP, AGENT, member=False, scope="snsapi_privateinfo")
    body = wecom(wecom_fake, "auth/getuserinfo", access_token=token, code=outsider)
    assert "user_ticket" not in body and body["openid"] == wecom_openid_for(CORP, DEFAULT_PERSON)


def test_wecom_faults_answer_in_wecoms_format(wecom_fake: FakeWeChat) -> None:
    token = wecom_token(wecom_fake)
    code = wecom_fake.issue_wecom_code(CORP, AGENT)
    wecom_fake.add_fault("getuserinfo", errcode=-1, code=code)
    busy = wecom(wecom_fake, "auth/getuserinfo", access_token=token, code=code)
    assert busy["errcode"] == -1 and WECOM_RID.search(busy["errmsg"])
    assert wecom(wecom_fake, "auth/getuserinfo", access_token=token, code=code)["errcode"] == 40029
    wecom_fake.add_fault("gettoken", errcode=45009)
    assert wecom(wecom_fake, "gettoken", corpid=CORP, corpsecret="agent-secret")["errcode"] == 45009


def test_reset_forgets_wecom_tokens_codes_and_counters(wecom_fake: FakeWeChat) -> None:
    token = wecom_token(wecom_fake)
    code = wecom_fake.issue_wecom_code(CORP, AGENT)
    wecom_fake.reset()
    assert wecom_fake.gettoken_calls(CORP, AGENT) == 0
    assert wecom(wecom_fake, "auth/getuserinfo", access_token=token, code=code)["errcode"] == 40014
    assert wecom_fake.wecom_secret_of(CORP, AGENT) == "agent-secret"  # corps stay


def test_wecom_urls_point_at_the_fake(wecom_fake: FakeWeChat) -> None:
    assert wecom_fake.wecom_api_base_url == wecom_fake.base_url
    assert wecom_fake.wecom_sso_url == f"{wecom_fake.base_url}/wwlogin/sso/login"


def wecom_authorize(fake: Any, url: str | None = None, **overrides: Any) -> requests.Response:
    params = {
        "appid": CORP,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "snsapi_base",
        "state": "St4te",
        "agentid": AGENT,
        **overrides,
    }
    return requests.get(url or fake.authorize_url, params=params, allow_redirects=False, timeout=5)


def sso(fake: Any, **overrides: Any) -> requests.Response:
    params = {
        "login_type": "CorpApp",
        "appid": CORP,
        "agentid": AGENT,
        "redirect_uri": CALLBACK,
        "state": "St4te",
        **overrides,
    }
    return requests.get(fake.wecom_sso_url, params=params, allow_redirects=False, timeout=5)


def wecom_user_of(fake: Any, location: str, agent: str = AGENT) -> dict[str, Any]:
    query = query_of(location)
    assert query["state"] == ["St4te"] and set(query) == {"next", "code", "state"}
    return wecom(fake, "auth/getuserinfo", access_token=wecom_token(fake, agent), code=query["code"][0])


def test_wecom_authorize_redirects_with_a_code_of_the_agent(wecom_fake: FakeWeChat) -> None:
    response = wecom_authorize(wecom_fake, fake_userid="wangwu")
    assert response.status_code == 302
    assert wecom_user_of(wecom_fake, response.headers["Location"])["userid"] == "wangwu"
    private = wecom_authorize(wecom_fake, scope="snsapi_privateinfo", agentid=OTHER_AGENT)
    body = wecom_user_of(wecom_fake, private.headers["Location"], OTHER_AGENT)
    assert body["userid"] == DEFAULT_WECOM_USERID and "user_ticket" in body
    outsider = wecom_authorize(wecom_fake, fake_member="0", fake_person="olga")
    body = wecom_user_of(wecom_fake, outsider.headers["Location"])
    assert body["openid"] == wecom_openid_for(CORP, "olga")
    assert wecom_fake.stats()["wecom_calls"][CORP][AGENT]["authorize"] == 2


def test_wecom_authorize_refuses_unknown_corps_agents_and_scopes(wecom_fake: FakeWeChat) -> None:
    for overrides in (
        {"appid": "wwunknown000000009"},
        {"agentid": "1000009"},
        {"scope": "snsapi_userinfo"},
        {"agentid": ""},
    ):
        response = wecom_authorize(wecom_fake, **overrides)
        assert response.status_code == 400, overrides
    assert authorize(wecom_fake).status_code == 302  # the WeChat app's page is unchanged


def test_wecom_authorize_consent_page_posts_back(consent_fake: FakeWeChat) -> None:
    consent_fake.add_corp(CORP, AGENT)
    page = wecom_authorize(consent_fake)
    assert page.status_code == 200
    assert 'action="/connect/oauth2/authorize/confirm"' in page.text
    hidden = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text)
    form = {name: unescape(value) for name, value in hidden} | {"userid": "zhaoliu"}
    assert form["agentid"] == AGENT
    response = requests.post(
        f"{consent_fake.authorize_url}/confirm",
        data=form | {"decision": "allow"},
        allow_redirects=False,
        timeout=5,
    )
    assert wecom_user_of(consent_fake, response.headers["Location"])["userid"] == "zhaoliu"


def test_sso_page_is_confirmed_on_the_phone(consent_fake: FakeWeChat) -> None:
    consent_fake.add_corp(CORP, AGENT)
    page = sso(consent_fake)
    assert page.status_code == 200 and "Confirm on phone" in page.text
    assert 'action="/wwlogin/sso/login/confirm"' in page.text
    hidden = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text)
    form = {name: unescape(value) for name, value in hidden} | {"userid": "sunqi"}
    response = requests.post(
        f"{consent_fake.wecom_sso_url}/confirm",
        data=form | {"decision": "allow"},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 302
    assert wecom_user_of(consent_fake, response.headers["Location"])["userid"] == "sunqi"
    cancelled = requests.post(
        f"{consent_fake.wecom_sso_url}/confirm",
        data=form | {"decision": "deny"},
        allow_redirects=False,
        timeout=5,
    )
    assert "code" not in query_of(cancelled.headers["Location"])
    assert consent_fake.stats()["wecom_calls"][CORP][AGENT]["wwlogin"] == 1


def test_sso_fake_userid_shortcut_and_refusals(consent_fake: FakeWeChat) -> None:
    consent_fake.add_corp(CORP, AGENT)
    response = sso(consent_fake, fake_userid="zhouba")
    assert response.status_code == 302
    assert wecom_user_of(consent_fake, response.headers["Location"])["userid"] == "zhouba"
    assert sso(consent_fake, login_type="ServiceApp").status_code == 400
    assert sso(consent_fake, appid="wwunknown000000009").status_code == 400
    assert sso(consent_fake, redirect_uri="/relative").status_code == 400


def test_remote_handle_drives_wecom(wecom_fake: FakeWeChat) -> None:
    remote = RemoteFakeWeChat(wecom_fake.base_url)
    secret = remote.add_corp(CORP, "1000004")
    assert remote.wecom_secret_of(CORP, "1000004") == secret
    assert remote.wecom_secret_of(CORP, AGENT) == "agent-secret"
    token = wecom_token(wecom_fake)
    code = remote.issue_wecom_code(CORP, AGENT, "remote", scope="snsapi_privateinfo")
    assert "user_ticket" in wecom(wecom_fake, "auth/getuserinfo", access_token=token, code=code)
    assert (remote.gettoken_calls(CORP, AGENT), remote.exchange_calls(code)) == (1, 1)
    remote.invalidate_wecom_token(CORP, AGENT)
    assert wecom(wecom_fake, "auth/getuserinfo", access_token=token, code="x")["errcode"] == 42001
    with pytest.raises(FakeWeChatControlError, match="400"):
        remote.add_corp(CORP, AGENT, "another-secret")
    with pytest.raises(ValueError, match="1000009"):
        remote.wecom_secret_of(CORP, "1000009")


def test_process_fake_serves_wecom(fake_process: FakeWeChatProcess) -> None:
    fake_process.reset()
    secret = fake_process.add_corp(CORP, AGENT)
    assert fake_process.wecom_secret_of(CORP, AGENT) == secret
    token = wecom_token(fake_process)
    code = fake_process.issue_wecom_code(CORP, AGENT, member=False, person="pia")
    body = wecom(fake_process, "auth/getuserinfo", access_token=token, code=code)
    assert body["external_userid"] == external_userid_for(CORP, "pia")
    assert fake_process.gettoken_calls(CORP, AGENT) == 1 and fake_process.exchange_calls(code) == 1
    fake_process.invalidate_wecom_token(CORP, AGENT)
    assert wecom(fake_process, "auth/getuserinfo", access_token=token, code="x")["errcode"] == 42001
    assert wecom_token(fake_process) != token
    response = sso(fake_process, fake_userid="proc")
    assert wecom_user_of(fake_process, response.headers["Location"])["userid"] == "proc"


def test_corps_given_at_construction_are_known_like_added_ones() -> None:
    agents = [FakeAgent(CORP, AGENT, "given-secret"), FakeAgent(CORP, OTHER_AGENT, "other-secret")]
    with FakeWeChat(corps=agents) as fake:
        assert fake.wecom_secret_of(CORP, AGENT) == "given-secret"
        assert fake.add_corp(CORP, OTHER_AGENT) == "other-secret"  # known: unchanged
        fake.reset()  # the corps stay
        assert wecom(fake, "gettoken", corpid=CORP, corpsecret="other-secret")["errcode"] == 0
        assert fake.gettoken_calls(CORP, OTHER_AGENT) == 1
    with pytest.raises(ValueError, match="another secret"):
        FakeState(corps=[FakeAgent(CORP, AGENT, "one"), FakeAgent(CORP, AGENT, "two")])


def test_process_fake_adds_the_corps_it_was_given_on_every_start() -> None:
    process = FakeWeChatProcess(corps=[FakeAgent(CORP, AGENT, "process-secret")])
    try:
        for _ in range(2):  # a restarted fake is a new process: it learns them again
            process.start()
            assert process.wecom_secret_of(CORP, AGENT) == "process-secret"
            code = process.issue_wecom_code(CORP, AGENT, "starts")
            body = wecom(process, "auth/getuserinfo", access_token=wecom_token(process), code=code)
            assert body["userid"] == "starts"
            process.stop()
    finally:
        process.stop()


# What WeChat's clients do to a request: wechat_client (send_unread, send_and_abort)


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A server that records each request it gets (after it has read it whole) and answers
    200 "seen"."""
    seen: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        seen.append(
            {
                "method": environ["REQUEST_METHOD"],
                "path": environ["PATH_INFO"],
                "query": environ.get("QUERY_STRING", ""),
                # wsgiref says text/plain when no Content-Type came: the length tells.
                "length": environ.get("CONTENT_LENGTH") or None,
                "type": environ.get("CONTENT_TYPE", "") if length else "",
                "agent": environ.get("HTTP_USER_AGENT", ""),
                "cookie": environ.get("HTTP_COOKIE", ""),
                "body": environ["wsgi.input"].read(length) if length else b"",
            }
        )
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return [b"seen"]

    server = ServerThread(app)
    server.start()
    try:
        yield server.url, seen
    finally:
        server.stop()


def wait_for(seen: list[Any], count: int) -> None:
    deadline = time.monotonic() + 5
    while len(seen) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(seen) == count, seen


def test_send_and_abort_gets_a_get_handled_and_hangs_up(recorder: Any) -> None:
    url, seen = recorder
    jar = requests.cookies.RequestsCookieJar()
    jar.set("sessionid", "abc")
    send_and_abort(f"{url}/wechat/callback/?code=c1&state=s", jar)
    wait_for(seen, 1)
    assert seen[0] == {
        "method": "GET",
        "path": "/wechat/callback/",
        "query": "code=c1&state=s",
        "length": None,
        "type": "",
        "agent": WECHAT_USER_AGENT,
        "cookie": "sessionid=abc",
        "body": b"",
    }


def test_send_and_abort_posts_a_body_a_mini_program_gave_up_on(recorder: Any) -> None:
    """wx.request's task aborted (or its answer lost): the POST and its JSON body arrive whole
    and are handled all the same."""
    url, seen = recorder
    body = json.dumps({"code": "js-code"}).encode()
    send_and_abort(f"{url}/wechat/mini/session/", method="POST", body=body, user_agent="mini")
    wait_for(seen, 1)
    assert seen[0] == {
        "method": "POST",
        "path": "/wechat/mini/session/",
        "query": "",
        "length": str(len(body)),
        "type": "application/json",
        "agent": "mini",
        "cookie": "",
        "body": body,
    }
    sock = send_unread(f"{url}/empty/", method="POST", user_agent="")
    try:
        assert sock.recv(4096).startswith(b"HTTP/1.0 200")  # the answer is there, unread
    finally:
        sock.close()
    assert (seen[1]["method"], seen[1]["length"], seen[1]["agent"]) == ("POST", "0", "")
