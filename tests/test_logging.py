"""What the wechat_oauth loggers say: each exchange, duplicate and failure once, with what an
operator needs (code hash prefix, openid, gap, WeChat's request id), never a secret."""

from __future__ import annotations

import logging

import pytest

from wechat_oauth.exceptions import CodeSpent, InvalidCredentials
from wechat_oauth.guard import exchange_once
from wechat_oauth.hashing import code_hash

pytestmark = pytest.mark.django_db(transaction=True)


def records(caplog, level=logging.INFO):
    return [r for r in caplog.records if r.name.startswith("wechat_oauth") and r.levelno >= level]


def test_an_exchange_is_logged_once_with_hash_prefix_and_openid(fake_wechat, caplog):
    caplog.set_level(logging.DEBUG, logger="wechat_oauth")
    code = fake_wechat.issue_code("o_logged")

    exchange_once(code)

    [line] = records(caplog)
    assert (line.name, line.levelname) == ("wechat_oauth.exchange", "INFO")
    assert code_hash(code)[:12] in line.getMessage() and "o_logged" in line.getMessage()


def test_a_duplicate_is_logged_once_with_its_gap(fake_wechat, caplog):
    code = fake_wechat.issue_code("o_twice")
    exchange_once(code)
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="wechat_oauth")

    exchange_once(code)

    [line] = records(caplog)
    message = line.getMessage()
    assert code_hash(code)[:12] in message and "o_twice" in message and "gap" in message


def test_a_failure_is_logged_once_with_wechat_request_id(fake_wechat, caplog, client):
    caplog.set_level(logging.DEBUG, logger="wechat_oauth")
    code = fake_wechat.issue_code("o_failing")
    fake_wechat.add_fault("access_token", errcode=40163, errmsg="code been used, rid: 6541f2a3-99")

    with pytest.raises(CodeSpent):
        exchange_once(code)

    [line] = records(caplog, logging.WARNING)
    assert line.name == "wechat_oauth.exchange"
    assert "6541f2a3-99" in line.getMessage() and "40163" in line.getMessage()


def test_a_configuration_failure_is_an_error(fake_wechat, caplog):
    code = fake_wechat.issue_code("o_misconfigured")
    fake_wechat.add_fault("access_token", errcode=40125, errmsg="invalid appsecret")

    with pytest.raises(InvalidCredentials):
        exchange_once(code)

    assert [r.levelname for r in records(caplog, logging.WARNING)] == ["ERROR"]
