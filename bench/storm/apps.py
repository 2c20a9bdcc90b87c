"""The storm's WeChat apps, its persons and the names their users get on each site.

Each site has two apps on the one fake WeChat, both bound to the same Open Platform account
(one unionid per person), each with its own appid and secret:

* kind ``mp``: an Official Account (``WECHAT_OAUTH["APPS"]["mp"]``, the DEFAULT_APP):
  ``/wechat/login/`` -> the fake's authorize page -> ``/wechat/callback/``, in WeChat's in-app
  browser (its User-Agent);
* kind ``open``: a website app (``APPS["web"]``, KIND "open"): ``/wechat/web/login/`` -> the
  fake's qrconnect page (scope snsapi_login) -> ``/wechat/web/callback/``, in a desktop
  browser (its User-Agent).

The naive site has the same two login paths (``bench/storm/naive``) on apps of its own, so the
fake's per-app counters tell the sites apart.

A login names a *person* (the fake's ``fake_person=``): the fake answers with that person's
openid in the app and the person's unionid. Who the person's user is on each site:

* guarded: ``wx_<openid>`` of the app the person first logged in through (the app's default
  CREATE_USER); every later login of the person, through either app, joins that user;
* naive: ``wx_<unionid>`` (WeChat's docs: the unionid identifies a person across apps).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from wechat_oauth.testing import openid_for, unionid_for
from wechat_oauth.testing.wechat_client import WECHAT_USER_AGENT

#: A desktop browser, the one that shows a website app's QR code.
DESKTOP_USER_AGENT = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                      "(KHTML, like Gecko) Chrome/126.0 Safari/537.36")


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
    #: The site settings' environment variable prefix of its appid and secret.
    env: str


KINDS: dict[str, StormApp] = {
    "mp": StormApp("mp", "mp", "/wechat/login/", "/wechat/callback/", "authorize",
                   WECHAT_USER_AGENT, "STORM_MP"),
    "open": StormApp("open", "web", "/wechat/web/login/", "/wechat/web/callback/", "qrconnect",
                     DESKTOP_USER_AGENT, "STORM_WEB"),
}
KIND_LABELS = {"mp": "Official Account (authorize, in WeChat)",
          "open": "website app (qrconnect, QR login in a desktop browser)"}

#: appid of each site's app of each kind (four apps on one fake).
APP_IDS: dict[str, dict[str, str]] = {
    "guarded": {"mp": "wxstormbench000001", "open": "wxstormbenchweb001"},
    "naive": {"mp": "wxstormnaive000001", "open": "wxstormnaiveweb001"},
}


def app_id(site: str, kind: str) -> str:
    return APP_IDS[site][kind]


def new_person(site: str, name: str, index: int) -> str:
    """A person no other login of the run uses."""
    return f"p_{site[0]}_{name}_{index}_{secrets.token_hex(3)}"


def user_name(site: str, kind: str, person: str) -> str:
    """The username of ``person``'s user on ``site`` when its first login is of ``kind``."""
    if site == "naive":
        return f"wx_{unionid_for(person)}"
    return f"wx_{openid_for(app_id(site, kind), person)}"


def identities(site: str, person: str) -> dict[tuple[str, str], str]:
    """(appid, openid) of ``person`` in each of the site's apps -> the kind."""
    return {(app_id(site, kind), openid_for(app_id(site, kind), person)): kind for kind in KINDS}
