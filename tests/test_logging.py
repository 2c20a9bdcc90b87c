"""What the wechat_oauth loggers say: each exchange, duplicate and failure once, with what an
operator needs (code hash prefix, openid, gap, WeChat's request id), never a secret."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import django
import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import OperationalError
from django.test import Client
from django.utils.log import AdminEmailHandler

from tests import services
from tests.test_login_flow import authorize
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


# -- Django's request log: error reports and admin e-mails -----------------------------------
#
# Django logs every response of status >= 400 to ``django.request`` with the request attached
# (AdminEmailHandler and error trackers print its full URL). The flow's pages are logged by the
# app itself, redacted, so Django must not log them again with the callback's code and state.


@pytest.fixture
def django_request_log(settings):
    """Every ``django.request`` record, and the admin e-mails AdminEmailHandler would send."""
    # Django 6 takes plain addresses and deprecates the (name, address) pairs 5.2 requires.
    settings.ADMINS = ["ops@example.com"] if django.VERSION >= (6, 0) else [("Ops", "ops@example.com")]
    captured = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = captured.append
    mailer = AdminEmailHandler()
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    logger.addHandler(mailer)
    try:
        yield captured
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(mailer)


def _callback_parameters(callback):
    query = parse_qs(urlsplit(callback).query)
    return [query[name][0] for name in ("code", "state") if name in query]


def _database_down(fake_wechat, monkeypatch, settings):
    def database_gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("wechat_oauth.flow.exchange_once", database_gone)


def _wechat_unreachable(fake_wechat, monkeypatch, settings):
    """Connection refused: the code never left this host, the claim is released, and the code
    in the callback URL still logs in whoever replays it."""
    unreachable = f"http://127.0.0.1:{services.free_port()}"
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "API_BASE_URL": unreachable}


def _wechat_fault(**fault):
    return lambda fake_wechat, monkeypatch, settings: fake_wechat.add_fault("access_token", **fault)


#: The flow's 502 and 503 pages: (status, how to make it happen after the authorize step).
FLOW_ERRORS = {
    "wechat-unreachable-502": (502, _wechat_unreachable),
    "wechat-busy-502": (502, _wechat_fault(errcode=-1)),
    "wechat-http-500-502": (502, _wechat_fault(status=500, body="oops")),
    "bad-appsecret-503": (503, _wechat_fault(errcode=40125, errmsg="invalid appsecret")),
    "database-down-503": (503, _database_down),
}
#: Bad callbacks (400 pages); the middleware leaves a forged state to the page (not its own).
MANGLED = {
    "forged-state-400": (lambda cb: cb.replace("&state=2", "&state=3"), "callback-view"),
    "consent-refused-400": (lambda cb: cb.replace("&code=", "&nocode="), "callback-view"),
    "repeated-code-400-view": (lambda cb: cb + "&code=again", "callback-view"),
    "repeated-code-400-middleware": (lambda cb: cb + "&code=again", "middleware"),
    "oversized-code-400": (lambda cb: cb.replace("&code=", "&code=x" + "a" * 600), "middleware"),
}
STARTS = {"callback-view": "/wechat/login/?next=/whoami/", "middleware": "/page/login/"}


def _assert_not_reported(records, secrets):
    """No django.request record and no admin e-mail; no record or mail holds a secret."""
    texts = [f"{record.getMessage()} {vars(record)!r}" for record in records]
    texts += [f"{message.subject} {message.body}" for message in mail.outbox]
    assert not [secret for secret in secrets for text in texts if secret in text]
    assert [record.getMessage() for record in records] == []
    assert mail.outbox == []


@pytest.mark.parametrize("start", STARTS.values(), ids=STARTS.keys())
@pytest.mark.parametrize("case", FLOW_ERRORS.values(), ids=FLOW_ERRORS.keys())
def test_error_pages_of_the_flow_reach_no_error_report(
    client, fake_wechat, monkeypatch, settings, django_request_log, case, start
):
    """Including the 502 after which the code is still unused (the claim was released): an
    error report holding the callback URL would let its reader log in as the user."""
    status, fault = case
    callback = authorize(client, "o_reported", start=start)
    fault(fake_wechat, monkeypatch, settings)

    response = client.get(callback, follow=True)  # the middleware's page is one redirect away

    assert response.status_code == status
    _assert_not_reported(django_request_log, _callback_parameters(callback))


@pytest.mark.parametrize("case", MANGLED.values(), ids=MANGLED.keys())
def test_invalid_login_links_reach_no_error_report(client, fake_wechat, django_request_log, case):
    mangle, start = case
    callback = mangle(authorize(client, "o_reported", start=STARTS[start]))

    response = client.get(callback, follow=True)

    assert response.status_code == 400
    _assert_not_reported(django_request_log, _callback_parameters(callback))


def test_inactive_user_page_reaches_no_error_report(client, fake_wechat, django_request_log):
    client.get(authorize(client, "o_disabled"))
    get_user_model().objects.update(is_active=False)
    browser = Client()
    callback = authorize(browser, "o_disabled")

    response = browser.get(callback)

    assert response.status_code == 403
    _assert_not_reported(django_request_log, _callback_parameters(callback))


def test_other_errors_of_the_site_are_still_reported(client, django_request_log):
    """Only the flow's own pages are marked: Django still logs (and mails) everything else."""
    response = client.get("/no-such-page/?code=unrelated")

    assert response.status_code == 404
    assert [record.getMessage() for record in django_request_log] == ["Not Found: /no-such-page/"]
    assert len(mail.outbox) == 1
