"""The storm's WeChat apps, its persons and the names their users get on each site.

Each site has four apps on the one fake WeChat, each with its own appid (corp id) and secret;
the first three bound to the same Open Platform account (one unionid per person):

* kind ``mp``: an Official Account (``WECHAT_OAUTH["APPS"]["mp"]``, the DEFAULT_APP):
  ``/wechat/login/`` -> the fake's authorize page -> ``/wechat/callback/``, in WeChat's in-app
  browser (its User-Agent);
* kind ``open``: a website app (``APPS["web"]``, KIND "open"): ``/wechat/web/login/`` -> the
  fake's qrconnect page (scope snsapi_login) -> ``/wechat/web/callback/``, in a desktop
  browser (its User-Agent);
* kind ``mini``: a Mini Program (``APPS["mini"]``, KIND "miniprogram"): no page; the front end
  gets a ``wx.login()`` code (the fake's control API, ``issue_js_code``) and POSTs it as JSON
  to ``/wechat/mini/session/``, which answers a session token, the openid, unionid and user id;
* kind ``wecom``: a WeCom self-built app (``APPS["corp"]``, KIND "wecom", snsapi_base):
  ``/wechat/corp/login/`` in WeCom's in-app browser (``wxwork`` in its User-Agent) -> the
  fake's authorize page with an agentid -> ``/wechat/corp/callback/``. Its persons are corp
  members: the person's name is their userid (``fake_userid=``), no unionid.

The naive site has the same login paths (``bench/storm/naive``) on apps of its own, so the
fake's per-app (per-agent) counters tell the sites apart.

A login names a *person* (the fake's ``fake_person=``, ``issue_js_code(person=)``, or a WeCom
member's userid): the fake answers with that person's openid in the app and the person's
unionid. Who the person's user is on each site:

* guarded: ``wx_<openid>`` of the app the person first logged in through (the app's default
  CREATE_USER; a WeCom member's openid is their userid); every later login of the person,
  through any app bound to the Open Platform account, joins that user;
* naive: ``wx_<unionid>`` (WeChat's docs: the unionid identifies a person across apps);
  ``wecom_<userid>`` for a WeCom member.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from wechat_oauth.testing import openid_for, unionid_for
from wechat_oauth.testing.wechat_client import WECHAT_USER_AGENT

#: A desktop browser, the one that shows a website app's QR code.
DESKTOP_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0 Safari/537.36"
)
#: WeCom's in-app browser (``wxwork``: the site sends it to the in-app authorisation).
WECOM_USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 wxwork/4.1.22 MicroMessenger/7.0.1 "
    "Language/zh"
)
#: A Mini Program's wx.request (WeChat's client, ``miniProgram``).
MINI_PROGRAM_USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
    "MicroMessenger/8.0.50 NetType/WIFI Language/zh_CN miniProgram"
)
#: The AgentId of each site's WeCom app (each site has a corp of its own).
WECOM_AGENT_ID = "1000002"


@dataclass(frozen=True)
class StormApp:
    """One kind of login the storm drives."""

    kind: str
    #: The app's name in the guarded site's APPS (the URL segment of a non-default app).
    name: str
    login_path: str
    callback_path: str
    #: The fake's page the login view sends the browser to (counted per app by the fake).
    page: str
    user_agent: str
    #: The site settings' environment variable prefix of its appid (corp id) and secret.
    env: str
    #: The fake's API endpoint that spends the kind's codes (counted per code).
    exchange: str = "access_token"
    #: The query parameter that names who logs in on the fake's page.
    who: str = "fake_person"

    @property
    def has_page(self) -> bool:
        """Whether a login goes through a page of the fake (a Mini Program's does not)."""
        return bool(self.page)


KINDS: dict[str, StormApp] = {
    "mp": StormApp(
        "mp", "mp", "/wechat/login/", "/wechat/callback/", "authorize", WECHAT_USER_AGENT, "STORM_MP"
    ),
    "open": StormApp(
        "open",
        "web",
        "/wechat/web/login/",
        "/wechat/web/callback/",
        "qrconnect",
        DESKTOP_USER_AGENT,
        "STORM_WEB",
    ),
    "mini": StormApp(
        "mini",
        "mini",
        "",
        "/wechat/mini/session/",
        "",
        MINI_PROGRAM_USER_AGENT,
        "STORM_MINI",
        exchange="jscode2session",
    ),
    "wecom": StormApp(
        "wecom",
        "corp",
        "/wechat/corp/login/",
        "/wechat/corp/callback/",
        "authorize",
        WECOM_USER_AGENT,
        "STORM_WECOM",
        exchange="getuserinfo",
        who="fake_userid",
    ),
}
KIND_LABELS = {
    "mp": "Official Account (authorize, in WeChat)",
    "open": "website app (qrconnect, QR login in a desktop browser)",
    "mini": "Mini Program (wx.login code POSTed to session/, JSON)",
    "wecom": "WeCom self-built app (in-app authorize with agentid, wxwork browser)",
}
#: The kinds --kind runs by default (see bench/storm/__main__.py).
DEFAULT_KINDS = ("mp", "open")
#: The kinds bound to the Open Platform account whose QR and Official Account logins the
#: cross-app figures pair (both_apps_at_once).
WEB_KINDS = ("mp", "open")
#: The kinds a user sees in a browser (callback, /whoami/ by cookie).
BROWSER_KINDS = ("mp", "open", "wecom")

#: appid (WeCom: corp id) of each site's app of each kind (eight apps on one fake).
APP_IDS: dict[str, dict[str, str]] = {
    "guarded": {
        "mp": "wxstormbench000001",
        "open": "wxstormbenchweb001",
        "mini": "wxstormbenchmini01",
        "wecom": "wwstormbench000001",
    },
    "naive": {
        "mp": "wxstormnaive000001",
        "open": "wxstormnaiveweb001",
        "mini": "wxstormnaivemini01",
        "wecom": "wwstormnaive000001",
    },
}


def app_id(site: str, kind: str) -> str:
    return APP_IDS[site][kind]


def new_person(site: str, name: str, index: int) -> str:
    """A person no other login of the run uses."""
    return f"p_{site[0]}_{name}_{index}_{secrets.token_hex(3)}"


def openid_of(site: str, kind: str, person: str) -> str:
    """``person``'s openid in the site's app of ``kind`` (a WeCom member's: their userid)."""
    return person if kind == "wecom" else openid_for(app_id(site, kind), person)


def user_name(site: str, kind: str, person: str) -> str:
    """The username of ``person``'s user on ``site`` when its first login is of ``kind``."""
    if site == "naive":
        return f"wecom_{person}" if kind == "wecom" else f"wx_{unionid_for(person)}"
    return f"wx_{openid_of(site, kind, person)}"


def identities(site: str, person: str) -> dict[tuple[str, str], str]:
    """(appid or corp id, openid or userid) of ``person`` in each of the site's apps -> the
    kind."""
    return {(app_id(site, kind), openid_of(site, kind, person)): kind for kind in KINDS}
