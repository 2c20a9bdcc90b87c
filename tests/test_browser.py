"""The demo site in a real browser: WeChat's double callback is absorbed; the naive callback fails;
one person logging in through both of the demo's apps (the in-WeChat login and the QR panel) is
one user; the Mini Program panel's code POSTed twice at once is one call to WeChat.

``python manage.py demo`` runs as a child process on a SQLite file of its own, with the fake
WeChat built in; headless Chromium (Debian's ``chromium`` and ``chromium-driver``) logs in
through the fake's consent page, ticking *Simulate WeChat's double callback* or not: the fake
then fetches the callback, aborts that request after ~15 ms and loads it again with
``uin``/``key``/``pass_ticket``, as WeChat's in-app browser does. What happened is read from
the database file (sqlite3, without Django) and from the demo's home page, which shows how
many times the fake's token endpoint saw each code, and from the fake's own counters
(``/fake-wechat/_fake/stats``).
"""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from tests.demo_server import DemoServer
from wechat_oauth.redact import redact
from wechat_oauth.testing import openid_for, unionid_for

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: Longest wait (seconds) for anything the browser or the server does.
WAIT = 20
#: The demo's app secrets (demo_project/settings.py): they must never reach the server's log.
DEMO_APP_SECRETS = (
    "demo-app-secret-0123456789abcdef",
    "demo-web-secret-0123456789abcdef",
    "demo-mini-secret-0123456789abcdef",
    "demo-wecom-secret-0123456789abcdef",
)
#: The demo's apps: the Official Account (the default app), the website app (QR login) and the
#: Mini Program (the Mini Program panel).
MP_APP_ID = "wxdemo000000000001"
WEB_APP_ID = "wxdemo000000000002"
MINI_APP_ID = "wxdemo000000000003"

T = TypeVar("T")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    directory = tmp_path_factory.mktemp("demo")
    with DemoServer(directory / "db.sqlite3", directory / "server.log") as server:
        yield server


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in CHROMIUM_ARGUMENTS:
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class Site:
    """The demo server and one browser, with the waits and database reads the tests share."""

    demo: DemoServer
    driver: WebDriver

    # -- the browser --------------------------------------------------------------------------

    def wait(self, condition: Callable[[WebDriver], T], what: str) -> T:
        """``condition``'s first truthy value within WAIT seconds, or an AssertionError that shows
        where the browser is and what the server logged."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, WAIT, poll_frequency=0.05).until(condition)
        except TimeoutException:
            raise AssertionError(
                f"timed out after {WAIT} s waiting for {what}\n"
                f"browser at {self.driver.current_url}:\n{self._page_text()}\n"
                f"--- demo server log (last lines) ---\n{self._log_tail()}"
            ) from None

    def element(self, css: str) -> WebElement:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def log_in_through_fake_wechat(
        self, button_id: str, *, openid: str, nickname: str = "", double_callback: bool
    ) -> None:
        """From the home page, click ``button_id`` and allow on the fake's consent page."""
        from selenium.webdriver.common.by import By

        self.driver.get(self.demo.url + "/")
        self.element(f"#{button_id}").click()
        field = self.wait(lambda d: d.find_element(By.NAME, "openid"), "the fake consent page")
        field.clear()
        field.send_keys(openid)
        if nickname:
            self.element("input[name=nickname]").send_keys(nickname)
        box = self.element("input[name=double]")
        if box.is_selected() != double_callback:
            box.click()
        assert box.is_selected() == double_callback
        self.element("button[name=decision][value=allow]").click()

    def wait_until_home_shows(self, openid: str) -> None:
        from selenium.webdriver.common.by import By

        def logged_in(driver: WebDriver) -> bool:
            if driver.current_url != self.demo.url + "/":
                return False
            shown = driver.find_elements(By.ID, "openid")
            return bool(shown) and shown[0].text == openid

        self.wait(logged_in, f"the home page to show openid {openid} as logged in")

    def upstream_exchanges_shown_for(self, openid: str) -> str | None:
        """The home page's count of token requests the fake received for openid's code."""
        self.driver.get(self.demo.url + "/")
        row = self.element(f'tr.code-use[data-openid="{openid}"]')
        return row.get_attribute("data-upstream-exchanges")

    def fake_stats(self) -> dict[str, Any]:
        """The counters of the demo's fake WeChat (its control API, in the demo's server)."""
        with urllib.request.urlopen(self.demo.url + "/fake-wechat/_fake/stats", timeout=WAIT) as r:
            return json.load(r)

    # -- the database file, read without Django --------------------------------------------

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        uri = f"file:{self.demo.db_path}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=WAIT)) as connection:
            connection.row_factory = sqlite3.Row
            return [dict(row) for row in connection.execute(sql, params)]

    def last_id(self, table: str) -> int:
        return int(self.query(f"SELECT COALESCE(MAX(id), 0) AS last FROM {table}")[0]["last"])

    def code_uses_since(self, last_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM wechat_oauth_oauthcodeuse WHERE id > ? ORDER BY id", last_id)

    def naive_attempts_since(self, last_id: int, at_least: int = 0) -> list[dict[str, Any]]:
        """The naive callback's records after ``last_id``; none until there are ``at_least``."""
        found = self.query("SELECT * FROM demo_project_naiveattempt WHERE id > ? ORDER BY id", last_id)
        return found if len(found) >= at_least else []

    # -- the server's log ----------------------------------------------------------------

    def assert_log_shows_no_secret(self) -> None:
        """runserver logs every request line, the callback's code and the fake's API calls
        (app secret, tokens) included: the demo masks them as the app masks its own logs."""
        log = self.demo.log()
        for secret in DEMO_APP_SECRETS:
            assert secret not in log
        leaked = [line for line in log.splitlines() if redact(line) != line]
        assert not leaked, f"unmasked code, token or secret in the demo's log: {leaked[:3]}"

    def _page_text(self) -> str:
        from selenium.common.exceptions import WebDriverException

        try:
            return self.driver.find_element("tag name", "body").text[:2000]
        except WebDriverException as exc:  # the page may be mid-navigation: say so instead
            return f"(page text unavailable: {type(exc).__name__})"

    def _log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.demo.log().splitlines()[-lines:])


@pytest.fixture
def site(demo: DemoServer, browser: WebDriver) -> Site:
    return Site(demo, browser)


def new_openid(kind: str) -> str:
    """A fresh openid, 28 characters like WeChat's, so each test finds its own rows."""
    return f"oBrowser{kind}{uuid.uuid4().hex}"[:28]


def test_double_callback_is_absorbed_and_the_user_is_logged_in(site: Site) -> None:
    before = site.last_id("wechat_oauth_oauthcodeuse")
    openid = new_openid("Double")

    site.log_in_through_fake_wechat("login-wechat", openid=openid, double_callback=True)
    site.wait_until_home_shows(openid)

    # Both callback requests have passed the guard once the duplicate is counted (the aborted
    # first one may still be finishing when the page shows).
    rows = site.wait(
        lambda _: [r for r in site.code_uses_since(before) if r["duplicates"] >= 1],
        "the code's row to count the duplicate callback",
    )
    assert len(site.code_uses_since(before)) == 1, "one code, one row"
    row = rows[0]
    assert row["status"] == "exchanged"
    assert row["openid"] == openid
    assert row["resent_variant_seen"] == 1
    assert row["errcode"] is None
    # WeChat (the fake) saw the code exactly once.
    assert site.upstream_exchanges_shown_for(openid) == "1"
    summary = site.element("#guarded-summary")
    assert summary.get_attribute("data-failures") == "0"
    site.assert_log_shows_no_secret()


#: Naive logins tried before giving up on seeing the re-sent callback fail (see the test).
NAIVE_TRIES = 3


def test_naive_callback_fails_on_the_double_callback(site: Site) -> None:
    """The same double callback, through ``/naive/callback/`` (state popped from the session,
    code exchanged directly): one of the two requests always fails, and normally it is the
    re-sent one, the page the user sees. Which one fails is a race between the two requests
    (the aborted one starts ~15 ms earlier, and wins unless the server is very busy), so a login
    where the re-sent request happened to win is checked for the same invariant and tried
    again; the user must see the failure within NAIVE_TRIES logins."""
    guarded_before = site.last_id("wechat_oauth_oauthcodeuse")
    for _ in range(NAIVE_TRIES):
        naive_before = site.last_id("demo_project_naiveattempt")
        openid = new_openid("Naive")
        site.driver.delete_all_cookies()
        site.log_in_through_fake_wechat("login-naive", openid=openid, double_callback=True)

        def answer(driver: WebDriver) -> list[WebElement]:
            if driver.current_url == site.demo.url + "/":
                return driver.find_elements("id", "openid")
            return driver.find_elements("id", "naive-error")

        shown = site.wait(answer, "the naive callback's answer (error page or home page)")
        error = shown[0] if shown[0].get_attribute("id") == "naive-error" else None
        error_details = (
            (
                error.get_attribute("data-outcome"),
                error.get_attribute("data-errcode"),
                error.get_attribute("data-resent"),
                site.element("#what-failed").text,
            )
            if error is not None
            else None
        )

        # Both callback requests are recorded; exactly one logged in, the other failed with
        # 40163 (the code was spent) or the state check (the state was popped from the session).
        def both_recorded(_: WebDriver, since: int = naive_before) -> list[dict[str, Any]]:
            return site.naive_attempts_since(since, at_least=2)

        attempts = site.wait(both_recorded, "both naive callback requests to be recorded")
        assert len(attempts) == 2, attempts
        assert sorted(bool(a["resent"]) for a in attempts) == [False, True]
        winners = [a for a in attempts if a["outcome"] == "logged_in"]
        losers = [a for a in attempts if a["outcome"] != "logged_in"]
        assert len(winners) == 1 and len(losers) == 1, attempts
        loser = losers[0]
        assert (loser["outcome"], loser["errcode"]) in {("upstream", 40163), ("state", None)}, loser
        # The code went to WeChat twice when the state check let both through.
        site.driver.get(site.demo.url + "/")
        upstream = site.element(f'tr.naive-attempt[data-id="{loser["id"]}"]').get_attribute(
            "data-upstream-exchanges"
        )
        assert upstream == ("2" if loser["outcome"] == "upstream" else "1")
        if error_details is not None:
            break
        # The re-sent request overtook the aborted one: the user saw a login. Try again.
        assert winners[0]["resent"] == 1
    else:
        pytest.fail(
            f"in {NAIVE_TRIES} naive logins with the double callback, the re-sent request never failed"
        )

    # What the user saw is the re-sent callback's failure.
    outcome, errcode, resent, what_failed = error_details
    assert resent == "1"
    assert loser["resent"] == 1
    if outcome == "upstream":
        assert errcode == "40163", what_failed
        assert "WeChat answered errcode 40163" in what_failed
        assert "code been used" in what_failed
    else:
        assert outcome == "state", (outcome, errcode, what_failed)
        assert "State check failed" in what_failed
    # The aborted first request logged in, but its answer was thrown away.
    assert winners[0]["resent"] == 0
    # The naive path never touched the guard.
    assert site.code_uses_since(guarded_before) == []
    naive_summary = site.element("#naive-summary")
    assert int(naive_summary.get_attribute("data-failures") or 0) >= 1
    site.assert_log_shows_no_secret()


def test_plain_login_without_double_callback(site: Site) -> None:
    before = site.last_id("wechat_oauth_oauthcodeuse")
    openid = new_openid("Plain")

    site.log_in_through_fake_wechat(
        "login-wechat", openid=openid, nickname="Plain Alice", double_callback=False
    )
    site.wait_until_home_shows(openid)

    assert site.element("#username").text == f"wx_{openid}"
    assert site.element("#nickname").text == "Plain Alice"
    rows = site.code_uses_since(before)
    assert len(rows) == 1
    assert rows[0]["status"] == "exchanged"
    assert rows[0]["openid"] == openid
    assert rows[0]["duplicates"] == 0
    assert rows[0]["resent_variant_seen"] == 0
    assert site.upstream_exchanges_shown_for(openid) == "1"

    site.element("#logout").click()
    site.wait(lambda d: d.find_elements("id", "anonymous"), "the home page after logging out")
    assert re.search(r"Not logged in", site.element("#who").text)
    site.assert_log_shows_no_secret()


def test_one_person_through_both_apps_is_one_user(site: Site) -> None:
    """alice logs in through the Official Account (the in-WeChat login), logs out, and logs in
    again through the website app's QR panel embedded in the demo's page (the fake's wxLogin.js
    draws the fake's qrconnect page in an iframe; "Confirm on phone" sends the whole page to the
    callback): one user, two WeChat accounts linked by her unionid, the QR code exchanged once."""
    person = "alice"
    mp_openid, web_openid = openid_for(MP_APP_ID, person), openid_for(WEB_APP_ID, person)
    unionid = unionid_for(person)
    web_exchanges_before = site.fake_stats()["app_calls"][WEB_APP_ID]["access_token"]
    guarded_before = site.last_id("wechat_oauth_oauthcodeuse")
    site.driver.delete_all_cookies()

    # 1. The in-WeChat login (the default app): the fake's consent page offers alice.
    site.driver.get(site.demo.url + "/")
    site.element("#login-wechat").click()
    chosen = site.wait(lambda d: d.find_element("name", "person"), "the fake consent page")
    assert chosen.get_attribute("value") == person
    site.element("button[name=decision][value=allow]").click()
    site.wait_until_home_shows(mp_openid)
    username = site.element("#username").text
    assert site.element("#logged-in-app").text == "mp"
    site.element("#logout").click()
    site.wait(lambda d: d.find_elements("id", "anonymous"), "the home page after logging out")

    # 2. The QR panel on the demo's own page: the fake's qrconnect page inside an iframe.
    site.element("#login-qr-panel").click()
    frames = site.wait(
        lambda d: d.find_elements("css selector", ".wechat-oauth-qr iframe"), "the QR panel's iframe"
    )
    source = frames[0].get_attribute("src")
    assert "/fake-wechat/connect/qrconnect?" in source
    assert f"appid={WEB_APP_ID}" in source and "login_type=jssdk" in source
    assert "self_redirect=false" in source
    site.driver.switch_to.frame(frames[0])
    confirm = site.wait(
        lambda d: d.find_element("css selector", "button[name=decision][value=allow]"),
        "the fake's scan page in the iframe",
    )
    assert confirm.text == "Confirm on phone"
    assert site.element("input[name=person]").get_attribute("value") == person
    confirm.click()
    site.driver.switch_to.default_content()
    site.wait_until_home_shows(web_openid)  # the top window went to the callback, then home

    # One user, two WeChat accounts: one per app, the same unionid.
    assert site.element("#username").text == username
    assert site.element("#logged-in-app").text == "web"
    shown = sorted(
        tuple(
            row.get_attribute(f"data-{name}") for name in ("app", "app-id", "openid", "unionid", "linked-by")
        )
        for row in site.driver.find_elements("css selector", "tr.wechat-account")
    )
    assert shown == [
        ("mp", MP_APP_ID, mp_openid, unionid, "unionid"),
        ("web", WEB_APP_ID, web_openid, unionid, "unionid"),
    ]
    accounts = site.query("SELECT user_id, app_id FROM wechat_oauth_wechataccount WHERE unionid = ?", unionid)
    assert sorted(a["app_id"] for a in accounts) == [MP_APP_ID, WEB_APP_ID]
    assert len({a["user_id"] for a in accounts}) == 1
    persons = site.query("SELECT user_id FROM wechat_oauth_wechatunion WHERE unionid = ?", unionid)
    assert [p["user_id"] for p in persons] == [accounts[0]["user_id"]]

    # The QR login's code went to the fake's token endpoint once.
    assert site.fake_stats()["app_calls"][WEB_APP_ID]["access_token"] == web_exchanges_before + 1
    web_rows = [r for r in site.code_uses_since(guarded_before) if r["app_id"] == WEB_APP_ID]
    assert len(web_rows) == 1
    assert web_rows[0]["status"] == "exchanged" and web_rows[0]["openid"] == web_openid
    assert site.upstream_exchanges_shown_for(web_openid) == "1"
    web_summary = site.element('.guarded-app[data-app="web"]')
    assert int(web_summary.get_attribute("data-logins")) >= 1
    assert web_summary.get_attribute("data-failures") == "0"
    site.assert_log_shows_no_secret()


def test_scan_to_log_in_on_wechats_qrconnect_page(site: Site) -> None:
    """The website app's other way in: the whole page goes to the fake's qrconnect page."""
    person = "bob"
    web_openid = openid_for(WEB_APP_ID, person)
    site.driver.delete_all_cookies()
    site.driver.get(site.demo.url + "/")
    site.element("#login-scan").click()
    chosen = site.wait(lambda d: d.find_element("name", "person"), "the fake's scan page")
    assert site.driver.current_url.startswith(site.demo.url + "/fake-wechat/connect/qrconnect?")
    chosen.clear()
    chosen.send_keys(person)
    confirm = site.element("button[name=decision][value=allow]")
    assert confirm.text == "Confirm on phone"
    confirm.click()
    site.wait_until_home_shows(web_openid)

    assert site.element("#logged-in-app").text == "web"
    shown = [
        tuple(row.get_attribute(f"data-{name}") for name in ("app", "unionid", "linked-by"))
        for row in site.driver.find_elements("css selector", "tr.wechat-account")
    ]
    assert shown == [("web", unionid_for(person), "unionid")]
    assert site.upstream_exchanges_shown_for(web_openid) == "1"
    site.assert_log_shows_no_secret()


def test_wecom_login_of_a_desktop_browser_goes_through_the_sso_qr_page(site: Site) -> None:
    """The WeCom app: a desktop browser is sent to WeCom's SSO page (a QR code and the phone
    that confirms it); the member is then logged in by userid, with one getuserinfo call."""
    userid = "zhangsan"
    site.driver.delete_all_cookies()
    site.driver.get(site.demo.url + "/")
    site.element("#login-wecom").click()
    chosen = site.wait(lambda d: d.find_element("name", "userid"), "the fake's WeCom SSO page")
    assert site.driver.current_url.startswith(site.demo.url + "/fake-wechat/wwlogin/sso/login?")
    assert "Scan with WeCom" in site.element("#qrcode").text
    chosen.clear()
    chosen.send_keys(userid)
    site.element("button[name=decision][value=allow]").click()
    site.wait_until_home_shows(userid)

    assert site.element("#logged-in-app").text == "corp"
    assert site.upstream_exchanges_shown_for(userid) == "1"
    site.assert_log_shows_no_secret()


def test_mini_program_panel_one_code_twice_at_once_is_one_upstream_call(site: Site) -> None:
    """The Mini Program panel plays a careless front end: one wx.login() code (from the fake),
    POSTed twice at once to the app's session endpoint. Both answers name one identity and one
    user, and the page reads from the fake that WeChat saw the code once; the same front end
    against the demo's naive session endpoint gets one answer failing with 40163."""
    person = f"mini-{uuid.uuid4().hex[:12]}"
    openid = openid_for(MINI_APP_ID, person)
    site.driver.get(site.demo.url + "/")
    site.element("#demo-mini").click()
    field = site.wait(lambda d: d.find_elements("id", "mini-person"), "the Mini Program page")[0]
    assert field.get_attribute("value") == "alice"
    field.clear()
    field.send_keys(person)

    def shown(calls: str) -> Callable[[WebDriver], bool]:
        return lambda d: site.element("#mini-upstream-calls").text == calls

    site.element("#mini-guarded").click()
    site.wait(shown("1 upstream call"), "the page to show 1 upstream call")
    answers = site.driver.find_elements("css selector", ".mini-answer")
    assert [a.get_attribute("data-status") for a in answers] == ["200", "200"]
    assert {a.get_attribute("data-openid") for a in answers} == {openid}
    assert {a.get_attribute("data-unionid") for a in answers} == {unionid_for(person)}
    user_ids = {a.get_attribute("data-user-id") for a in answers}
    assert len(user_ids) == 1 and user_ids != {""}
    assert {a.get_attribute("data-token-user") for a in answers} == user_ids
    assert site.element("#mini-users").get_attribute("data-users") == "1"
    assert site.element("#mini-verdict").get_attribute("data-verdict") == "same"
    accounts = site.query(
        "SELECT user_id FROM wechat_oauth_wechataccount WHERE app_id = ? AND openid = ?", MINI_APP_ID, openid
    )
    assert [str(a["user_id"]) for a in accounts] == list(user_ids)

    site.element("#mini-naive").click()
    site.wait(shown("2 upstream calls"), "the page to show 2 upstream calls")
    answers = site.driver.find_elements("css selector", ".mini-answer")
    assert sorted(a.get_attribute("data-status") for a in answers) == ["200", "502"]
    failed = next(a for a in answers if a.get_attribute("data-status") == "502")
    assert failed.get_attribute("data-errcode") == "40163"
    assert "code been used" in failed.text
    assert site.element("#mini-verdict").get_attribute("data-verdict") == "failed"
    assert site.element("#mini-users").get_attribute("data-users") == "1"
    site.assert_log_shows_no_secret()
