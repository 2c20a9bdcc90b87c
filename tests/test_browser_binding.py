"""A login belongs to the browser that started it, tried as an attacker would.

Each browser is its own ``Client`` (cookie jar, User-Agent); WeChat is the real local fake. The
attacker approves a login with their own WeChat and stops before the callback, or gets hold of
a victim's callback URL; none of that may log anyone in as someone else. The other side is
tested too: WeChat's browser that drops its cookies mid-login still logs in.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.test import Client

from tests.test_login_flow import RESENT, authorize, whoami
from wechat_oauth.models import OAuthCodeUse, WeChatAccount
from wechat_oauth.testing.wechat_client import WECHAT_USER_AGENT

pytestmark = pytest.mark.django_db(transaction=True)

DESKTOP_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
AGENTS = {"desktop": DESKTOP_USER_AGENT, "wechat": WECHAT_USER_AGENT}
BINDING_COOKIE = "wechat_oauth_binding"


def browser(agent: str = "desktop") -> Client:
    return Client(HTTP_USER_AGENT=AGENTS[agent])


def code_of(callback: str) -> str:
    return parse_qs(urlsplit(callback).query)["code"][0]


def with_param(callback: str, name: str, value: str) -> str:
    parts = urlsplit(callback)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    return f"{parts.path}?{urlencode({**query, name: value})}"


def logged_in_as(client: Client) -> str | None:
    return whoami(client)["openid"]


def victim_logged_in_as_herself(agent: str) -> Client:
    victim = browser(agent)
    assert victim.get(authorize(victim, "o_victim")).status_code == 302
    assert logged_in_as(victim) == "o_victim"
    return victim


def attackers_callback() -> str:
    """The attacker's login, approved with the attacker's WeChat, stopped before the callback."""
    return authorize(browser(), "o_attacker")


# -- 1. login CSRF: the attacker's callback URL sent to a victim --------------------------------


@pytest.mark.parametrize("agent", AGENTS)
def test_login_csrf_link_never_replaces_a_logged_in_victim(fake_wechat, agent):
    """The victim's own binding cookie (from her login) does not match the attacker's state."""
    victim = victim_logged_in_as_herself(agent)
    link = attackers_callback()

    response = victim.get(link)

    assert response.status_code == 400 and b"another browser" in response.content
    assert logged_in_as(victim) == "o_victim"
    assert fake_wechat.exchange_calls(code_of(link)) == 0


@pytest.mark.parametrize("agent", AGENTS)
def test_login_csrf_link_to_a_logged_in_victim_without_a_binding_cookie(fake_wechat, agent):
    """Her binding cookie expired or was dropped: a desktop browser is refused, WeChat's browser
    (which may have dropped the cookie of a genuine login) is asked, never switched."""
    victim = victim_logged_in_as_herself(agent)
    victim.cookies.pop(BINDING_COOKIE)
    link = attackers_callback()

    response = victim.get(link)

    assert logged_in_as(victim) == "o_victim"
    if agent == "desktop":
        assert response.status_code == 400 and fake_wechat.exchange_calls(code_of(link)) == 0
    else:
        assert response.status_code == 200 and b"Continue with WeChat" in response.content
        stay = victim.post("/wechat/confirm/", {"action": "stay"})
        assert stay.status_code == 302 and logged_in_as(victim) == "o_victim"


def test_confirming_the_switch_logs_in_the_new_wechat_user(fake_wechat):
    """The genuine case behind the question: the same person, cookies dropped, another account."""
    person = victim_logged_in_as_herself("wechat")
    start = person.get("/wechat/login/?next=/whoami/")["Location"].split("#")[0]
    callback = (
        requests.get(start + "&fake_openid=o_other_account", allow_redirects=False, timeout=5)
        .headers["Location"]
        .replace("http://testserver", "")
    )
    person.cookies.pop(BINDING_COOKIE)  # WeChat's browser dropped it

    asked = person.get(callback)
    confirmed = person.post("/wechat/confirm/", {"action": "continue"})

    assert asked.status_code == 200
    assert (confirmed.status_code, confirmed["Location"]) == (302, "/whoami/")
    assert logged_in_as(person) == "o_other_account"
    assert person.post("/wechat/confirm/", {"action": "continue"}).status_code == 400  # once


def test_confirmation_needs_the_sessions_parked_login_and_a_csrf_token(fake_wechat):
    victim = victim_logged_in_as_herself("wechat")
    victim.cookies.pop(BINDING_COOKIE)
    assert victim.get(attackers_callback()).status_code == 200
    strict = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=WECHAT_USER_AGENT)
    strict.cookies = victim.cookies

    forged = strict.post("/wechat/confirm/", {"action": "continue"})  # no CSRF token
    elsewhere = browser("wechat").post("/wechat/confirm/", {"action": "continue"})

    assert forged.status_code == 403 and elsewhere.status_code == 400
    assert logged_in_as(victim) == "o_victim"


def test_login_csrf_link_to_an_anonymous_desktop_browser_is_refused(fake_wechat):
    victim = browser("desktop")
    link = attackers_callback()

    response = victim.get(link)

    assert response.status_code == 400 and logged_in_as(victim) is None
    assert fake_wechat.exchange_calls(code_of(link)) == 0


def test_login_csrf_link_to_an_anonymous_wechat_browser_with_confirm_unbound(fake_wechat, settings):
    """The residual risk, closed by a setting: nothing tells an anonymous WeChat browser that
    lost its cookie from the attacker's victim, so CONFIRM_UNBOUND asks first."""
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "CONFIRM_UNBOUND": True}
    victim = browser("wechat")

    response = victim.get(attackers_callback())

    assert response.status_code == 200 and b"Continue with WeChat" in response.content
    assert logged_in_as(victim) is None


@pytest.mark.parametrize("agent", AGENTS)
def test_disguised_login_link_ends_logged_in_as_the_victim_herself(fake_wechat, agent):
    """The attacker's callback hidden in ``next`` of an ordinary login link of the site."""
    link = attackers_callback()
    victim = browser(agent)
    disguised = "/wechat/login/?" + urlencode({"next": "http://testserver" + link})

    landed = victim.get(authorize(victim, "o_victim", start=disguised))

    assert (landed.status_code, landed["Location"]) == (302, "/")  # next dropped
    assert logged_in_as(victim) == "o_victim"
    assert fake_wechat.exchange_calls(code_of(link)) == 0


@pytest.mark.parametrize(
    "next_url",
    [
        "/wechat/callback/?next=/",
        "/wechat/callback",
        "/page/?code=abc&state=xyz",
        "/x/?state=1",
        "/wechat/callback/%3Fcode%3Dabc",
        "http://testserver/wechat/callback/?code=a&state=b",
        "/page/%3Fcode%3Dabc%26state%3Dxyz",
    ],
)
def test_a_next_that_leads_into_a_callback_is_dropped(fake_wechat, next_url):
    login = browser().get("/wechat/login/?" + urlencode({"next": next_url}))

    redirect_uri = parse_qs(urlsplit(login["Location"]).query)["redirect_uri"][0]
    assert parse_qs(urlsplit(redirect_uri).query)["next"] == ["/"]


# -- 2. a leaked callback URL -----------------------------------------------------------------


@pytest.mark.parametrize("agent", AGENTS)
def test_victims_callback_url_opened_by_another_browser_logs_nobody_in(fake_wechat, agent):
    victim = browser("wechat")
    callback = authorize(victim, "o_victim")
    assert victim.get(callback).status_code == 302
    thief = browser(agent)

    stolen = thief.get(callback + RESENT)

    assert logged_in_as(thief) is None
    assert fake_wechat.exchange_calls(code_of(callback)) == 1
    if agent == "desktop":
        assert stolen.status_code == 400
    else:  # unbound, so allowed to try: the replay is refused, the thief's own login restarts
        assert stolen.status_code == 302 and stolen["Location"].startswith(fake_wechat.authorize_url)


def test_victims_callback_url_with_a_cookie_of_the_thieves_own_is_refused(fake_wechat):
    victim = browser("wechat")
    callback = authorize(victim, "o_victim")
    victim.get(callback)
    thief = browser("wechat")
    thief.get("/wechat/login/")  # a binding cookie of the thief's own

    assert thief.get(callback).status_code == 400
    assert logged_in_as(thief) is None


def test_victims_code_with_a_fresh_state_of_the_attackers_own_logs_nobody_in(fake_wechat):
    victim = browser("wechat")
    victims_callback = authorize(victim, "o_victim")
    victim.get(victims_callback)
    attacker = browser("wechat")
    own_callback = authorize(attacker, "o_attacker")  # a state bound to the attacker's browser

    spliced = attacker.get(with_param(own_callback, "code", code_of(victims_callback)))

    assert spliced.status_code == 302 and spliced["Location"].startswith(fake_wechat.authorize_url)
    assert logged_in_as(attacker) is None
    assert fake_wechat.exchange_calls(code_of(victims_callback)) == 1


# -- the other side: genuine logins ------------------------------------------------------------


def test_wechat_browser_that_drops_its_cookies_mid_login_still_logs_in(fake_wechat):
    person = browser("wechat")
    callback = authorize(person, "o_forgetful")
    person.cookies.clear()

    first = person.get(callback)
    resent = person.get(callback + RESENT)

    assert (first.status_code, first["Location"]) == (302, "/whoami/")
    assert (resent.status_code, resent["Location"]) == (302, "/whoami/")
    assert logged_in_as(person) == "o_forgetful"
    assert fake_wechat.exchange_calls(code_of(callback)) == 1


def test_a_desktop_browser_that_lost_the_binding_cookie_is_told_to_log_in_again(fake_wechat):
    person = browser("desktop")
    callback = authorize(person, "o_strict")
    person.cookies.pop(BINDING_COOKIE)

    response = person.get(callback)

    assert response.status_code == 400 and b"Log in again" in response.content
    assert fake_wechat.exchange_calls(code_of(callback)) == 0


def test_binding_cookie_is_http_only_lax_and_lives_as_long_as_a_state(fake_wechat, settings):
    response = browser().get("/wechat/login/", secure=True)
    cookie = response.cookies[BINDING_COOKIE]

    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Lax"
    assert cookie["path"] == "/" and int(cookie["max-age"]) == 600


def test_two_logins_started_in_two_tabs_both_complete(fake_wechat):
    person = browser("desktop")
    first = authorize(person, "o_tabs")
    second = authorize(person, "o_tabs")

    assert person.get(second).status_code == 302
    assert person.get(first).status_code == 302
    assert logged_in_as(person) == "o_tabs"


# -- 4. cost: a flood of made-up codes ---------------------------------------------------------


def test_one_login_attempt_brings_at_most_a_few_codes(fake_wechat, settings):
    flooder = browser()
    callback = authorize(flooder, "o_flood")
    answers = [flooder.get(with_param(callback, "code", f"madeup{n:026d}")).status_code for n in range(6)]

    assert answers.count(429) == 3  # MAX_CODES_PER_LOGIN = 3 made-up codes, then refused
    assert OAuthCodeUse.objects.count() == 3 and fake_wechat.total_exchange_calls() == 3
    assert flooder.get(callback).status_code == 429  # the attempt's genuine code too
    assert OAuthCodeUse.objects.count() == 3


def test_a_flood_of_fresh_states_and_made_up_codes_costs_a_bounded_number_of_calls(fake_wechat, settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "GARBAGE_BUDGET": 5}
    flooder = browser()
    answers = []
    for n in range(12):
        callback = authorize(flooder, f"o_flood{n}")
        answers.append(flooder.get(with_param(callback, "code", f"madeup{n:026d}")).status_code)

    assert answers[:5] == [302] * 5  # each rejected code restarts the login once
    assert answers[5:] == [429] * 7
    assert fake_wechat.total_exchange_calls() == 5 and OAuthCodeUse.objects.count() == 5
    refused = flooder.get(with_param(callback, "code", "madeup" + "9" * 26))
    assert refused.status_code == 429 and refused["Retry-After"] == "60"
    # Someone behind another address logs in meanwhile.
    other = Client(HTTP_USER_AGENT=WECHAT_USER_AGENT, REMOTE_ADDR="10.1.2.3")
    assert other.get(authorize(other, "o_neighbour")).status_code == 302


def test_429_page_speaks_simplified_chinese(fake_wechat, settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "GARBAGE_BUDGET": 0}
    flooder = browser()

    response = flooder.get(authorize(flooder, "o_zh"), HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert response.status_code == 429
    assert "登录尝试过多" in response.content.decode()


def test_successful_logins_never_use_up_the_budget(fake_wechat, settings):
    """Thousands of people behind one carrier-grade NAT address: only rejected codes count."""
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "GARBAGE_BUDGET": 1}
    for n in range(8):
        person = browser("wechat")
        assert person.get(authorize(person, f"o_nat{n}")).status_code == 302
    assert get_user_model().objects.count() == 8


# -- 8, 9: the middleware's responses; LINK_USERS = False --------------------------------------


def test_every_middleware_response_is_uncached_and_sends_no_referrer(fake_wechat):
    person = browser()
    callback = authorize(person, "o_page", start="/page/login/")
    broken = authorize(person, "o_page", start="/page/login/") + "&code=again"

    for response in (person.get(callback), person.get(broken)):
        assert response.status_code == 302
        assert response["Referrer-Policy"] == "no-referrer"
        assert "no-store" in response["Cache-Control"]
        assert "code=" not in response["Location"]
    page = person.get(person.get(broken)["Location"])
    assert page.status_code == 400 and b"not valid" in page.content


def test_without_django_users_a_second_person_does_not_inherit_the_session(fake_wechat, settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "LINK_USERS": False}
    shared = browser("wechat")
    shared.get(authorize(shared, "o_first"))
    session = shared.session
    session["cart"] = ["first person's"]
    session.save()

    shared.get(authorize(shared, "o_second"))

    assert logged_in_as(shared) == "o_second"
    assert "cart" not in shared.session
    assert not WeChatAccount.objects.exists()


def test_without_django_users_the_same_person_keeps_the_session(fake_wechat, settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "LINK_USERS": False}
    person = browser("wechat")
    person.get(authorize(person, "o_same"))
    session = person.session
    session["cart"] = [1]
    session.save()

    person.get(authorize(person, "o_same"))

    assert person.session["cart"] == [1]
