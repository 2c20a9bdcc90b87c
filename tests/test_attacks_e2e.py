"""The attacks of the browser-binding work, black-box over real HTTP.

A real Django server process on the PostgreSQL test database, the fake WeChat of this process,
and browsers that are plain HTTP clients with cookie jars (tests/live_servers.py). What is
asserted is what a person at each browser would see (status, who /whoami/ says is logged in),
what WeChat was asked (the fake's call counts) and what the database keeps (rows).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections

from tests.live_servers import Browser, LiveServer, Tally, query_of, running_servers, with_query
from wechat_oauth.models import OAuthCodeUse

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases="__all__")]

DESKTOP_USER_AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Safari/605.1.15"
#: The server's budget of rejected codes per client: small, so a flood reaches it quickly.
GARBAGE_BUDGET = 6
#: Its period, s: a month, so that the flood's few seconds cannot straddle two periods (each
#: period's counter starts afresh: with the default 600 s a flood across a boundary would get
#: a fresh budget midway, one way this test has failed intermittently).
GARBAGE_PERIOD = 30 * 24 * 3600


@pytest.fixture(scope="module")
def site(
    django_db_setup: None, fake_wechat_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    alias = next(a for a, c in settings.DATABASES.items() if c["ENGINE"].endswith("postgresql"))
    config = {
        "database": dict(connections[alias].settings_dict),
        "wechat_oauth": {
            **settings.WECHAT_OAUTH,
            **fake_wechat_server.settings(),
            "GARBAGE_BUDGET": GARBAGE_BUDGET,
            "GARBAGE_PERIOD": GARBAGE_PERIOD,
        },
    }
    with running_servers(["A"], config, tmp_path_factory.mktemp("attacks")) as running:
        yield running["A"]


@pytest.fixture
def tally() -> Tally:
    return Tally("attack")


def person(tally: Tally, agent: str = "wechat") -> Browser:
    browser = Browser(tally)
    if agent == "desktop":
        browser.session.headers["User-Agent"] = DESKTOP_USER_AGENT
    return browser


def approved_callback(browser: Browser, site: LiveServer, openid: str, next_url: str = "/whoami/") -> str:
    return browser.authorize(browser.start_login(site, next_url), openid)


def logged_in_as(browser: Browser, site: LiveServer) -> str | None:
    return browser.whoami(site).get("openid")


def get(browser: Browser, url: str) -> Any:
    """A GET whose 4xx is the expected outcome here (not a failure of the scenario)."""
    return browser.session.get(url, allow_redirects=False, timeout=20)


@pytest.mark.parametrize("agent", ["desktop", "wechat"])
def test_login_csrf_link_logs_no_victim_in_as_the_attacker(fake_wechat, site, tally, agent):
    attacker = person(tally, "desktop")
    link = approved_callback(attacker, site, "o_attacker")  # stopped before the callback
    anonymous, logged_in = person(tally, agent), person(tally, agent)
    logged_in.get(approved_callback(logged_in, site, "o_victim"), "victim's own login")

    answers = [get(victim, link) for victim in (anonymous, logged_in)]

    assert logged_in_as(logged_in, site) == "o_victim"
    assert answers[1].status_code == 400  # her own binding cookie does not match
    if agent == "desktop":
        assert answers[0].status_code == 400 and logged_in_as(anonymous, site) is None
        assert fake_wechat.exchange_calls(query_of(link)["code"]) == 0


def test_disguised_login_link_ends_logged_in_as_the_victim_herself(fake_wechat, site, tally):
    attacker = person(tally, "desktop")
    link = approved_callback(attacker, site, "o_attacker")
    victim = person(tally)

    landed = victim.get(approved_callback(victim, site, "o_victim", next_url=link), "callback")

    assert (landed.status_code, landed.headers["Location"]) == (302, "/")
    assert logged_in_as(victim, site) == "o_victim"
    assert fake_wechat.exchange_calls(query_of(link)["code"]) == 0


@pytest.mark.parametrize("agent", ["desktop", "wechat"])
def test_leaked_callback_url_logs_in_nobody_else(fake_wechat, site, tally, agent):
    victim = person(tally)
    callback = approved_callback(victim, site, "o_leaky")
    victim.get(callback, "callback")
    thief = person(tally, agent)  # other cookies (none), maybe another User-Agent

    get(thief, with_query(callback, "uin=MTMy&key=abc&pass_ticket=xyz"))

    assert logged_in_as(thief, site) is None
    assert fake_wechat.exchange_calls(query_of(callback)["code"]) == 1


def test_victims_code_on_a_fresh_state_of_the_attackers_logs_in_nobody(fake_wechat, site, tally):
    victim = person(tally)
    victims = approved_callback(victim, site, "o_spliced")
    victim.get(victims, "callback")
    attacker = person(tally)
    own = approved_callback(attacker, site, "o_attacker2")
    spliced = own.replace(f"code={query_of(own)['code']}", f"code={query_of(victims)['code']}")

    answer = get(attacker, spliced)

    assert answer.status_code == 302 and answer.headers["Location"].startswith(fake_wechat.base_url)
    assert logged_in_as(attacker, site) is None
    assert fake_wechat.exchange_calls(query_of(victims)["code"]) == 1


def test_error_pages_put_no_code_into_the_servers_error_log(fake_wechat, site, tally):
    browser = person(tally)
    callback = approved_callback(browser, site, "o_busy")
    before = len(site.log_text())
    fake_wechat.add_fault("access_token", errcode=-1, errmsg="system error")

    assert get(browser, callback).status_code == 502

    log = site.log_text()[before:]
    assert "login page 502 (busy)" in log  # the app's own, redacted line
    assert query_of(callback)["code"] not in log and "Bad Gateway" not in log


def test_a_taken_username_ends_in_a_login_not_a_500(fake_wechat, site, tally, pg_alias):
    get_user_model().objects.using(pg_alias).create(username="wx_o_taken")
    browser = person(tally)

    landed = browser.get(approved_callback(browser, site, "o_taken"), "callback")

    assert landed.status_code == 302 and logged_in_as(browser, site) == "o_taken"
    assert browser.whoami(site)["user"].startswith("wx_o_taken_")


def test_flood_of_made_up_codes_costs_a_bounded_number_of_rows_and_calls(fake_wechat, site, tally, pg_alias):
    """Last in the module: it uses up the server's budget for 127.0.0.1. Each made-up code comes
    with a fresh genuine state (free: one GET of the login view)."""
    flooder = person(tally, "desktop")
    rows = OAuthCodeUse.objects.using(pg_alias)
    rows_before, calls_before = rows.count(), fake_wechat.total_exchange_calls()
    answers = []
    for n in range(GARBAGE_BUDGET + 10):
        callback = approved_callback(flooder, site, f"o_flood{n}")
        made_up = callback.replace(f"code={query_of(callback)['code']}", f"code=madeup{n:026d}")
        answers.append(get(flooder, made_up).status_code)

    assert answers.count(429) == 10
    assert fake_wechat.total_exchange_calls() - calls_before == GARBAGE_BUDGET
    assert rows.count() - rows_before == GARBAGE_BUDGET
    refused = get(
        flooder,
        f"{site.url}/wechat/callback/?"
        + urlencode({"next": "/whoami/", "code": "x" * 32, "state": query_of(made_up)["state"]}),
    )
    assert refused.status_code == 429 and "Retry-After" in refused.headers
