"""python-social-auth: a site set up social-auth's way, first with social-core's WeChat backends,
then with the drop-in (``wechat_oauth.contrib.social``) swapped in.

Run with the social site's settings (tox env ``social62`` / ``social70``)::

    pytest --ds tests.social_site.settings_stock tests/test_contrib_social.py

The site (tests/social_site) is served by pytest-django's live server; browsers are
``requests`` sessions with WeChat's User-Agent that start a login the site's way (its login
page, a POST to ``social:begin``), pass the fake WeChat's authorize page and replay WeChat's
duplicate callbacks: the aborted-and-re-sent callback, 3 parallel copies, a refresh, Android's
two codes for one state. The stock backends must show the failures the issue measured (so the
test proves something); the drop-in must end every login logged in, with one exchange per
code and one user per openid. ``-s`` prints the rates.

Under other settings it is not collected at all (tests/conftest.py ``SITE_MODULES``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urldefrag, urlencode, urlsplit

import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections
from django.http import HttpResponse
from social_core.backends.utils import load_backends
from social_django.models import UserSocialAuth

from tests import concurrency
from tests.social_site import settings_dropin, settings_stock
from tests.social_site.fake_routes import rerouting
from wechat_oauth.models import OAuthCodeUse
from wechat_oauth.testing.wechat_client import (
    WECHAT_USER_AGENT,
    resend_params,
    send_and_abort,
)

pytestmark = pytest.mark.django_db(transaction=True)

MP_KEY, MP_SECRET = settings.SOCIAL_AUTH_WEIXINAPP_KEY, settings.SOCIAL_AUTH_WEIXINAPP_SECRET
WEB_KEY, WEB_SECRET = settings.SOCIAL_AUTH_WEIXIN_KEY, settings.SOCIAL_AUTH_WEIXIN_SECRET
#: Logins per duplicate pattern, each with its own openid.
LOGINS = 6
#: How long the fake WeChat takes to answer: duplicates arrive while the first is in flight.
LATENCY = 0.1
#: Where a completed login lands (the ``next`` of every login).
NEXT = "/whoami/"
ERROR_PAGE = "/login-error/"
PATTERNS = ("abort-and-resend", "3 parallel duplicates", "refresh of the callback", "two codes, one state")


# -- the site ------------------------------------------------------------------------------------


@dataclass
class Site:
    url: str
    fake: Any
    mode: str = ""

    def use(self, mode: str, settings_fixture: Any) -> None:
        """Serve the site with the stock backends or with the drop-in (its settings module's
        AUTHENTICATION_BACKENDS and SOCIAL_AUTH_PIPELINE), as a deploy of the change would."""
        module = {"stock": settings_stock, "dropin": settings_dropin}[mode]
        settings_fixture.AUTHENTICATION_BACKENDS = module.AUTHENTICATION_BACKENDS
        if hasattr(module, "SOCIAL_AUTH_PIPELINE"):
            settings_fixture.SOCIAL_AUTH_PIPELINE = module.SOCIAL_AUTH_PIPELINE
        elif hasattr(settings, "SOCIAL_AUTH_PIPELINE"):
            del settings_fixture.SOCIAL_AUTH_PIPELINE
        # social-core caches the backend classes by name; both modes name them alike.
        load_backends(settings.AUTHENTICATION_BACKENDS, force_load=True)
        self.mode = mode


@pytest.fixture
def site(
    fake_wechat: Any, live_server: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Site]:
    """The social-auth site on the live server, its two WeChat apps known to the fake WeChat.

    The stock backends are pointed at the fake the way social-auth allows (their URL
    settings); their userinfo URL is written in their code, so requests to WeChat's API host
    are sent to the fake (tests/social_site/fake_routes.py). The drop-in reads WECHAT_OAUTH,
    which the fake_wechat fixture points at the fake.
    """
    fake_wechat.add_app(MP_KEY, MP_SECRET)
    fake_wechat.add_app(WEB_KEY, WEB_SECRET)
    fake_wechat.set_latency(LATENCY)
    token_url = f"{fake_wechat.api_base_url}/sns/oauth2/access_token"
    settings.SOCIAL_AUTH_WEIXINAPP_AUTHORIZATION_URL = fake_wechat.authorize_url
    settings.SOCIAL_AUTH_WEIXINAPP_ACCESS_TOKEN_URL = token_url
    settings.SOCIAL_AUTH_WEIXIN_AUTHORIZATION_URL = fake_wechat.qrconnect_url
    settings.SOCIAL_AUTH_WEIXIN_ACCESS_TOKEN_URL = token_url
    monkeypatch.setattr(requests, "request", rerouting(requests.request, fake_wechat.api_base_url))
    yield Site(live_server.url, fake_wechat)
    load_backends(settings_stock.AUTHENTICATION_BACKENDS, force_load=True)


@pytest.fixture
def stock(site: Site, settings: Any) -> Site:
    site.use("stock", settings)
    return site


@pytest.fixture
def dropin(site: Site, settings: Any) -> Site:
    site.use("dropin", settings)
    return site


# -- a browser -----------------------------------------------------------------------------------


_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Browser:
    """One phone's WeChat browser: a cookie jar and WeChat's User-Agent."""

    def __init__(self, site: Site, cookies: Any = None, *, user_agent: str = WECHAT_USER_AGENT) -> None:
        self.site = site
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        if cookies is not None:
            self.session.cookies.update(cookies)

    def copy(self) -> Browser:
        """Another request of the same tab (the same cookies, at that moment)."""
        return Browser(self.site, self.session.cookies, user_agent=str(self.session.headers["User-Agent"]))

    def get(self, url: str, **params: str) -> requests.Response:
        if not url.startswith("http"):
            url = self.site.url + url
        return self.session.get(url, params=params or None, allow_redirects=False, timeout=20)

    def start_login(self, backend: str = "weixinapp", next_url: str = NEXT) -> str:
        """The site's way: its login page, then the POST to social:begin; where that sends the
        browser (WeChat's authorize or qrconnect URL)."""
        page = self.get("/login/", next=next_url)
        token = _CSRF.search(page.text)
        assert page.status_code == 200 and token, page.text[:300]
        response = self.session.post(
            f"{self.site.url}/login/{backend}/",
            data={"csrfmiddlewaretoken": token.group(1), "next": next_url},
            allow_redirects=False,
            timeout=20,
        )
        assert response.status_code == 302, (response.status_code, response.text[:300])
        return response.headers["Location"]

    def authorize(self, authorize_url: str, **user: str) -> str:
        """WeChat's answer to its authorize page: the callback URL with a fresh code.
        ``user``: the fake's shortcut, ``openid=`` or ``person=`` (+ ``snapshot="1"``)."""
        url = urldefrag(authorize_url).url
        extra = urlencode({f"fake_{name}": value for name, value in user.items()})
        response = self.session.get(f"{url}&{extra}", allow_redirects=False, timeout=20)
        assert response.status_code == 302, (response.status_code, response.text[:300])
        return response.headers["Location"]

    def whoami(self) -> dict[str, Any]:
        return self.get("/whoami/").json()

    def logged_in_as(self, openid: str) -> bool:
        seen = self.whoami()
        return any(account["uid"] == openid for account in seen.get("accounts", []))


def code_of(url: str) -> str:
    return dict(parse_qsl(urlsplit(url).query))["code"]


def landed(response: requests.Response) -> bool:
    """The login ended where it was meant to: a redirect to its ``next``."""
    return response.status_code == 302 and response.headers.get("Location") == NEXT


def is_error(response: requests.Response) -> bool:
    """What a user sees as a failed login: an error status, or social-auth's error page."""
    return response.status_code >= 400 or response.headers.get("Location", "").startswith(ERROR_PAGE)


def run_together(calls: list[Callable[[], Any]]) -> list[Any]:
    outcomes = concurrency.run_together(calls, timeout=30)
    for kind, value in outcomes:
        if kind == "error":
            raise value
    return [value for _, value in outcomes]


# -- the duplicate patterns ----------------------------------------------------------------------


@dataclass
class Tally:
    """What the users saw in one pattern: logins that ended logged in, logins during which
    some response was an error, the codes, the openids."""

    pattern: str
    mode: str
    logins: int = 0
    ok: int = 0
    saw_error: int = 0
    codes: list[str] = field(default_factory=list)
    openids: list[str] = field(default_factory=list)

    def record(self, ok: bool, responses: list[requests.Response]) -> None:
        self.logins += 1
        self.ok += ok
        self.saw_error += any(is_error(response) for response in responses)

    @property
    def failed(self) -> int:
        return self.logins - self.ok

    def line(self) -> str:
        return (
            f"[social] {self.mode:6} {self.pattern:24} failed {self.failed}/{self.logins}"
            f" ({100 * self.failed / self.logins:.0f} %), saw an error"
            f" {self.saw_error}/{self.logins} ({100 * self.saw_error / self.logins:.0f} %)"
        )


def abort_and_resend(site: Site, tally: Tally, openid: str) -> None:
    """WeChat's client sends the callback, hangs up, and ~20 ms later sends it again with
    uin/key/pass_ticket: only the re-sent request's answer reaches the browser."""
    browser = Browser(site)
    callback = browser.authorize(browser.start_login(), openid=openid)
    tally.codes.append(code_of(callback))
    send_and_abort(callback, browser.session.cookies)
    time.sleep(0.02)
    response = browser.get(f"{callback}&{resend_params()}")
    tally.record(landed(response) and browser.logged_in_as(openid), [response])


def parallel_duplicates(site: Site, tally: Tally, openid: str, copies: int = 3) -> None:
    """``copies`` copies of one callback at once from one browser: each must end logged in."""
    browser = Browser(site)
    callback = browser.authorize(browser.start_login(), openid=openid)
    tally.codes.append(code_of(callback))
    tabs = [browser.copy() for _ in range(copies)]
    responses = run_together([partial(tab.get, callback) for tab in tabs])
    tally.record(
        all(
            landed(response) and tab.logged_in_as(openid)
            for tab, response in zip(tabs, responses, strict=True)
        ),
        responses,
    )


def refresh(site: Site, tally: Tally, openid: str) -> None:
    """A plain login, then the callback page refreshed (its URL still carries the code)."""
    browser = Browser(site)
    callback = browser.authorize(browser.start_login(), openid=openid)
    tally.codes.append(code_of(callback))
    first = browser.get(callback)
    assert landed(first), (first.status_code, first.headers.get("Location"))
    again = browser.get(callback)
    tally.record(landed(again) and browser.logged_in_as(openid), [again])


def two_codes_one_state(site: Site, tally: Tally, openid: str) -> None:
    """Android: two callbacks of one login, different codes, the same state, at once."""
    browser = Browser(site)
    authorize_url = browser.start_login()
    callbacks = [browser.authorize(authorize_url, openid=openid) for _ in range(2)]
    assert (
        dict(parse_qsl(urlsplit(callbacks[0]).query))["state"]
        == dict(parse_qsl(urlsplit(callbacks[1]).query))["state"]
    )
    tally.codes += [code_of(callback) for callback in callbacks]
    tabs = [browser.copy() for _ in callbacks]
    responses = run_together(
        [partial(tab.get, callback) for tab, callback in zip(tabs, callbacks, strict=True)]
    )
    tally.record(
        all(
            landed(response) and tab.logged_in_as(openid)
            for tab, response in zip(tabs, responses, strict=True)
        ),
        responses,
    )


RUNS = {
    "abort-and-resend": abort_and_resend,
    "3 parallel duplicates": parallel_duplicates,
    "refresh of the callback": refresh,
    "two codes, one state": two_codes_one_state,
}


def run_pattern(site: Site, pattern: str, logins: int = LOGINS) -> Tally:
    tally = Tally(pattern, site.mode)
    for i in range(logins):
        openid = f"o_social_{site.mode}_{pattern.split()[0]}_{i}"
        tally.openids.append(openid)
        RUNS[pattern](site, tally, openid)
    print("\n" + tally.line())
    return tally


def users_per_openid(openids: list[str], provider: str = "weixinapp") -> dict[str, int]:
    return {
        openid: UserSocialAuth.objects.filter(provider=provider, uid=openid).values("user").distinct().count()
        for openid in openids
    }


# -- the stock backends fail ---------------------------------------------------------------------


#: What the stock backend does to each pattern, as the issue measured it: the share of logins
#: that failed (abort-and-resend, refresh) or during which a response was an error (parallel
#: duplicates, two codes). Abort-and-resend is "at least", the others exactly all.
STOCK_FAILURES = {
    "abort-and-resend": ("failed", 0.3),
    "3 parallel duplicates": ("saw_error", 1.0),
    "refresh of the callback": ("failed", 1.0),
    "two codes, one state": ("saw_error", 1.0),
}


@pytest.mark.parametrize("pattern", PATTERNS)
def test_stock_weixinapp_fails_duplicate_callbacks(stock: Site, pattern: str) -> None:
    tally = run_pattern(stock, pattern)
    measure, at_least = STOCK_FAILURES[pattern]
    assert getattr(tally, measure) >= at_least * tally.logins, tally.line()
    # It never spends a code twice (the nonce), it fails the duplicate instead.
    assert all(stock.fake.exchange_calls(code) <= 1 for code in tally.codes)


def test_stock_weixinapp_breaks_snsapi_base(stock: Site, settings: Any) -> None:
    """It always calls userinfo, which WeChat refuses under snsapi_base (48001)."""
    settings.SOCIAL_AUTH_WEIXINAPP_SCOPE = ["snsapi_base"]
    browser = Browser(stock)
    response = browser.get(browser.authorize(browser.start_login(), openid="o_social_base"))
    assert is_error(response)
    assert browser.whoami()["user"] is None


def test_stock_weixinapp_creates_users_for_snapshot_users(stock: Site) -> None:
    browser = Browser(stock)
    response = browser.get(browser.authorize(browser.start_login(), openid="o_snap", snapshot="1"))
    assert landed(response)
    assert UserSocialAuth.objects.filter(provider="weixinapp").count() == 1


# -- the drop-in logs every duplicate in ---------------------------------------------------------


@pytest.mark.parametrize("pattern", PATTERNS)
def test_dropin_logs_in_every_duplicate_pattern(dropin: Site, pattern: str) -> None:
    tally = run_pattern(dropin, pattern)
    assert tally.ok == tally.logins, tally.line()
    assert tally.saw_error == 0, tally.line()
    exchanges = {code: dropin.fake.exchange_calls(code) for code in tally.codes}
    assert all(count == 1 for count in exchanges.values()), exchanges
    assert all(count == 1 for count in users_per_openid(tally.openids).values())
    assert get_user_model().objects.count() == len(tally.openids), "orphan users"
    assert OAuthCodeUse.objects.count() == len(tally.codes)


def test_dropin_sends_a_late_duplicate_on_to_next(dropin: Site) -> None:
    """A duplicate that arrives after the first request of its login completed carries the
    session cookie of before the login, a session Django's login() replaced (and deleted), so
    social-auth's ``next`` is gone with it: it is logged in and still sent to the login's
    ``next``, not to LOGIN_REDIRECT_URL (found by the storm's 20 and 50 parallel duplicates,
    ``python -m bench.storm --library social``)."""
    browser = Browser(dropin)
    callback = browser.authorize(browser.start_login(), openid="o_social_late")
    late = browser.copy()  # its cookies as they were when the duplicates left
    assert landed(browser.get(callback))
    response = late.get(callback)
    assert landed(response), (response.status_code, response.headers.get("Location"))
    assert late.logged_in_as("o_social_late")
    assert dropin.fake.exchange_calls(code_of(callback)) == 1
    assert users_per_openid(["o_social_late"]) == {"o_social_late": 1}


def test_dropin_authorize_url_is_wechats_exact_one(dropin: Site) -> None:
    """WeChat's exact parameter order, connect_redirect=1, #wechat_redirect, one mp scope
    (social-core's default snsapi_login dropped), and a state of [A-Za-z0-9]."""
    url = Browser(dropin).start_login()
    base, query_and_fragment = url.split("?", 1)
    assert base == dropin.fake.authorize_url
    names = [name for name, _ in parse_qsl(urlsplit(url).query)]
    assert names == ["appid", "redirect_uri", "response_type", "scope", "state", "connect_redirect"]
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["appid"] == MP_KEY and query["scope"] == "snsapi_userinfo"
    assert query["redirect_uri"] == f"{dropin.url}/complete/weixinapp/"
    assert re.fullmatch(r"[A-Za-z0-9]{1,128}", query["state"])
    assert query_and_fragment.endswith("#wechat_redirect")


def test_dropin_website_login_goes_to_qrconnect(dropin: Site) -> None:
    browser = Browser(dropin, user_agent="Mozilla/5.0 (Macintosh) Chrome/120")
    url = browser.start_login("weixin")
    assert url.startswith(dropin.fake.qrconnect_url + "?appid=" + WEB_KEY + "&")
    assert "&scope=snsapi_login&" in url and url.endswith("#wechat_redirect")
    response = browser.get(browser.authorize(url, openid="o_social_qr"))
    assert landed(response)
    assert browser.logged_in_as("o_social_qr")
    assert browser.whoami()["accounts"] == [{"provider": "weixin", "uid": "o_social_qr"}]


def test_dropin_snsapi_base_logs_in_without_userinfo(dropin: Site, settings: Any) -> None:
    settings.SOCIAL_AUTH_WEIXINAPP_SCOPE = ["snsapi_base"]
    browser = Browser(dropin)
    authorize_url = browser.start_login()
    assert dict(parse_qsl(urlsplit(authorize_url).query))["scope"] == "snsapi_base"
    response = browser.get(browser.authorize(authorize_url, openid="o_social_base"))
    assert landed(response)
    assert browser.logged_in_as("o_social_base")
    assert dropin.fake.calls("userinfo") == 0


def test_dropin_fetches_the_profile_once_for_every_duplicate(dropin: Site) -> None:
    tally = Tally("profile", "dropin")
    parallel_duplicates(dropin, tally, "o_social_profile")
    assert tally.ok == 1
    assert dropin.fake.calls("userinfo") == 1
    social = UserSocialAuth.objects.get(provider="weixinapp", uid="o_social_profile")
    assert social.extra_data["username"]  # the nickname, as the stock backend keeps it


def test_dropin_refuses_snapshot_users_with_the_snapshot_page(dropin: Site) -> None:
    browser = Browser(dropin)
    response = browser.get(browser.authorize(browser.start_login(), openid="o_snap", snapshot="1"))
    assert response.status_code == 200 and "使用完整服务" in response.text
    assert not UserSocialAuth.objects.exists() and not get_user_model().objects.exists()
    assert browser.whoami()["user"] is None


def test_dropin_refuses_a_callback_from_another_browser(dropin: Site) -> None:
    """A leaked callback URL opened in another browser (with its own binding cookie) is not
    that login: a 400 page, and the victim's code is spent by nobody."""
    victim = Browser(dropin)
    callback = victim.authorize(victim.start_login(), openid="o_social_victim")
    thief = Browser(dropin)
    thief.start_login()  # a binding cookie of its own
    response = thief.get(callback)
    assert response.status_code == 400
    assert thief.whoami()["user"] is None
    assert dropin.fake.exchange_calls(code_of(callback)) == 0
    assert landed(victim.get(callback)) and victim.logged_in_as("o_social_victim")


def test_dropin_replay_of_a_duplicate_needs_the_same_browser(dropin: Site) -> None:
    """The first request logged in; the same callback URL from a browser without the cookies
    (WeChat's User-Agent, so unbound is allowed) is not given that login: it starts its own."""
    browser = Browser(dropin)
    callback = browser.authorize(browser.start_login(), openid="o_social_first")
    assert landed(browser.get(callback))
    stranger = Browser(dropin)
    response = stranger.get(callback)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(dropin.fake.authorize_url + "?")
    assert stranger.whoami()["user"] is None
    assert dropin.fake.exchange_calls(code_of(callback)) == 1


def test_dropin_unbound_callback_never_replaces_a_logged_in_user(dropin: Site) -> None:
    """A logged-in browser that opens someone else's callback link without the binding cookie
    stays who it is, and that WeChat account is not attached to it."""
    alice = Browser(dropin)
    assert landed(alice.get(alice.authorize(alice.start_login(), openid="o_social_alice")))
    mallory = Browser(dropin)
    link = mallory.authorize(mallory.start_login(), openid="o_social_mallory")
    # Alice's browser has a session but (as WeChat's browser may) no binding cookie any more.
    alice.session.cookies.set("wechat_oauth_binding", None)
    response = alice.get(link)
    assert response.status_code == 302 and response.headers["Location"] == NEXT
    assert alice.whoami()["accounts"] == [{"provider": "weixinapp", "uid": "o_social_alice"}]
    assert not UserSocialAuth.objects.filter(uid="o_social_mallory").exists()


def test_dropin_links_a_persons_apps_by_unionid(dropin: Site) -> None:
    """One person through the Official Account (in WeChat) and the website app (QR): two
    openids, one unionid, one user with both associations."""
    phone = Browser(dropin)
    assert landed(phone.get(phone.authorize(phone.start_login(), person="social-alice")))
    desktop = Browser(dropin, user_agent="Mozilla/5.0 (Macintosh) Chrome/120")
    assert landed(desktop.get(desktop.authorize(desktop.start_login("weixin"), person="social-alice")))
    mp, web = phone.whoami(), desktop.whoami()
    assert mp["user_id"] == web["user_id"]
    assert sorted(account["provider"] for account in web["accounts"]) == ["weixin", "weixinapp"]
    assert len({account["uid"] for account in web["accounts"]}) == 2  # uid: each app's openid
    assert get_user_model().objects.count() == 1


def test_accounts_of_the_stock_backend_log_in_to_the_same_user_after_the_swap(
    site: Site, settings: Any
) -> None:
    site.use("stock", settings)
    before = Browser(site)
    assert landed(before.get(before.authorize(before.start_login(), person="social-bob")))
    stock_social = UserSocialAuth.objects.get(provider="weixinapp")
    site.use("dropin", settings)
    after = Browser(site)
    assert landed(after.get(after.authorize(after.start_login(), person="social-bob")))
    assert after.whoami()["user_id"] == stock_social.user_id
    assert UserSocialAuth.objects.count() == 1 and get_user_model().objects.count() == 1
    social = UserSocialAuth.objects.get()
    assert social.uid == stock_social.uid
    assert social.extra_data.get("unionid")  # what the unionid step links by from now on


def test_dropin_pages_for_wechat_failures(dropin: Site) -> None:
    """WeChat failing is this app's readable 502 page with a *Log in again* to the site's
    login page, not a 500; consent refused a 400."""
    browser = Browser(dropin)
    callback = browser.authorize(browser.start_login(), openid="o_social_busy")
    dropin.fake.add_fault("access_token", errcode=-1)
    response = browser.get(callback)
    assert response.status_code == 502
    assert 'href="/login/?next=%2Fwhoami%2F"' in response.text
    refused = Browser(dropin)
    state = dict(parse_qsl(urlsplit(refused.start_login()).query))["state"]
    assert refused.get("/complete/weixinapp/", state=state).status_code == 400


def test_dropin_site_passes_the_system_checks(dropin: Site, settings: Any) -> None:
    """A site whose WeChat logins all go through the drop-in needs neither APP_ID nor
    WeChatBackend nor this app's URLs."""
    from wechat_oauth import checks

    settings.WECHAT_OAUTH = {
        key: value for key, value in settings.WECHAT_OAUTH.items() if key not in ("APP_ID", "APP_SECRET")
    }
    messages = [
        *checks.check_settings(),
        *checks.check_middleware_and_backend(),
        *checks.check_site_integration(),
    ]
    assert [message.id for message in messages if message.is_serious()] == []
    settings.AUTHENTICATION_BACKENDS = settings_stock.AUTHENTICATION_BACKENDS
    assert {"wechat_oauth.E001", "wechat_oauth.E004", "wechat_oauth.E008"} <= {
        message.id
        for message in [
            *checks.check_settings(),
            *checks.check_middleware_and_backend(),
            *checks.check_site_integration(),
        ]
    }


def test_atomic_requests_is_a_readable_503(dropin: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """social_django's complete view is not marked non-atomic: under ATOMIC_REQUESTS the
    exchange could not commit on its own, and the callback says so (503, logged) before the
    code is spent."""
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", True)
    browser = Browser(dropin)
    response = browser.get(browser.authorize(browser.start_login(), openid="o_social_atomic"))
    assert response.status_code == 503
    assert OAuthCodeUse.objects.count() == 0


# -- what the drop-in assumes of social-core -----------------------------------------------------


def test_upstream_shape(rf: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each assumption of wechat_oauth.contrib.social.upstream, against the installed
    social-core and social-auth-app-django: if one fails, upstream changed its shape."""
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.db import SessionStore
    from social_core.actions import do_complete
    from social_django.utils import load_strategy

    from wechat_oauth.contrib.social.upstream import (
        STATE_REFUSALS,
        StockWeixinOAuth2,
        StockWeixinOAuth2APP,
        django_request,
    )

    def strategy_for(**query: str) -> Any:
        request = rf.get("/complete/weixinapp/", query)
        request.session = SessionStore()
        request.user = AnonymousUser()
        strategy = load_strategy(request)
        assert django_request(strategy) is request, "the strategy keeps the request as .request"
        return strategy

    def calls_of_auth_complete(backend: Any) -> list[Any]:
        calls: list[Any] = []
        monkeypatch.setattr(backend, "validate_state", lambda: calls.append("validate_state") or "s")
        monkeypatch.setattr(
            backend,
            "request_access_token",
            lambda *a, **k: calls.append("request_access_token") or {"access_token": "t", "openid": "o"},
        )
        monkeypatch.setattr(
            backend,
            "do_auth",
            lambda token, *a, **k: calls.append(("do_auth", token, k["response"]["openid"])) or "user",
        )
        assert backend.auth_complete() == "user"
        return calls

    for stock_class in (StockWeixinOAuth2APP, StockWeixinOAuth2):
        backend = stock_class(strategy_for(code="c", state="s"), redirect_uri="/complete/x/")
        assert calls_of_auth_complete(backend) == [
            "validate_state",
            "request_access_token",
            ("do_auth", "t", "o"),
        ], f"{stock_class.__name__}.auth_complete no longer exchanges in request_access_token"

    strategy = strategy_for()
    backend = StockWeixinOAuth2APP(strategy, redirect_uri="/complete/weixinapp/")
    monkeypatch.setattr(backend, "state_token", lambda: "OurSignedState0123")
    assert backend.get_or_create_state() == "OurSignedState0123", (
        "get_or_create_state no longer takes its state from state_token()"
    )

    unvouched = StockWeixinOAuth2APP(
        strategy_for(code="c", state="Unknown0"), redirect_uri="/complete/weixinapp/"
    )
    with pytest.raises(STATE_REFUSALS):
        unvouched.validate_state()

    answering = StockWeixinOAuth2APP(strategy_for(code="c", state="s"), redirect_uri="/c/")
    page = HttpResponse("a page")
    monkeypatch.setattr(answering, "complete", lambda *a, **k: page)
    assert do_complete(answering, lambda *a: None) is page, (
        "do_complete no longer hands a response from backend.complete() to the browser"
    )
    assert issubclass(StockWeixinOAuth2APP, StockWeixinOAuth2)
