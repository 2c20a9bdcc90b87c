"""A Mini Program's login: wx.login()'s code POSTed to <app>/session/, through the same
exactly-once fence as the web logins, a session token back."""

from __future__ import annotations

import json
from functools import partial

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.concurrency import run_together
from tests.test_several_apps import MP_LOGIN, log_in, two_apps_settings
from wechat_oauth.miniprogram import session_key_of
from wechat_oauth.models import OAuthCodeUse, WeChatAccount
from wechat_oauth.testing import openid_for, unionid_for

pytestmark = pytest.mark.django_db(transaction=True)

MINI_APP_ID = "wxfakemini00000001"
SESSION = "/wechat/mini/session/"


@pytest.fixture
def mini(fake_wechat, settings):
    """A site with the two web apps of test_several_apps and a Mini Program, "mini"."""
    conf = two_apps_settings(fake_wechat)
    conf["APPS"]["mini"] = {
        "KIND": "miniprogram",
        "APP_ID": MINI_APP_ID,
        "APP_SECRET": fake_wechat.add_app(MINI_APP_ID),
    }
    settings.WECHAT_OAUTH = conf
    return fake_wechat


def post(body, client=None, **headers):
    data = body if isinstance(body, str) else json.dumps(body)
    return (client or Client()).post(SESSION, data=data, content_type="application/json", **headers)


def test_a_code_logs_in_and_answers_a_token_openid_unionid_and_user(mini):
    code = mini.issue_js_code(MINI_APP_ID, person="alice")

    response = post({"code": code})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["openid"], body["unionid"]) == (openid_for(MINI_APP_ID, "alice"), unionid_for("alice"))
    account = WeChatAccount.objects.get()
    assert body["user_id"] == account.user_id and body["token"]
    assert "session_key" not in response.content.decode()
    assert session_key_of(account) == mini.session_key_of(MINI_APP_ID, account.openid)
    assert mini.exchange_calls(code) == 1


def test_two_posts_of_one_code_at_once_share_one_call_and_one_session_key(mini):
    """A front end that calls wx.login() in onLaunch and onLoad, or retries the request."""
    mini.set_latency(0.2)
    code = mini.issue_js_code(MINI_APP_ID, person="bob")

    results = run_together([partial(post, {"code": code}) for _ in range(4)])
    later = post({"code": code})

    assert [value.status_code for _, value in results] == [200] * 4
    assert later.status_code == 200
    assert len({value.json()["user_id"] for _, value in results}) == 1
    assert mini.exchange_calls(code) == 1
    # The one jscode2session call's session_key: a second call would have rotated it.
    assert session_key_of(WeChatAccount.objects.get()) == mini.session_key_of(
        MINI_APP_ID, openid_for(MINI_APP_ID, "bob")
    )
    assert OAuthCodeUse.objects.get().duplicates == 4


def test_the_token_authenticates_later_requests_until_it_is_revoked(mini):
    body = post({"code": mini.issue_js_code(MINI_APP_ID, person="carol")}).json()
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {body['token']}"}

    assert Client().get("/whoami/", **bearer).json()["user"] is not None
    assert Client().get("/whoami/", HTTP_AUTHORIZATION="Bearer forged").json()["user"] is None
    assert Client().post("/wechat/mini/session/revoke/", **bearer).json() == {"revoked": True}
    assert Client().get("/whoami/", **bearer).json()["user"] is None
    assert Client().post("/wechat/mini/session/revoke/", **bearer).status_code == 401
    refused = Client().get("/wechat/mini/session/revoke/", **bearer)
    assert (refused.status_code, refused["Allow"], refused.json()["error"]) == (
        405,
        "POST",
        "method_not_allowed",
    )


def test_an_expired_token_is_refused(mini, settings):
    body = post({"code": mini.issue_js_code(MINI_APP_ID, person="dan")}).json()
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "SESSION_TOKEN_MAX_AGE": -1}

    assert Client().get("/whoami/", HTTP_AUTHORIZATION=f"Bearer {body['token']}").json()["user"] is None


def test_unionid_makes_the_mini_programs_user_the_web_apps_user(mini):
    browser, _ = log_in(MP_LOGIN, "erin")

    body = post({"code": mini.issue_js_code(MINI_APP_ID, person="erin")}).json()

    assert (
        get_user_model().objects.get(pk=body["user_id"]).get_username()
        == browser.get("/whoami/").json()["user"]
    )


@pytest.mark.parametrize(
    "body, status, error",
    [
        ("not json", 400, "bad_callback"),
        ("[1, 2]", 400, "bad_callback"),
        ({}, 400, "invalid_code"),
        ({"code": ""}, 400, "invalid_code"),
        ({"code": "x" * 600}, 400, "invalid_code"),
        ({"code": 12}, 400, "invalid_code"),
        ({"code": "made-up-code"}, 400, "spent"),
    ],
)
def test_bad_input_gets_a_json_error_never_a_page(mini, body, status, error):
    response = post(body)

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == error


@pytest.mark.parametrize(
    "errcode, status, error", [(45011, 502, "rate_limited"), (40226, 403, "risky_user"), (-1, 502, "busy")]
)
def test_wechat_refusing_gets_a_typed_json_error(mini, errcode, status, error):
    mini.add_fault("jscode2session", errcode=errcode)
    response = post({"code": mini.issue_js_code(MINI_APP_ID, person="frank")})

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == error


def test_a_spent_code_and_an_unknown_app_and_a_web_app_are_json_errors(mini):
    code = mini.issue_js_code(MINI_APP_ID, person="grace")
    assert post({"code": code}).status_code == 200

    unknown = Client().post("/wechat/shop/session/", data="{}", content_type="application/json")
    web = Client().post("/wechat/web/session/", data="{}", content_type="application/json")

    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_app")
    assert (web.status_code, web.json()["error"]) == (400, "not_a_mini_program")
    assert Client().get("/wechat/mini/login/").status_code == 404  # no login page


def test_drf_authenticates_the_token(mini):
    from rest_framework.exceptions import AuthenticationFailed
    from rest_framework.test import APIRequestFactory

    from wechat_oauth.contrib.drf import SessionTokenAuthentication

    body = post({"code": mini.issue_js_code(MINI_APP_ID, person="heidi")}).json()
    factory, auth = APIRequestFactory(), SessionTokenAuthentication()

    user, token = auth.authenticate(factory.get("/", HTTP_AUTHORIZATION=f"Bearer {body['token']}"))
    assert (user.pk, token) == (body["user_id"], body["token"])
    assert auth.authenticate(factory.get("/")) is None
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(factory.get("/", HTTP_AUTHORIZATION="Bearer nope"))
