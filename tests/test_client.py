"""The WeChat HTTP client: URLs it builds, what it sends, and what each answer becomes."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NameResolutionError, ProtocolError
from urllib3.util.retry import Retry

from wechat_oauth import client as client_module
from wechat_oauth.client import WeChatClient, get_client, reset_client
from wechat_oauth.exceptions import (
    ERRCODE_CLASSES,
    CodeSpent,
    ConfigurationError,
    InvalidCredentials,
    UpstreamBusy,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from wechat_oauth.results import TokenResult, UserInfo

APP_ID = "wxtestappid0000001"
SECRET = "tests-app-secret-0123456789abcdef"
API = "https://api.weixin.qq.com"
ACCESS_TOKEN_URL = f"{API}/sns/oauth2/access_token"
REFRESH_URL = f"{API}/sns/oauth2/refresh_token"
USERINFO_URL = f"{API}/sns/userinfo"
AUTH_URL = f"{API}/sns/auth"

CODE = "081CodeFromWeChat0a1B2c3D"
ACCESS_TOKEN = "ACCESS-TOKEN-5f1e2d3c4b5a6978"
REFRESH_TOKEN = "REFRESH-TOKEN-8a7b6c5d4e3f2a1b"
OPENID = "oLVPpjqs9BhvzwPj5A-vTYAX3GLc"
UNIONID = "o6_bmasdasdsad6_2sgVt7hMZOPfL"
UTC = timezone.utc
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

TOKEN_PAYLOAD = {
    "access_token": ACCESS_TOKEN,
    "expires_in": 7200,
    "refresh_token": REFRESH_TOKEN,
    "openid": OPENID,
    "scope": "snsapi_userinfo",
}
USERINFO_PAYLOAD = {
    "openid": OPENID,
    "nickname": "微信用户",
    "sex": "1",
    "province": "广东",
    "city": "广州",
    "country": "中国",
    "headimgurl": "https://thirdwx.qlogo.cn/mmopen/g3MonUZtNHkdmzicIlibx6iaFqAc56vxLS/46",
    "privilege": ["PRIVILEGE1", "PRIVILEGE2"],
    "unionid": UNIONID,
}


@pytest.fixture
def wechat() -> Iterator[responses.RequestsMock]:
    """A fake api.weixin.qq.com: register answers on it; unregistered URLs are refused."""
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def wechat_client() -> WeChatClient:
    return WeChatClient()


@pytest.fixture
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr(client_module, "utc_now", lambda: NOW)
    return NOW


def sent_params(mock: responses.RequestsMock, index: int = 0) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(mock.calls[index].request.url).query, keep_blank_values=True)


def sent_path(mock: responses.RequestsMock, index: int = 0) -> str:
    return urlsplit(mock.calls[index].request.url).path


# -- Authorize URL ---------------------------------------------------------------------------


def test_authorize_url_is_byte_for_byte_what_wechat_expects(wechat_client: WeChatClient) -> None:
    url = wechat_client.authorize_url(
        "https://例子.example.com/回调?next=/a&x=1", state="abc123XYZ", scope="snsapi_userinfo"
    )

    assert url == (
        "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wxtestappid0000001"
        "&redirect_uri=https%3A%2F%2F%E4%BE%8B%E5%AD%90.example.com"
        "%2F%E5%9B%9E%E8%B0%83%3Fnext%3D%2Fa%26x%3D1"
        "&response_type=code&scope=snsapi_userinfo&state=abc123XYZ"
        "&connect_redirect=1#wechat_redirect"
    )


def test_authorize_url_matches_wechats_documented_example() -> None:
    client = WeChatClient(app_id="wx520c15f417810387")

    url = client.authorize_url(
        "https://chong.qq.com/php/index.php?d=&c=wxAdapter&m=mobileDeal&showwxpaytitle=1"
        "&vb2ctag=4_2030_5_1194_60",
        state="123",
        scope="snsapi_base",
        connect_redirect=False,
    )

    assert url == (
        "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx520c15f417810387"
        "&redirect_uri=https%3A%2F%2Fchong.qq.com%2Fphp%2Findex.php%3Fd%3D%26c%3DwxAdapter"
        "%26m%3DmobileDeal%26showwxpaytitle%3D1%26vb2ctag%3D4_2030_5_1194_60"
        "&response_type=code&scope=snsapi_base&state=123#wechat_redirect"
    )


def test_authorize_url_uses_scope_from_settings_by_default(wechat_client: WeChatClient) -> None:
    url = wechat_client.authorize_url("https://www.example.com/cb/", state="s")

    assert "&scope=snsapi_base&state=s&" in url


def test_authorize_url_with_force_popup_puts_it_after_state(wechat_client: WeChatClient) -> None:
    url = wechat_client.authorize_url("https://www.example.com/cb/", state="s", force_popup=True)

    assert url.endswith("&state=s&forcePopup=true&connect_redirect=1#wechat_redirect")


def test_authorize_url_without_connect_redirect_ends_at_state(wechat_client: WeChatClient) -> None:
    url = wechat_client.authorize_url("https://www.example.com/cb/", state="s", connect_redirect=False)

    assert url.endswith("&state=s#wechat_redirect")


def test_authorize_url_follows_force_popup_setting(settings, wechat_client: WeChatClient) -> None:
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "FORCE_POPUP": True}

    url = wechat_client.authorize_url("https://www.example.com/cb/", state="s")

    assert url.endswith("&state=s&forcePopup=true&connect_redirect=1#wechat_redirect")


def test_authorize_url_follows_connect_redirect_setting(settings, wechat_client: WeChatClient) -> None:
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "CONNECT_REDIRECT": False}

    url = wechat_client.authorize_url("https://www.example.com/cb/", state="s")

    assert url.endswith("&state=s#wechat_redirect")


def test_authorize_url_accepts_empty_state(wechat_client: WeChatClient) -> None:
    url = wechat_client.authorize_url("https://www.example.com/cb/", connect_redirect=False)

    assert url.endswith("&response_type=code&scope=snsapi_base&state=#wechat_redirect")


def test_authorize_url_accepts_state_of_exactly_128_bytes(wechat_client: WeChatClient) -> None:
    url = wechat_client.authorize_url("https://www.example.com/cb/", state="A1" * 64)

    assert "&state=" + "A1" * 64 + "&" in url


@pytest.mark.parametrize(
    "state",
    [
        "a" * 129,
        "has-dash",
        "has_underscore",
        "has space",
        "状态",
        "a=b&c",
    ],
    ids=["129-bytes", "dash", "underscore", "space", "non-ascii", "query-chars"],
)
def test_authorize_url_refuses_state_wechat_would_refuse(wechat_client: WeChatClient, state: str) -> None:
    with pytest.raises(ValueError, match="state"):
        wechat_client.authorize_url("https://www.example.com/cb/", state=state)


def test_refused_state_is_not_echoed_in_the_error(wechat_client: WeChatClient) -> None:
    with pytest.raises(ValueError) as excinfo:
        wechat_client.authorize_url("https://www.example.com/cb/", state="x" * 5000)

    assert "x" * 100 not in str(excinfo.value)
    assert len(str(excinfo.value)) < 200


@pytest.mark.parametrize("scope", ["snsapi_login", "snsapi_base,snsapi_userinfo", "", "SNSAPI_BASE"])
def test_authorize_url_refuses_scope_other_than_base_or_userinfo(
    wechat_client: WeChatClient, scope: str
) -> None:
    with pytest.raises(ValueError, match="scope"):
        wechat_client.authorize_url("https://www.example.com/cb/", state="s", scope=scope)


def test_authorize_url_points_snsapi_login_users_to_qrconnect(wechat_client: WeChatClient) -> None:
    with pytest.raises(ValueError, match="qrconnect_url"):
        wechat_client.authorize_url("https://www.example.com/cb/", scope="snsapi_login")


@pytest.mark.parametrize("redirect_uri", ["/wechat/callback/", "", "javascript:alert(1)"])
def test_authorize_url_refuses_relative_redirect_uri(wechat_client: WeChatClient, redirect_uri: str) -> None:
    with pytest.raises(ValueError, match="redirect_uri"):
        wechat_client.authorize_url(redirect_uri, state="s")


def test_authorize_url_without_app_id_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="APP_ID"):
        WeChatClient(app_id="").authorize_url("https://www.example.com/cb/", state="s")


# -- QR connect URL --------------------------------------------------------------------------


def test_qrconnect_url_is_byte_for_byte_what_wechat_expects(wechat_client: WeChatClient) -> None:
    url = wechat_client.qrconnect_url("https://www.example.com/wechat/callback/?next=/", state="Q1w2")

    assert url == (
        "https://open.weixin.qq.com/connect/qrconnect?appid=wxtestappid0000001"
        "&redirect_uri=https%3A%2F%2Fwww.example.com%2Fwechat%2Fcallback%2F%3Fnext%3D%2F"
        "&response_type=code&scope=snsapi_login&state=Q1w2#wechat_redirect"
    )


@pytest.mark.parametrize("state", ["a" * 129, "a-b", "a_b", "a b", "状态"])
def test_qrconnect_url_refuses_state_wechat_would_refuse(wechat_client: WeChatClient, state: str) -> None:
    with pytest.raises(ValueError, match="state"):
        wechat_client.qrconnect_url("https://www.example.com/cb/", state=state)


def test_qrconnect_url_refuses_scope_that_could_inject_parameters(wechat_client: WeChatClient) -> None:
    with pytest.raises(ValueError, match="scope"):
        wechat_client.qrconnect_url("https://www.example.com/cb/", scope="snsapi_login&appid=wxevil")


# -- exchange_code ---------------------------------------------------------------------------


def test_exchange_code_sends_appid_secret_code_grant_type_in_order(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(ACCESS_TOKEN_URL, json=TOKEN_PAYLOAD)

    wechat_client.exchange_code(CODE)

    assert sent_path(wechat) == "/sns/oauth2/access_token"
    assert sent_params(wechat) == [
        ("appid", APP_ID),
        ("secret", SECRET),
        ("code", CODE),
        ("grant_type", "authorization_code"),
    ]


def test_exchange_code_returns_tokens_openid_and_scope(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(ACCESS_TOKEN_URL, json=TOKEN_PAYLOAD)

    result = wechat_client.exchange_code(CODE)

    assert (result.access_token, result.refresh_token, result.openid, result.scope) == (
        ACCESS_TOKEN,
        REFRESH_TOKEN,
        OPENID,
        "snsapi_userinfo",
    )
    assert result.raw == TOKEN_PAYLOAD


def test_exchange_code_without_unionid_gives_empty_unionid(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(ACCESS_TOKEN_URL, json=TOKEN_PAYLOAD)

    assert wechat_client.exchange_code(CODE).unionid == ""


def test_exchange_code_with_unionid_returns_it(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(ACCESS_TOKEN_URL, json={**TOKEN_PAYLOAD, "unionid": UNIONID})

    assert wechat_client.exchange_code(CODE).unionid == UNIONID


def test_exchange_code_of_ordinary_user_is_not_snapshot(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(ACCESS_TOKEN_URL, json=TOKEN_PAYLOAD)

    assert wechat_client.exchange_code(CODE).is_snapshot_user is False


@pytest.mark.parametrize("flag", [1, "1"])
def test_exchange_code_flags_snapshot_user(
    wechat: responses.RequestsMock, wechat_client: WeChatClient, flag: object
) -> None:
    wechat.get(ACCESS_TOKEN_URL, json={**TOKEN_PAYLOAD, "is_snapshotuser": flag})

    assert wechat_client.exchange_code(CODE).is_snapshot_user is True


def test_exchange_code_computes_expiries_from_issue_time(
    wechat: responses.RequestsMock, wechat_client: WeChatClient, fixed_now: datetime
) -> None:
    wechat.get(ACCESS_TOKEN_URL, json={**TOKEN_PAYLOAD, "expires_in": 3600})

    result = wechat_client.exchange_code(CODE)

    assert result.expires_at == datetime(2024, 5, 1, 13, 0, 0, tzinfo=UTC)
    assert result.refresh_expires_at == datetime(2024, 5, 31, 12, 0, 0, tzinfo=UTC)


def test_exchange_code_accepts_json_sent_as_text_plain(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(ACCESS_TOKEN_URL, body=json.dumps(TOKEN_PAYLOAD), content_type="text/plain")

    assert wechat_client.exchange_code(CODE).openid == OPENID


def test_exchange_code_without_secret_is_a_configuration_error(wechat: responses.RequestsMock) -> None:
    with pytest.raises(ConfigurationError, match="APP_SECRET"):
        WeChatClient(app_secret="").exchange_code(CODE)

    assert len(wechat.calls) == 0


# -- TokenResult -----------------------------------------------------------------------------


def test_token_result_expiry_defaults_to_7200_seconds_when_absent() -> None:
    payload = {k: v for k, v in TOKEN_PAYLOAD.items() if k != "expires_in"}

    result = TokenResult.from_payload(payload, now=NOW)

    assert result.expires_at == NOW + timedelta(seconds=7200)


def test_token_result_expiries_are_utc_even_from_another_timezone() -> None:
    beijing = timezone(timedelta(hours=8))

    result = TokenResult.from_payload(TOKEN_PAYLOAD, now=NOW.astimezone(beijing))

    assert result.expires_at.tzinfo == UTC
    assert result.expires_at == datetime(2024, 5, 1, 14, 0, 0, tzinfo=UTC)


def test_token_result_refuses_naive_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        TokenResult.from_payload(TOKEN_PAYLOAD, now=datetime(2024, 5, 1, 12, 0, 0))


@pytest.mark.parametrize("flag", [0, "0", None, 2])
def test_token_result_is_snapshot_only_for_flag_one(flag: object) -> None:
    assert (
        TokenResult.from_payload({**TOKEN_PAYLOAD, "is_snapshotuser": flag}, now=NOW).is_snapshot_user
        is False
    )


def test_token_result_rebuilt_without_raw_equals_the_original() -> None:
    original = TokenResult.from_payload({**TOKEN_PAYLOAD, "unionid": UNIONID}, now=NOW)

    rebuilt = TokenResult(
        access_token=ACCESS_TOKEN,
        refresh_token=REFRESH_TOKEN,
        openid=OPENID,
        scope="snsapi_userinfo",
        unionid=UNIONID,
        is_snapshot_user=False,
        expires_at=NOW + timedelta(seconds=7200),
        refresh_expires_at=NOW + timedelta(days=30),
    )

    assert rebuilt == original
    assert hash(rebuilt) == hash(original)


def test_token_result_is_immutable() -> None:
    result = TokenResult.from_payload(TOKEN_PAYLOAD, now=NOW)

    with pytest.raises(FrozenInstanceError):
        result.openid = "someone-else"  # type: ignore[misc]


# -- refresh ---------------------------------------------------------------------------------


def test_refresh_sends_appid_grant_type_refresh_token_and_no_secret(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(REFRESH_URL, json=TOKEN_PAYLOAD)

    wechat_client.refresh(REFRESH_TOKEN)

    assert sent_path(wechat) == "/sns/oauth2/refresh_token"
    assert sent_params(wechat) == [
        ("appid", APP_ID),
        ("grant_type", "refresh_token"),
        ("refresh_token", REFRESH_TOKEN),
    ]


def test_refresh_returns_new_tokens_and_expiries(
    wechat: responses.RequestsMock, wechat_client: WeChatClient, fixed_now: datetime
) -> None:
    wechat.get(REFRESH_URL, json={**TOKEN_PAYLOAD, "access_token": "NEW-ACCESS-TOKEN"})

    result = wechat_client.refresh(REFRESH_TOKEN)

    assert result.access_token == "NEW-ACCESS-TOKEN"
    assert result.openid == OPENID
    assert result.expires_at == NOW + timedelta(seconds=7200)
    assert result.refresh_expires_at == NOW + timedelta(days=30)


def test_refresh_with_expired_refresh_token_raises_its_error(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(REFRESH_URL, json={"errcode": 42002, "errmsg": "refresh_token expired, rid: r1"})

    with pytest.raises(ERRCODE_CLASSES[42002]):
        wechat_client.refresh(REFRESH_TOKEN)


# -- userinfo --------------------------------------------------------------------------------


def test_userinfo_sends_access_token_openid_and_lang_from_settings(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(USERINFO_URL, json=USERINFO_PAYLOAD)

    wechat_client.userinfo(ACCESS_TOKEN, OPENID)

    assert sent_path(wechat) == "/sns/userinfo"
    assert sent_params(wechat) == [("access_token", ACCESS_TOKEN), ("openid", OPENID), ("lang", "zh_CN")]


def test_userinfo_sends_requested_lang(wechat: responses.RequestsMock, wechat_client: WeChatClient) -> None:
    wechat.get(USERINFO_URL, json=USERINFO_PAYLOAD)

    wechat_client.userinfo(ACCESS_TOKEN, OPENID, lang="en")

    assert ("lang", "en") in sent_params(wechat)


def test_userinfo_returns_the_profile(wechat: responses.RequestsMock, wechat_client: WeChatClient) -> None:
    wechat.get(USERINFO_URL, json=USERINFO_PAYLOAD)

    info = wechat_client.userinfo(ACCESS_TOKEN, OPENID)

    assert info == UserInfo(
        openid=OPENID,
        nickname="微信用户",
        sex=1,
        province="广东",
        city="广州",
        country="中国",
        headimgurl=USERINFO_PAYLOAD["headimgurl"],
        privilege=("PRIVILEGE1", "PRIVILEGE2"),
        unionid=UNIONID,
    )


def test_userinfo_reads_utf8_sent_as_text_plain_without_charset(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    body = json.dumps({"openid": OPENID, "nickname": "微信用户"}, ensure_ascii=False)
    wechat.get(USERINFO_URL, body=body.encode("utf-8"), content_type="text/plain")

    assert wechat_client.userinfo(ACCESS_TOKEN, OPENID).nickname == "微信用户"


@pytest.mark.parametrize(
    ("sent", "expected"), [("1", 1), (1, 1), ("2", 2), (2, 2), (0, 0), ("", 0), ("male", 0), (None, 0)]
)
def test_userinfo_sex_is_an_int_whatever_wechat_sends(
    wechat: responses.RequestsMock, wechat_client: WeChatClient, sent: object, expected: int
) -> None:
    wechat.get(USERINFO_URL, json={**USERINFO_PAYLOAD, "sex": sent})

    assert wechat_client.userinfo(ACCESS_TOKEN, OPENID).sex == expected


def test_userinfo_without_unionid_gives_empty_unionid(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    payload = {k: v for k, v in USERINFO_PAYLOAD.items() if k != "unionid"}
    wechat.get(USERINFO_URL, json=payload)

    assert wechat_client.userinfo(ACCESS_TOKEN, OPENID).unionid == ""


def test_userinfo_under_snsapi_base_raises_not_authorised(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(USERINFO_URL, json={"errcode": 48001, "errmsg": "api unauthorized, rid: r2"})

    with pytest.raises(ERRCODE_CLASSES[48001]):
        wechat_client.userinfo(ACCESS_TOKEN, OPENID)


# -- check -----------------------------------------------------------------------------------


def test_check_sends_access_token_and_openid(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(AUTH_URL, json={"errcode": 0, "errmsg": "ok"})

    wechat_client.check(ACCESS_TOKEN, OPENID)

    assert sent_path(wechat) == "/sns/auth"
    assert sent_params(wechat) == [("access_token", ACCESS_TOKEN), ("openid", OPENID)]


def test_check_of_valid_token_is_true(wechat: responses.RequestsMock, wechat_client: WeChatClient) -> None:
    wechat.get(AUTH_URL, json={"errcode": 0, "errmsg": "ok"})

    assert wechat_client.check(ACCESS_TOKEN, OPENID) is True


@pytest.mark.parametrize("errcode", [40014, 42001, 40003])
def test_check_of_invalid_token_or_openid_is_false(
    wechat: responses.RequestsMock, wechat_client: WeChatClient, errcode: int
) -> None:
    wechat.get(AUTH_URL, json={"errcode": errcode, "errmsg": "invalid, rid: r3"})

    assert wechat_client.check(ACCESS_TOKEN, OPENID) is False


def test_check_raises_for_credentials_error(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(AUTH_URL, json={"errcode": 40001, "errmsg": "invalid credential, rid: r4"})

    with pytest.raises(InvalidCredentials):
        wechat_client.check(ACCESS_TOKEN, OPENID)


def test_check_raises_when_wechat_is_busy(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(AUTH_URL, json={"errcode": -1, "errmsg": "system error"})

    with pytest.raises(UpstreamBusy):
        wechat_client.check(ACCESS_TOKEN, OPENID)


def test_check_with_answer_lacking_errcode_is_unavailable(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(AUTH_URL, json={})

    with pytest.raises(UpstreamUnavailable, match="unexpected answer"):
        wechat_client.check(ACCESS_TOKEN, OPENID)


# -- errcode answers -------------------------------------------------------------------------


@pytest.mark.parametrize("errcode", sorted(ERRCODE_CLASSES))
@pytest.mark.parametrize(
    "errmsg_form",
    [
        "invalid request, rid: 6541f2a3-1b2c3d4e-5f6a7b8c",
        "invalid request, hints: [ req_id: 6541f2a3-1b2c3d4e-5f6a7b8c ]",
    ],
    ids=["rid", "hints"],
)
def test_errcode_answer_raises_its_class_with_errcode_errmsg_and_request_id(
    wechat: responses.RequestsMock, wechat_client: WeChatClient, errcode: int, errmsg_form: str
) -> None:
    wechat.get(ACCESS_TOKEN_URL, json={"errcode": errcode, "errmsg": errmsg_form})

    with pytest.raises(UpstreamError) as excinfo:
        wechat_client.exchange_code(CODE)

    error = excinfo.value
    assert type(error) is ERRCODE_CLASSES[errcode]
    assert (error.errcode, error.errmsg, error.request_id) == (
        errcode,
        errmsg_form,
        "6541f2a3-1b2c3d4e-5f6a7b8c",
    )


def test_unknown_errcode_raises_plain_upstream_error(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(ACCESS_TOKEN_URL, json={"errcode": 99999, "errmsg": "something new, rid: abc"})

    with pytest.raises(UpstreamError) as excinfo:
        wechat_client.exchange_code(CODE)

    assert type(excinfo.value) is UpstreamError
    assert excinfo.value.errcode == 99999


def test_errcode_sent_as_string_is_understood(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(ACCESS_TOKEN_URL, json={"errcode": "40029", "errmsg": "invalid code, rid: a"})

    with pytest.raises(CodeSpent):
        wechat_client.exchange_code(CODE)


def test_errcode_answer_is_logged_at_debug_with_rid_and_path(
    wechat: responses.RequestsMock, wechat_client: WeChatClient, caplog: pytest.LogCaptureFixture
) -> None:
    """DEBUG: the caller that handles the typed error reports it (the guard, once)."""
    wechat.get(ACCESS_TOKEN_URL, json={"errcode": 40029, "errmsg": "invalid code, rid: 65ab-cd"})
    caplog.set_level(logging.DEBUG, logger="wechat_oauth.client")

    with pytest.raises(CodeSpent):
        wechat_client.exchange_code(CODE)

    [record] = [r for r in caplog.records if r.name == "wechat_oauth.client" and "errcode" in r.getMessage()]
    assert record.levelno == logging.DEBUG
    message = record.getMessage()
    assert "/sns/oauth2/access_token" in message
    assert "40029" in message
    assert "rid: 65ab-cd" in message


def test_each_call_is_logged_at_debug_with_path_and_status(
    wechat: responses.RequestsMock, wechat_client: WeChatClient, caplog: pytest.LogCaptureFixture
) -> None:
    wechat.get(ACCESS_TOKEN_URL, json=TOKEN_PAYLOAD)
    caplog.set_level(logging.DEBUG, logger="wechat_oauth.client")

    wechat_client.exchange_code(CODE)

    [record] = [r for r in caplog.records if r.name == "wechat_oauth.client"]
    assert record.levelno == logging.DEBUG
    assert "/sns/oauth2/access_token" in record.getMessage()
    assert "200" in record.getMessage()
    assert " ms" in record.getMessage()


# -- Answers that are not answers ------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 404])
def test_http_error_status_raises_unavailable_naming_the_status(
    wechat: responses.RequestsMock, wechat_client: WeChatClient, status: int
) -> None:
    wechat.get(ACCESS_TOKEN_URL, status=status, body="<html>Bad Gateway</html>")

    with pytest.raises(UpstreamUnavailable, match=str(status)) as excinfo:
        wechat_client.exchange_code(CODE)

    assert excinfo.value.request_sent is True


def test_redirect_is_not_followed(wechat: responses.RequestsMock, wechat_client: WeChatClient) -> None:
    wechat.get(ACCESS_TOKEN_URL, status=302, headers={"Location": "https://elsewhere.example/"})

    with pytest.raises(UpstreamUnavailable, match="302"):
        wechat_client.exchange_code(CODE)

    assert len(wechat.calls) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>nginx</body></html>",
        b"[]",
        b'["access_token"]',
        b"",
        b'"just a string"',
        b"\xff\xfe{}",
    ],
    ids=["html", "empty-array", "array", "empty", "json-string", "not-utf8"],
)
def test_body_that_is_not_a_json_object_raises_unavailable(
    wechat: responses.RequestsMock, wechat_client: WeChatClient, body: bytes
) -> None:
    wechat.get(ACCESS_TOKEN_URL, body=body, content_type="text/plain")

    with pytest.raises(UpstreamUnavailable, match="not a JSON object"):
        wechat_client.exchange_code(CODE)


@pytest.mark.parametrize("missing", ["openid", "access_token"])
def test_token_answer_without_openid_or_access_token_is_unexpected(
    wechat: responses.RequestsMock, wechat_client: WeChatClient, missing: str
) -> None:
    wechat.get(ACCESS_TOKEN_URL, json={k: v for k, v in TOKEN_PAYLOAD.items() if k != missing})

    with pytest.raises(UpstreamUnavailable, match=f"(?i)unexpected answer.*{missing}"):
        wechat_client.exchange_code(CODE)


def test_userinfo_answer_without_openid_is_unexpected(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(USERINFO_URL, json={"nickname": "x"})

    with pytest.raises(UpstreamUnavailable, match=r"(?i)unexpected answer"):
        wechat_client.userinfo(ACCESS_TOKEN, OPENID)


# -- Transport failures ----------------------------------------------------------------------


def test_connect_timeout_means_request_never_sent(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(ACCESS_TOKEN_URL, body=requests.ConnectTimeout("connect timed out"))

    with pytest.raises(UpstreamTimeout) as excinfo:
        wechat_client.exchange_code(CODE)

    assert excinfo.value.request_sent is False


def test_read_timeout_means_request_may_have_been_sent(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(ACCESS_TOKEN_URL, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(UpstreamTimeout) as excinfo:
        wechat_client.exchange_code(CODE)

    assert excinfo.value.request_sent is True


def test_dns_failure_means_request_never_sent(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    cause = NameResolutionError(
        "api.weixin.qq.com",
        None,  # type: ignore[arg-type]
        socket.gaierror(-2, "Name or service not known"),
    )
    wechat.get(
        ACCESS_TOKEN_URL,
        body=requests.ConnectionError(MaxRetryError(None, "/sns/oauth2/access_token", reason=cause)),
    )  # type: ignore[arg-type]

    with pytest.raises(UpstreamUnavailable) as excinfo:
        wechat_client.exchange_code(CODE)

    assert excinfo.value.request_sent is False


def test_connection_dropped_mid_request_means_request_may_have_been_sent(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    cause = ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer"))
    wechat.get(
        ACCESS_TOKEN_URL,
        body=requests.ConnectionError(MaxRetryError(None, "/sns/oauth2/access_token", reason=cause)),
    )  # type: ignore[arg-type]

    with pytest.raises(UpstreamUnavailable) as excinfo:
        wechat_client.exchange_code(CODE)

    assert type(excinfo.value) is UpstreamUnavailable
    assert excinfo.value.request_sent is True


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A localhost port that refuses connections: bound (so nobody else takes it), not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A localhost port that accepts connections (kernel backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture
def hanging_up_port() -> Iterator[int]:
    """A localhost server that reads the request, then closes the connection without answering."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(5)

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()
    thread.join(5)


def test_refused_connection_means_request_never_sent(refusing_port: int) -> None:
    client = WeChatClient(api_base_url=f"http://127.0.0.1:{refusing_port}", timeout=(2, 2))

    with pytest.raises(UpstreamUnavailable) as excinfo:
        client.exchange_code(CODE)

    assert type(excinfo.value) is UpstreamUnavailable
    assert excinfo.value.request_sent is False


def test_refused_connection_after_retries_may_have_been_sent(refusing_port: int) -> None:
    # A session that retries: an earlier attempt could have reached WeChat before a later
    # attempt was refused, so "never sent" cannot be proven.
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=Retry(total=1, backoff_factor=0)))
    client = WeChatClient(api_base_url=f"http://127.0.0.1:{refusing_port}", timeout=(2, 2), session=session)

    with pytest.raises(UpstreamUnavailable) as excinfo:
        client.exchange_code(CODE)

    assert excinfo.value.request_sent is True


def test_real_read_timeout_means_request_may_have_been_sent(silent_port: int) -> None:
    client = WeChatClient(api_base_url=f"http://127.0.0.1:{silent_port}", timeout=(2, 0.2))

    with pytest.raises(UpstreamTimeout) as excinfo:
        client.exchange_code(CODE)

    assert excinfo.value.request_sent is True


def test_server_hanging_up_means_request_may_have_been_sent(hanging_up_port: int) -> None:
    client = WeChatClient(api_base_url=f"http://127.0.0.1:{hanging_up_port}", timeout=(2, 2))

    with pytest.raises(UpstreamUnavailable) as excinfo:
        client.exchange_code(CODE)

    assert type(excinfo.value) is UpstreamUnavailable
    assert excinfo.value.request_sent is True


def test_transport_error_message_names_the_endpoint_path(
    wechat: responses.RequestsMock, wechat_client: WeChatClient
) -> None:
    wechat.get(REFRESH_URL, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(UpstreamTimeout, match="/sns/oauth2/refresh_token"):
        wechat_client.refresh(REFRESH_TOKEN)


def test_timeout_passed_to_requests_comes_from_settings(settings, wechat: responses.RequestsMock) -> None:
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "TIMEOUT": (1.5, 4)}
    wechat.get(ACCESS_TOKEN_URL, json=TOKEN_PAYLOAD)

    WeChatClient().exchange_code(CODE)

    assert wechat.calls[0].request.req_kwargs["timeout"] == (1.5, 4.0)


# -- Shared client ---------------------------------------------------------------------------


@pytest.fixture
def fresh_shared_client() -> Iterator[None]:
    reset_client()
    yield
    reset_client()


@pytest.mark.usefixtures("fresh_shared_client")
def test_get_client_returns_one_shared_client() -> None:
    assert get_client() is get_client()


@pytest.mark.usefixtures("fresh_shared_client")
def test_get_client_is_built_from_settings() -> None:
    shared = get_client()

    assert (shared.app_id, shared.app_secret, shared.api_base_url) == (APP_ID, SECRET, API)


@pytest.mark.usefixtures("fresh_shared_client")
def test_get_client_is_rebuilt_when_settings_change(settings) -> None:
    before = get_client()

    settings.WECHAT_OAUTH = {
        **settings.WECHAT_OAUTH,
        "APP_ID": "wxotherapp00000002",
        "API_BASE_URL": "https://api2.weixin.qq.com/",
    }
    after = get_client()

    assert after is not before
    assert after.app_id == "wxotherapp00000002"
    assert after.api_base_url == "https://api2.weixin.qq.com"


@pytest.mark.usefixtures("fresh_shared_client")
def test_get_client_is_kept_when_another_setting_changes(settings) -> None:
    before = get_client()

    settings.LOGIN_REDIRECT_URL = "/elsewhere/"

    assert get_client() is before


@pytest.mark.usefixtures("fresh_shared_client")
def test_get_client_builds_one_client_under_concurrent_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[WeChatClient] = []

    class SlowClient(WeChatClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            time.sleep(0.05)  # widen the window in which a second thread could build one too
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(client_module, "WeChatClient", SlowClient)
    results: list[WeChatClient] = []
    threads = [threading.Thread(target=lambda: results.append(get_client())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(built) == 1
    assert all(result is built[0] for result in results)


def test_client_uses_the_session_it_is_given(wechat: responses.RequestsMock) -> None:
    session = requests.Session()
    session.headers["X-Trace"] = "t1"
    wechat.get(ACCESS_TOKEN_URL, json=TOKEN_PAYLOAD)

    WeChatClient(session=session).exchange_code(CODE)

    assert wechat.calls[0].request.headers["X-Trace"] == "t1"


def test_jscode2session_answers_openid_unionid_and_the_session_key(wechat: responses.RequestsMock) -> None:
    wechat.get(
        f"{API}/sns/jscode2session", json={"openid": OPENID, "session_key": "k3y/+==", "unionid": "u_1"}
    )

    result = WeChatClient().jscode2session("js-code-1")

    assert (result.openid, result.unionid, result.session_key) == (OPENID, "u_1", "k3y/+==")
    assert "k3y" not in repr(result)  # never in a log or a traceback's locals by repr
    assert sent_params(wechat) == [
        ("appid", "wxtestappid0000001"),
        ("secret", "tests-app-secret-0123456789abcdef"),
        ("js_code", "js-code-1"),
        ("grant_type", "authorization_code"),
    ]


@pytest.mark.parametrize("errcode, error", [(40029, CodeSpent), (40163, CodeSpent), (-1, UpstreamBusy)])
def test_jscode2session_errors_are_typed(wechat: responses.RequestsMock, errcode: int, error: type) -> None:
    wechat.get(f"{API}/sns/jscode2session", json={"errcode": errcode, "errmsg": "x"})

    with pytest.raises(error):
        WeChatClient().jscode2session("js-code-2")


def test_a_session_with_a_bare_adapter_counts_as_one_that_may_retry(refusing_port: int) -> None:
    """A site's http_session() may mount any BaseAdapter: without max_retries nothing proves a
    single attempt, so a refused connection may have followed an attempt that reached WeChat."""

    class Passthrough(requests.adapters.BaseAdapter):
        def __init__(self) -> None:
            super().__init__()
            self.inner = HTTPAdapter()

        def send(self, request: Any, **kwargs: Any) -> Any:
            return self.inner.send(request, **kwargs)

        def close(self) -> None:
            self.inner.close()

    session = requests.Session()
    session.mount("http://", Passthrough())
    client = WeChatClient(api_base_url=f"http://127.0.0.1:{refusing_port}", timeout=(2, 2), session=session)

    with pytest.raises(UpstreamUnavailable) as excinfo:
        client.exchange_code(CODE)

    assert excinfo.value.request_sent is True
