"""The django-allauth drop-in (``wechat_oauth.contrib.allauth``) inside the allauth site's own
process: its URLs, its state and binding checks, its kinds of app, snapshot users, unionid
linking, its checks and what it relies on in allauth. The stock provider against the drop-in,
under WeChat's duplicate callbacks, is tests/test_contrib_allauth_sites.py.

Run under the allauth site's settings (``tox -e allauth-newest``, or
``pytest --ds tests.allauth_site.settings_dropin tests/test_contrib_allauth.py``); under other
settings it is not collected at all (tests/conftest.py ``SITE_MODULES``).
"""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
import requests
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from django.contrib.auth import get_user_model
from django.contrib.sites.models import Site
from django.test import Client

from tests.concurrency import run_together
from wechat_oauth.contrib.allauth import checks as drop_in_checks
from wechat_oauth.contrib.allauth import compat
from wechat_oauth.contrib.allauth.client import client_for
from wechat_oauth.models import OAuthCodeUse, WeChatUnion
from wechat_oauth.testing import openid_for, unionid_for
from wechat_oauth.testing.wechat_client import WECHAT_USER_AGENT

pytestmark = pytest.mark.django_db(transaction=True)

#: A desktop browser (keeps its cookies; not one of UNBOUND_USER_AGENTS).
DESKTOP_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
#: The Official Account beside the website app (provider weixin_mp).
MP_APP_ID = "wxfakeallauthmp001"


def social_app(provider: str, app_id: str, secret: str, **app_settings) -> SocialApp:
    app = SocialApp.objects.create(
        provider=provider, name=provider, client_id=app_id, secret=secret, settings=app_settings
    )
    app.sites.add(Site.objects.get_current())
    return app


@pytest.fixture
def site(fake_wechat, settings):
    """The allauth site's providers on the fake WeChat: ``weixin`` an Official Account
    (snsapi_userinfo, as in tests/allauth_site/settings.py), its SocialApp in the database."""
    settings.SOCIALACCOUNT_PROVIDERS = {
        "weixin": {
            "AUTHORIZE_URL": fake_wechat.authorize_url,
            "SCOPE": ["snsapi_userinfo"],
            "API_BASE_URL": fake_wechat.api_base_url,
        },
        "weixin_mp": {"AUTHORIZE_URL": fake_wechat.authorize_url, "API_BASE_URL": fake_wechat.api_base_url},
    }
    social_app("weixin", fake_wechat.app_id, fake_wechat.app_secret)
    return fake_wechat


@pytest.fixture
def website_and_mp(fake_wechat, settings):
    """``weixin`` a website app (allauth's default snsapi_login, its AUTHORIZE_URL the QR page)
    and ``weixin_mp`` an Official Account (snsapi_base), one Open Platform account."""
    settings.SOCIALACCOUNT_PROVIDERS = {
        "weixin": {"AUTHORIZE_URL": fake_wechat.qrconnect_url, "API_BASE_URL": fake_wechat.api_base_url},
        "weixin_mp": {"AUTHORIZE_URL": fake_wechat.authorize_url, "API_BASE_URL": fake_wechat.api_base_url},
    }
    social_app("weixin", fake_wechat.app_id, fake_wechat.app_secret)
    social_app("weixin_mp", MP_APP_ID, fake_wechat.add_app(MP_APP_ID))
    return fake_wechat


def link_by_unionid(settings) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {
        name: {**conf, "LINK_BY_UNIONID": True} for name, conf in settings.SOCIALACCOUNT_PROVIDERS.items()
    }


class Phone:
    """One browser (WeChat's, unless told otherwise) on the allauth site, in this process."""

    def __init__(self, user_agent: str = WECHAT_USER_AGENT) -> None:
        self.client = Client(HTTP_USER_AGENT=user_agent)

    def start(self, provider: str = "weixin", **params: str) -> str:
        """allauth's login view (its confirmation form POSTed): the URL it sends us to."""
        query = urlencode({"next": "/whoami/", **params})
        response = self.client.post(f"/accounts/{provider}/login/?{query}")
        assert response.status_code == 302, response.content
        return response["Location"]

    def authorize(self, authorize_url: str, person: str, **fake: str) -> str:
        """WeChat's answer (the fake's shortcut for ``person``): the callback path and query."""
        url = authorize_url.split("#", 1)[0]
        answer = requests.get(
            f"{url}&{urlencode({'fake_person': person, **fake})}", allow_redirects=False, timeout=5
        )
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"].replace("http://testserver", "")

    def get(self, path: str):
        return self.client.get(path)

    def log_in(self, person: str, provider: str = "weixin") -> str:
        callback = self.authorize(self.start(provider), person)
        response = self.get(callback)
        assert response.status_code == 302 and response["Location"] == "/whoami/", response.content
        return callback

    def whoami(self) -> dict:
        return self.get("/whoami/").json()


def code_of(callback: str) -> str:
    return parse_qs(urlsplit(callback).query)["code"][0]


def accounts_of(openid: str) -> list[tuple[str, str, int]]:
    return list(SocialAccount.objects.filter(uid=openid).values_list("provider", "uid", "user_id"))


# -- The login start -------------------------------------------------------------------------------


def test_in_wechat_authorize_url_has_wechats_parameter_order_and_wechat_redirect(site):
    location = Phone().start()
    base, query = location.split("?", 1)
    assert base == site.authorize_url
    names = [pair.split("=", 1)[0] for pair in query.split("#", 1)[0].split("&")]
    assert names == ["appid", "redirect_uri", "response_type", "scope", "state", "connect_redirect"]
    assert location.endswith("&connect_redirect=1#wechat_redirect")
    query = parse_qs(urlsplit(location).query)
    assert query["appid"] == [site.app_id] and query["scope"] == ["snsapi_userinfo"]
    assert query["redirect_uri"] == ["http://testserver/accounts/weixin/login/callback/?next=%2Fwhoami%2F"]
    assert len(query["state"][0]) == 74 and query["state"][0].isalnum()


def test_website_app_goes_to_qrconnect_with_snsapi_login(website_and_mp):
    location = Phone(DESKTOP_USER_AGENT).start("weixin")
    assert location.startswith(website_and_mp.qrconnect_url + "?appid=" + website_and_mp.app_id)
    assert "&scope=snsapi_login&state=" in location and location.endswith("#wechat_redirect")


def test_login_start_sets_the_binding_cookie_and_writes_no_session(site):
    phone = Phone()
    phone.start()
    assert phone.client.cookies["wechat_oauth_binding"]["httponly"]
    assert "sessionid" not in phone.client.cookies  # the state lives in the URL, signed


def test_templates_provider_login_url_still_names_weixin(site):
    page = Phone().get("/").content.decode()
    assert 'id="login-weixin" href="/accounts/weixin/login/?next=%2Fwhoami%2F"' in page


def test_a_next_that_leads_into_a_callback_is_dropped(site):
    hidden = "/accounts/weixin/login/callback/?code=attacker&state=x"
    location = Phone().start(next=hidden)
    redirect_uri = parse_qs(urlsplit(location).query)["redirect_uri"][0]
    assert redirect_uri == "http://testserver/accounts/weixin/login/callback/"


# -- The callback ------------------------------------------------------------------------------


def test_logs_in_with_one_exchange_and_allauths_social_account(site):
    phone = Phone()
    callback = phone.log_in("alice")
    me = phone.whoami()
    openid = openid_for(site.app_id, "alice")
    assert me["accounts"] == [["weixin", openid]] and me["user"] == "alice"
    assert site.exchange_calls(code_of(callback)) == 1 and site.calls("userinfo") == 1
    account = SocialAccount.objects.get(uid=openid)
    assert account.extra_data["nickname"] == "alice"
    assert account.extra_data["unionid"] == unionid_for("alice")


def test_callback_without_the_cookie_from_wechats_browser_still_logs_in(site):
    callback = Phone().authorize(Phone().start(), "bob")  # cookies of the start are dropped
    response = Client(HTTP_USER_AGENT=WECHAT_USER_AGENT).get(callback)
    assert response.status_code == 302 and response["Location"] == "/whoami/"


def test_callback_with_another_browsers_binding_cookie_is_refused_before_the_exchange(site):
    callback = Phone().authorize(Phone().start(), "mallory")
    victim = Phone()
    victim.start()  # the victim's own binding cookie
    response = victim.get(callback)
    assert response.status_code == 400 and b"another browser" in response.content
    assert site.exchange_calls(code_of(callback)) == 0
    assert b"/accounts/weixin/login/?next=%2Fwhoami%2F" in response.content  # Log in again


def test_callback_without_the_cookie_from_a_desktop_browser_is_refused(site):
    callback = Phone(DESKTOP_USER_AGENT).authorize(Phone(DESKTOP_USER_AGENT).start(), "carol")
    response = Client(HTTP_USER_AGENT=DESKTOP_USER_AGENT).get(callback)
    assert response.status_code == 400
    assert site.exchange_calls(code_of(callback)) == 0


def test_unbound_callback_never_silently_replaces_the_logged_in_user(site):
    victim = Phone()
    victim.log_in("victim")
    attackers_link = Phone().authorize(Phone().start(), "attacker")
    victim.client.cookies.pop("wechat_oauth_binding")  # expired, or never this login's
    asked = victim.get(attackers_link)
    assert asked.status_code == 200 and b"Continue with WeChat" in asked.content
    assert victim.whoami()["user"] == "victim"
    stayed = victim.client.post("/accounts/weixin/login/confirm/", {"action": "stay"})
    assert stayed.status_code == 302 and victim.whoami()["user"] == "victim"
    assert not accounts_of(openid_for(site.app_id, "attacker"))


def test_unbound_callback_asks_and_continue_logs_in_as_the_wechat_user(site):
    phone = Phone()
    phone.log_in("first")
    other = Phone().authorize(Phone().start(), "second")
    phone.client.cookies.pop("wechat_oauth_binding")
    assert phone.get(other).status_code == 200
    done = phone.client.post("/accounts/weixin/login/confirm/", {"action": "continue"})
    assert done.status_code == 302 and done["Location"] == "/whoami/"
    assert phone.whoami()["user"] == "second"


def test_unbound_callback_of_the_same_user_needs_no_question(site):
    phone = Phone()
    phone.log_in("dave")
    again = Phone().authorize(Phone().start(), "dave")
    phone.client.cookies.pop("wechat_oauth_binding")
    response = phone.get(again)
    assert response.status_code == 302 and phone.whoami()["user"] == "dave"


def test_an_unbound_callback_never_connects_an_account(site):
    phone = Phone()
    phone.log_in("erin")
    connect = Phone().authorize(Phone().start(process="connect"), "frank")
    phone.client.cookies.pop("wechat_oauth_binding")
    response = phone.get(connect)
    assert response.status_code == 400
    assert not accounts_of(openid_for(site.app_id, "frank"))


def test_connect_from_the_browser_that_asked_adds_the_account(site, fake_wechat):
    phone = Phone()
    phone.log_in("gina")
    fake_wechat.add_app(MP_APP_ID)
    social_app("weixin_mp", MP_APP_ID, fake_wechat.app_secret_of(MP_APP_ID))
    callback = phone.authorize(phone.start("weixin_mp", process="connect"), "gina-elsewhere")
    response = phone.get(callback)
    assert response.status_code == 302
    providers = [provider for provider, _ in phone.whoami()["accounts"]]
    assert providers == ["weixin", "weixin_mp"]


def test_a_changed_next_breaks_the_state(site):
    callback = Phone().authorize(Phone().start(), "heidi")
    forged = callback.replace("next=%2Fwhoami%2F", "next=%2Fadmin%2F")
    response = Client(HTTP_USER_AGENT=WECHAT_USER_AGENT).get(forged)
    assert response.status_code == 400 and b"not valid" in response.content
    assert site.exchange_calls(code_of(callback)) == 0


def test_consent_refused_is_allauths_cancelled_page(site):
    phone = Phone()
    state = parse_qs(urlsplit(phone.start()).query)["state"][0]
    response = phone.get(f"/accounts/weixin/login/callback/?next=%2Fwhoami%2F&state={state}")
    assert response.status_code == 302 and response["Location"] == "/accounts/3rdparty/login/cancelled/"


def test_wechat_failing_is_a_readable_page_with_log_in_again(site):
    site.add_fault("access_token", errcode=-1)
    phone = Phone()
    response = phone.get(phone.authorize(phone.start(), "ivan"))
    assert response.status_code == 502
    assert b'href="/accounts/weixin/login/?next=%2Fwhoami%2F"' in response.content
    assert response["Cache-Control"].startswith("max-age=0") and not get_user_model().objects.exists()


@pytest.mark.parametrize("store_tokens", [False, True])
def test_duplicate_in_this_process_reuses_the_exchange_and_makes_one_user(site, settings, store_tokens):
    settings.SOCIALACCOUNT_STORE_TOKENS = store_tokens  # one SocialToken per account and app
    phone = Phone()
    callback = phone.authorize(phone.start(), "judy")
    site.set_latency(0.1)
    resent = f"{callback}&uin=MTMy&key=63e9&pass_ticket=SISr"
    twins = [Client(HTTP_USER_AGENT=WECHAT_USER_AGENT) for _ in range(3)]
    for twin in twins:
        twin.cookies = phone.client.cookies
    results = run_together(
        [
            lambda twin=twin, url=url: twin.get(url)
            for twin, url in zip(twins, [callback, resent, callback], strict=True)
        ]
    )
    assert [(kind, value.status_code) for kind, value in results] == [("ok", 302)] * 3
    assert site.exchange_calls(code_of(callback)) == 1
    assert len(accounts_of(openid_for(site.app_id, "judy"))) == 1
    assert get_user_model().objects.count() == 1
    assert OAuthCodeUse.objects.get().duplicates == 2
    assert SocialToken.objects.count() == (1 if store_tokens else 0)


def test_spent_code_of_a_logged_in_browser_goes_on_to_next(site, settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "DEDUPE_WINDOW": 0}
    phone = Phone()
    callback = phone.log_in("ken")
    response = phone.get(callback)  # Back or refresh, the window closed
    assert response.status_code == 302 and response["Location"] == "/whoami/"
    assert site.exchange_calls(code_of(callback)) == 1


def test_spent_code_of_an_anonymous_browser_restarts_the_login_once(site):
    phone = Phone()
    callback = phone.authorize(phone.start(), "lena")
    Client(HTTP_USER_AGENT="another browser MicroMessenger").get(callback)  # someone else's
    response = phone.get(callback)
    assert response.status_code == 302 and response["Location"].startswith(site.authorize_url)
    restart = parse_qs(urlsplit(response["Location"]).query)["state"][0]
    assert restart[7] == "1"  # the attempt counter: the loop guard
    again = phone.authorize(response["Location"], "lena")
    Client(HTTP_USER_AGENT="another browser MicroMessenger").get(again)
    response = phone.get(again)
    assert response.status_code == 400 and b"already used" in response.content  # no loop


# -- Kinds, scopes, snapshot users -----------------------------------------------------------------


def test_snsapi_base_logs_in_without_userinfo(website_and_mp):
    phone = Phone()
    phone.log_in("mia", provider="weixin_mp")
    openid = openid_for(MP_APP_ID, "mia")
    assert phone.whoami()["accounts"] == [["weixin_mp", openid]]
    assert website_and_mp.calls("userinfo") == 0
    assert SocialAccount.objects.get(uid=openid).extra_data == {
        "openid": openid,
        "scope": "snsapi_base",
        "unionid": unionid_for("mia"),
    }


def test_snsapi_base_keeps_the_profile_an_earlier_login_stored(website_and_mp):
    openid = openid_for(MP_APP_ID, "nina")
    user = get_user_model().objects.create(username="nina")
    SocialAccount.objects.create(
        user=user,
        provider="weixin_mp",
        uid=openid,
        extra_data={"openid": openid, "nickname": "Nina", "headimgurl": "h"},
    )
    phone = Phone()
    phone.log_in("nina", provider="weixin_mp")
    assert phone.whoami()["id"] == user.pk
    assert SocialAccount.objects.get(uid=openid).extra_data["nickname"] == "Nina"


def test_website_and_official_account_beside_each_other(website_and_mp):
    desktop = Phone(DESKTOP_USER_AGENT)
    desktop.log_in("olga", provider="weixin")
    phone = Phone()
    phone.log_in("olga", provider="weixin_mp")
    assert desktop.whoami()["accounts"] == [["weixin", openid_for(website_and_mp.app_id, "olga")]]
    assert phone.whoami()["accounts"] == [["weixin_mp", openid_for(MP_APP_ID, "olga")]]
    assert desktop.whoami()["id"] != phone.whoami()["id"]  # unionid linking is off by default
    page = phone.get("/").content.decode()
    assert 'href="/accounts/weixin_mp/login/?next=%2Fwhoami%2F"' in page


def test_snapshot_user_gets_the_snapshot_page_and_no_user(site):
    phone = Phone()
    response = phone.get(phone.authorize(phone.start(), "peek", fake_snapshot="1"))
    assert response.status_code == 200 and b"Open the full page" in response.content
    assert not get_user_model().objects.exists() and not SocialAccount.objects.exists()


# -- unionid linking -------------------------------------------------------------------------------


def test_unionid_linking_joins_one_user_across_the_two_apps(website_and_mp, settings):
    link_by_unionid(settings)
    Phone(DESKTOP_USER_AGENT).log_in("quinn", provider="weixin")
    phone = Phone()
    phone.log_in("quinn", provider="weixin_mp")
    me = phone.whoami()
    assert [provider for provider, _ in me["accounts"]] == ["weixin", "weixin_mp"]
    assert get_user_model().objects.count() == 1
    assert WeChatUnion.objects.get(unionid=unionid_for("quinn")).user_id == me["id"]
    assert SocialAccount.objects.get(provider="weixin_mp").uid == openid_for(MP_APP_ID, "quinn")


def test_unionid_linking_finds_people_known_only_from_allauths_own_rows(website_and_mp, settings):
    link_by_unionid(settings)
    user = get_user_model().objects.create(username="rita")
    SocialAccount.objects.create(
        user=user,
        provider="weixin",
        uid="o-made-by-stock",
        extra_data={"openid": "o-made-by-stock", "nickname": "rita", "unionid": unionid_for("rita")},
    )
    phone = Phone()
    phone.log_in("rita", provider="weixin_mp")
    assert phone.whoami()["id"] == user.pk
    assert WeChatUnion.objects.get(unionid=unionid_for("rita")).user_id == user.pk


def test_first_logins_of_one_person_through_both_apps_at_once_make_one_user(website_and_mp, settings):
    link_by_unionid(settings)
    website_and_mp.set_latency(0.05)
    people = [f"twin{n}" for n in range(4)]
    for person in people:
        desktop, phone = Phone(DESKTOP_USER_AGENT), Phone()
        callbacks = [
            desktop.authorize(desktop.start("weixin"), person),
            phone.authorize(phone.start("weixin_mp"), person),
        ]
        results = run_together(
            [lambda b=desktop, c=callbacks[0]: b.get(c), lambda b=phone, c=callbacks[1]: b.get(c)]
        )
        assert [value.status_code for _, value in results] == [302, 302], results
        assert desktop.whoami()["id"] == phone.whoami()["id"]
    assert get_user_model().objects.count() == len(people)
    assert SocialAccount.objects.count() == 2 * len(people)


# -- Clients, checks and what the drop-in relies on in allauth ----------------------------------


def test_one_client_per_social_app(website_and_mp, rf):
    from allauth.socialaccount.adapter import get_adapter

    request = rf.get("/")
    weixin = get_adapter(request).get_provider(request, "weixin")
    mp = get_adapter(request).get_provider(request, "weixin_mp")
    assert client_for(weixin) is client_for(get_adapter(request).get_provider(request, "weixin"))
    assert client_for(weixin) is not client_for(mp)
    assert (client_for(weixin).app_id, client_for(mp).app_id) == (website_and_mp.app_id, MP_APP_ID)


def test_checks_the_site_and_not_what_only_the_apps_own_views_need():
    from wechat_oauth import checks

    found = [
        *checks.check_settings(),
        *checks.check_middleware_and_backend(),
        *checks.check_site_integration(),
        *drop_in_checks.check_allauth_drop_in(),
    ]
    ids = {message.id for message in found}
    assert not ids & {"wechat_oauth.E001", "wechat_oauth.E004", "wechat_oauth.E008"}
    assert not {i for i in ids if i.startswith("wechat_oauth_allauth.")}


def test_check_refuses_allauths_own_provider_beside_the_drop_in(monkeypatch):
    monkeypatch.setattr(
        drop_in_checks.apps,
        "is_installed",
        lambda name: name in (drop_in_checks.STOCK_PROVIDER, "wechat_oauth"),
    )
    ids = [message.id for message in drop_in_checks.check_allauth_drop_in()]
    assert ids == ["wechat_oauth_allauth.E001"]


def test_check_refuses_a_scope_the_kind_of_app_cannot_ask_for(settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "weixin": {"SCOPE": ["snsapi_base", "snsapi_userinfo"]},
        "weixin_mp": {"SCOPE": ["snsapi_login"]},
    }
    ids = [message.id for message in drop_in_checks.check_allauth_drop_in()]
    assert ids == ["wechat_oauth_allauth.E003"] * 2


def test_allauth_internals_still_have_the_shape_the_drop_in_relies_on(site, rf):
    """compat.py's assumptions, against the installed allauth: if this fails, allauth changed
    its state dict or its unique constraints, and the drop-in must follow."""
    from allauth.socialaccount import models
    from allauth.socialaccount.adapter import get_adapter
    from django.contrib.sessions.backends.db import SessionStore

    request = rf.get("/")
    request.session = SessionStore()
    provider = get_adapter(request).get_provider(request, "weixin")
    cases = [
        dict(process="login", next_url="/x/"),
        dict(process="connect", data={"a": [1]}),
        dict(process="login", next_url="https://app.example/cb", headless=True),
    ]
    for case in cases:
        kwargs = {"headless": True} if case.get("headless") else {}
        state_id = provider.stash_redirect_state(
            request, case["process"], case.get("next_url"), case.get("data"), **kwargs
        )
        stashed = provider.unstash_redirect_state(request, state_id)
        assert compat.allauth_state(**case) == stashed, case
        assert set(stashed) <= set(compat.STATE_KEYS)
    login = models.SocialLogin()
    login.state = compat.allauth_state(process="login", next_url="/y/", headless=True)
    assert login.get_redirect_url(request) == "/y/" and login.is_headless
    for model, fields in compat.UNIQUE_TOGETHER.items():
        together = {tuple(names) for names in getattr(models, model)._meta.unique_together}
        assert fields in together, (model, together)


def test_the_state_is_not_in_the_session_even_for_a_long_next(site):
    target = "/shop/?" + urlencode({"q": "a" * 300})
    phone = Phone()
    location = phone.start(next=target)
    redirect_uri = parse_qs(urlsplit(location).query)["redirect_uri"][0]
    assert redirect_uri.endswith("?next=" + quote(target, safe=""))
