"""The demo in a drop-in mode (``manage.py demo --drop-in allauth|social``), live and over HTTP:
what tests/test_demo_allauth.py and tests/test_demo_social.py check, each for its library.

A requests session plays a desktop browser: the home page, the drop-in's button (a form POSTed
with its CSRF token: to allauth's login view, to social-auth's ``social:begin``), the fake
WeChat's consent page at ``/fake-wechat/`` (a new person, *Simulate WeChat's double callback*
ticked), then what that box's page does in a browser (tests/test_browser.py runs it in
Chromium): the callback fetched and aborted after ~15 ms, then loaded again with ``uin``/
``key``/``pass_ticket``. The login must land on the demo's home, logged in through the library,
with one exchange of the code at the fake's token endpoint.
"""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

from demo_project.drop_in import DROP_INS
from tests.demo_server import DemoServer
from wechat_oauth.redact import redact
from wechat_oauth.testing import openid_for, unionid_for
from wechat_oauth.testing.wechat_client import send_and_abort

#: The demo's Official Account (demo_project/settings.py): the drop-in's provider or backend.
MP_APP_ID = "wxdemo000000000001"
#: A desktop browser: the demo's button is clicked on a computer.
DESKTOP_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
)
#: When the fake's double-callback page aborts the first request (wechat_oauth/testing/pages.py).
ABORT_AFTER = 0.015
#: Longest wait (seconds) for a request, or for the aborted request to be counted.
TIMEOUT = 20

_FORM = re.compile(
    r'<form method="post" action="(?P<action>[^"]*)"(?P<attributes>[^>]*)>'
    r"(?P<body>.*?)</form>",
    re.S,
)
_INPUT = re.compile(r'<input type="(?:hidden|text)" name="([^"]+)" value="([^"]*)"')


def form_of(page: str, form_id: str = "") -> tuple[str, dict[str, str]]:
    """The action and the field values of the page's first POST form (with ``form_id``)."""
    for form in _FORM.finditer(page):
        if not form_id or f'id="{form_id}"' in form.group("attributes"):
            fields = {name: html.unescape(value) for name, value in _INPUT.findall(form["body"])}
            return html.unescape(form["action"]), fields
    raise AssertionError(f"no POST form {form_id!r} in the page:\n{page[:3000]}")


def double_callback_urls(page: str) -> tuple[str, str]:
    """The fake's double-callback page: the callback it aborts, and the re-sent one it loads."""
    urls = [json.loads(re.search(rf"var {name} = (\"[^\"]*\");", page)[1]) for name in ("first", "second")]
    return urls[0], urls[1]


def log_in_through_the_drop_in(
    demo: DemoServer, person: str
) -> tuple[requests.Session, str, requests.Response]:
    """The drop-in's button, the fake's consent (``person``, double callback ticked), the two
    callbacks: the browser, the code, and the page the browser lands on."""
    browser = requests.Session()
    browser.headers["User-Agent"] = DESKTOP_USER_AGENT
    home = browser.get(demo.url + "/", timeout=TIMEOUT)
    assert home.status_code == 200, home.text
    action, fields = form_of(home.text, "drop-in-login")
    assert fields.get("csrfmiddlewaretoken"), fields

    started = browser.post(urljoin(home.url, action), data=fields, allow_redirects=False, timeout=TIMEOUT)
    assert started.status_code == 302, (started.status_code, started.text[:2000])
    authorize = started.headers["Location"]
    assert authorize.startswith(demo.url + "/fake-wechat/connect/oauth2/authorize?"), authorize
    assert authorize.endswith("#wechat_redirect"), authorize

    consent = browser.get(authorize.split("#", 1)[0], timeout=TIMEOUT)
    assert consent.status_code == 200 and "Simulate WeChat's double callback" in consent.text
    action, fields = form_of(consent.text)
    answer = browser.post(
        urljoin(consent.url, action),
        data={**fields, "person": person, "double": "1", "decision": "allow"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200, answer.text
    first, second = double_callback_urls(answer.text)
    code = parse_qs(urlsplit(first).query)["code"][0]
    assert parse_qs(urlsplit(second).query)["code"] == [code] and "pass_ticket=" in second

    send_and_abort(first, browser.cookies, abort_after=ABORT_AFTER, user_agent=DESKTOP_USER_AGENT)
    landed = browser.get(second, timeout=TIMEOUT)
    return browser, code, landed


def exchanges_of(demo: DemoServer, code: str) -> int:
    """How many times the demo's fake WeChat received ``code`` at its token endpoint."""
    stats = requests.get(f"{demo.url}/fake-wechat/_fake/stats?{urlencode({'code': code})}", timeout=TIMEOUT)
    assert stats.status_code == 200, stats.text
    return int(stats.json()["exchange_calls"][code])


def assert_logs_in_through_the_drop_in(demo: DemoServer) -> None:
    """A new person logs in through the drop-in's button with WeChat's double callback: home,
    logged in through the library, one exchange of the code, the duplicate absorbed."""
    mode = DROP_INS[demo.drop_in or ""]
    person = f"dropin-{uuid.uuid4().hex[:12]}"
    openid = openid_for(MP_APP_ID, person)
    browser, code, landed = log_in_through_the_drop_in(demo, person)

    assert landed.status_code == 200 and landed.url == demo.url + "/", (
        landed.status_code,
        landed.url,
        landed.text[:2000],
        demo.log()[-3000:],
    )
    page = landed.text
    assert f'id="logged-in-through" data-drop-in="{mode.name}"' in page, page
    assert f'<dd id="openid">{openid}</dd>' in page
    assert (
        f'class="drop-in-account" data-provider="{mode.provider}" data-uid="{openid}" '
        f'data-unionid="{unionid_for(person)}"'
    ) in page, page
    assert exchanges_of(demo, code) == 1
    # The aborted first callback passed the fence too (it may finish after the page): its
    # code's row counts one duplicate, and still one exchange.
    row = (
        f'class="code-use" data-app="mp" data-openid="{openid}" data-status="exchanged" '
        f'data-duplicates="1" data-resent="1" data-upstream-exchanges="1"'
    )
    deadline = time.monotonic() + TIMEOUT
    while row not in (home := browser.get(demo.url + "/", timeout=TIMEOUT).text):
        assert time.monotonic() < deadline, f"no {row!r} on the home page:\n{home}"
        time.sleep(0.1)
    assert exchanges_of(demo, code) == 1
    log = demo.log()
    leaked = [line for line in log.splitlines() if redact(line) != line]
    assert not leaked, f"unmasked code, token or secret in the demo's log: {leaked[:3]}"
    # The demo command runs the system checks (errors stop it, warnings are printed): none.
    assert "System check identified" not in log, log
