"""The library sites of ``python -m bench.storm --library``: a site set up another login
library's way, served once with the library's stock WeChat backend and once with our drop-in.

Each is a small description (:class:`LibrarySite`): the settings module of each mode, the WSGI
module, the environment its settings read, the WeChat app its login uses, how a login starts
there, where WeChat's callback lands, what its ``/whoami/`` says and where its database keeps
the accounts. bench/storm/library_storm.py serves both modes side by side and drives the
storm's duplicate patterns (bench/storm/patterns.py) through them.

* ``social``: python-social-auth (tests/social_site: ``settings_stock``, social-core's
  ``weixinapp``; ``settings_dropin``, ``wechat_oauth.contrib.social``'s, with the unionid
  step). A login: the login page (``/login/``, it sets the CSRF cookie), a POST of its
  ``weixinapp`` form to ``social:begin``, WeChat's authorize page, ``social:complete``.
* ``allauth``: django-allauth (tests/allauth_site: ``settings_stock``, allauth's Weixin
  provider; ``settings_dropin``, ``wechat_oauth.contrib.allauth``'s, the same provider id
  ``weixin``), an Official Account (the authorize page, ``snsapi_userinfo``) as its
  ``SocialApp`` in settings. A login: allauth's login link ``/accounts/weixin/login/`` (its
  confirmation page sets the CSRF cookie), the confirmation POSTed back to it, WeChat's
  authorize page, ``/accounts/weixin/login/callback/``.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from bench.storm.browser import Browser, Hit
from bench.storm.databases import Database
from bench.storm.patterns import LoginFailed
from bench.storm.users import SiteUsers
from wechat_oauth.testing import openid_for

#: The two modes of every library site: its stock backend, and ours in its place.
MODES = ("stock", "dropin")
MODE_LABELS = {"stock": "stock", "dropin": "drop-in"}


@dataclass(frozen=True)
class LibrarySite:
    """A site of one login library, and what the storm must know to log in there."""

    name: str
    label: str
    #: The site's package: ``settings_stock`` and ``settings_dropin`` (DJANGO_SETTINGS_MODULE of
    #: each mode) and ``wsgi`` (the application gunicorn serves) in it.
    package: str
    #: Modules the site needs besides its package (the library, our drop-in): missing, the
    #: library is skipped.
    requires: tuple[str, ...]
    #: The storm kind whose browser (User-Agent) and fake page the login goes through
    #: (bench/storm/apps.py: ``mp``, WeChat's browser and the authorize page).
    kind: str
    #: The provider (backend) name its accounts are stored under.
    provider: str
    #: The WeChat app the login goes through, as the site's settings name it; ``other_apps``
    #: the site's other apps (the fake knows them too).
    app_id: str
    app_secret: str
    other_apps: tuple[tuple[str, str], ...]
    #: GET, ``{next}`` the URL-quoted next: the page a login starts on (it sets the CSRF cookie).
    login_page: str
    #: POSTed with the CSRF token and ``next`` (``{next}`` as in ``login_page``): where the
    #: page's button sends the login; it answers a redirect to WeChat's page.
    login_post: str
    #: The path of WeChat's callback on the site (the redirect_uri the login sends).
    callback_path: str
    #: The table of its accounts (columns ``provider``, ``uid``: the openid, ``user_id``).
    accounts_table: str
    #: The environment its settings read: (fake WeChat's URL, Django DATABASES entry) -> vars.
    environment: Callable[[str, dict[str, Any]], dict[str, str]]
    #: Its /whoami/ answer -> who is logged in (:meth:`identity` of a person), None if nobody.
    who: Callable[[dict[str, Any]], str | None]

    @property
    def settings(self) -> dict[str, str]:
        """DJANGO_SETTINGS_MODULE of each mode."""
        return {mode: f"{self.package}.settings_{mode}" for mode in MODES}

    @property
    def wsgi(self) -> str:
        return f"{self.package}.wsgi:application"

    def site(self, mode: str) -> str:
        """The storm's name of the site of ``mode`` (its database: wechat_oauth_storm_<site>)."""
        return f"{self.name}_{mode}"

    @property
    def sites(self) -> tuple[str, ...]:
        return tuple(self.site(mode) for mode in MODES)

    def mode_of(self, site: str) -> str:
        return site.removeprefix(f"{self.name}_")

    def unavailable(self) -> str | None:
        """Why this library's sites cannot run here, or None."""
        for module in (*self.requires, self.package):
            try:
                found = importlib.util.find_spec(module) is not None
            except ModuleNotFoundError:
                found = False
            if not found:
                return f"{module} is not installed (pip install -e '.[bench,{self.name}]')"
        return None

    def openid(self, person: str) -> str:
        return openid_for(self.app_id, person)

    def identity(self, person: str) -> str:
        """Who ``person`` is once logged in: their account of ``provider``."""
        return account_name(self.provider, self.openid(person))

    def start(self, browser: Browser, base: str, next_url: str) -> Hit:
        """The site's login page, then its button's POST (the CSRF token from its cookie, as
        the form carries it): the answer, a redirect to WeChat's page. LoginFailed if the page
        fails or sets no CSRF cookie, or the login sends WeChat a redirect_uri off the site's
        callback path."""
        quoted = quote(next_url, safe="")
        page = browser.get(f"{base}{self.login_page.format(next=quoted)}", "login page")
        token = browser.session.cookies.get("csrftoken")
        if page.status != 200 or not token:
            raise LoginFailed(
                f"login page answered {page.status or page.error} "
                f"{'' if token else '(no CSRF cookie)'} {page.body}".strip()
            )
        hit = browser.post_form(
            f"{base}{self.login_post.format(next=quoted)}",
            {"csrfmiddlewaretoken": token, "next": next_url},
            "login start",
        )
        redirect_uri = dict(parse_qsl(urlsplit(hit.location).query)).get("redirect_uri", "")
        if hit.status == 302 and urlsplit(redirect_uri).path != self.callback_path:
            raise LoginFailed(
                f"the login sends WeChat redirect_uri {redirect_uri[:80]!r}, not "
                f"the site's {self.callback_path}"
            )
        return hit

    def read_users(self, db: Database, site: str, persons: set[str]) -> SiteUsers:
        """Who the persons became on ``site``: the users its accounts of ``provider`` point to
        (by uid: the person's openid), the users in its database, the users no account of
        any provider points to."""
        out = SiteUsers(site)
        with db.connect(site) as conn:
            users = {int(pk) for (pk,) in db.query(conn, "SELECT id FROM auth_user")}
            accounts = db.query(
                conn, f"SELECT uid, user_id FROM {self.accounts_table} WHERE provider = %s", [self.provider]
            )
            owned = {
                int(user) for (user,) in db.query(conn, f"SELECT DISTINCT user_id FROM {self.accounts_table}")
            }
        by_openid: dict[str, set[int]] = {}
        for uid, user in accounts:
            by_openid.setdefault(str(uid), set()).add(int(user))
        out.by_person = {person: by_openid.get(self.openid(person), set()) for person in persons}
        out.users_total = len(users)
        out.users_without_account = len(users - owned)
        return out


def account_name(provider: str, uid: str) -> str:
    return f"{provider}:{uid}"


def _accounts(answer: dict[str, Any], pairs: Callable[[Any], tuple[str, str]]) -> str | None:
    """A /whoami/ answer with a ``user`` and its ``accounts``: ``provider:uid`` of each account
    (comma-separated), None if nobody is logged in."""
    if not answer.get("user"):
        return None
    names = sorted(account_name(*pairs(account)) for account in answer.get("accounts") or [])
    return ",".join(names) or f"!{answer['user']} has no account"


def _social_environment(fake_url: str, database: dict[str, Any]) -> dict[str, str]:
    return {"SOCIAL_SITE_FAKE_WECHAT": fake_url, "SOCIAL_SITE_DATABASE": json.dumps(database)}


#: tests/social_site (its settings.py names the apps: SOCIAL_AUTH_WEIXINAPP_KEY / _SECRET, and
#: the website app's SOCIAL_AUTH_WEIXIN_KEY / _SECRET; tests/test_storm.py checks).
SOCIAL = LibrarySite(
    name="social",
    label="python-social-auth (social-auth-app-django), backend weixinapp",
    package="tests.social_site",
    requires=("social_core", "social_django"),
    kind="mp",
    provider="weixinapp",
    app_id="wxsocialmp00000001",
    app_secret="social-site-mp-secret-0123456789ab",
    other_apps=(("wxsocialweb0000001", "social-site-web-secret-0123456789a"),),
    login_page="/login/?next={next}",
    login_post="/login/weixinapp/",
    callback_path="/complete/weixinapp/",
    accounts_table="social_auth_usersocialauth",
    environment=_social_environment,
    who=lambda answer: _accounts(answer, lambda account: (account["provider"], account["uid"])),
)

#: The allauth site's Official Account (ALLAUTH_SITE_APPS: its SocialApp, provider weixin).
ALLAUTH_APP = ("wxallauthmp0000001", "allauth-site-mp-secret-0123456789")


def _allauth_environment(fake_url: str, database: dict[str, Any]) -> dict[str, str]:
    return {
        "ALLAUTH_SITE_FAKE_WECHAT": fake_url,
        "ALLAUTH_SITE_DATABASE": json.dumps(database),
        "ALLAUTH_SITE_APPS": json.dumps({"weixin": {"client_id": ALLAUTH_APP[0], "secret": ALLAUTH_APP[1]}}),
    }


#: tests/allauth_site (its settings.py reads the environment above).
ALLAUTH = LibrarySite(
    name="allauth",
    label="django-allauth, provider weixin (an Official Account)",
    package="tests.allauth_site",
    requires=("allauth", "wechat_oauth.contrib.allauth"),
    kind="mp",
    provider="weixin",
    app_id=ALLAUTH_APP[0],
    app_secret=ALLAUTH_APP[1],
    other_apps=(),
    login_page="/accounts/weixin/login/?next={next}",
    login_post="/accounts/weixin/login/?next={next}",
    callback_path="/accounts/weixin/login/callback/",
    accounts_table="socialaccount_socialaccount",
    environment=_allauth_environment,
    who=lambda answer: _accounts(answer, lambda account: (account[0], account[1])),
)

LIBRARIES: dict[str, LibrarySite] = {site.name: site for site in (SOCIAL, ALLAUTH)}
