"""The fake WeChat of the demo: one in-process :class:`FakeState`, served under ``/fake-wechat/``.

The demo command serves the site and this fake from one runserver; the WECHAT_OAUTH URLs
(and the QR panel's wxLogin.js) point at ``<origin>/fake-wechat``, so the code exchange is a
real HTTP request from Django to its own (threaded) server, and nothing leaves the machine. The
fake knows every app of the settings, all bound to one Open Platform account: a person has one
unionid in all of them. The state lives in this process: its
counters (how many times each code was sent to the token endpoint) are what the home page shows
next to each ``OAuthCodeUse`` row, and they start from zero whenever the server starts.

Settings-free at import time: ``demo_project.settings`` imports the URL helpers below.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wechat_oauth.testing import FakeState, FakeWeChatApp

#: Where the fake is mounted in the demo's URL space.
MOUNT = "/fake-wechat"
#: Environment variable naming the origin the demo serves (``http://host:port``).
ORIGIN_ENV = "WECHAT_OAUTH_DEMO_ORIGIN"
DEFAULT_ORIGIN = "http://127.0.0.1:8000"


def fake_wechat_urls(origin: str) -> dict[str, str]:
    """The WECHAT_OAUTH URLs that send the app to the fake served at ``origin``."""
    base = origin.rstrip("/") + MOUNT
    return {
        "API_BASE_URL": base,
        "AUTHORIZE_URL": f"{base}/connect/oauth2/authorize",
        "QRCONNECT_URL": f"{base}/connect/qrconnect",
        "WXLOGIN_JS_URL": f"{base}/connect/wxLogin.js",
        "WECOM_API_BASE_URL": base,
        "WECOM_SSO_URL": f"{base}/wwlogin/sso/login",
    }


def serve_fake_wechat_at(origin: str) -> None:
    """Point WECHAT_OAUTH at the fake served at ``origin`` (the demo command's address).

    Settings were read before the command knew its address, so the new URLs are applied to
    the loaded settings and announced with ``setting_changed``, which makes wechat_oauth
    re-read its settings and rebuild its client. The environment variable is set too, for
    anything that reads the settings afresh (a child process).
    """
    from django.conf import settings
    from django.core.signals import setting_changed

    os.environ[ORIGIN_ENV] = origin
    current = dict(settings.WECHAT_OAUTH)
    wanted = {**current, **fake_wechat_urls(origin)}
    if wanted != current:
        settings.WECHAT_OAUTH = wanted
        setting_changed.send(sender=type(settings._wrapped), setting="WECHAT_OAUTH", value=wanted, enter=True)


@functools.cache
def fake_state() -> FakeState:
    """The one fake WeChat of this process: the apps of the settings (the first is the fake's
    default; WeCom apps are corps of the fake's WeCom), and its pages shown (not auto-approved)
    so that a person can be chosen and the double-callback box ticked."""
    from wechat_oauth.registry import configured_apps
    from wechat_oauth.testing import FakeApp, FakeState

    first, *others = (app for app in configured_apps().values() if not app.is_wecom)
    state = FakeState(
        first.app_id,
        first.app_secret,
        auto_approve=False,
        apps=[FakeApp(app.app_id, app.app_secret) for app in others],
    )
    for corp in (app for app in configured_apps().values() if app.is_wecom):
        state.add_corp(corp.app_id, corp.agent_id, corp.app_secret)
    return state


@functools.cache
def fake_app() -> FakeWeChatApp:
    from wechat_oauth.testing import FakeWeChatApp

    return FakeWeChatApp(fake_state())


def upstream_exchanges_by_code_hash() -> dict[str, int]:
    """How many token requests the fake received per code, keyed by the code's stored hash
    (``OAuthCodeUse.code_hash``), for every code it was asked about since the server started."""
    from wechat_oauth.hashing import code_hash

    per_code: dict[str, Any] = fake_state().stats()["exchange_calls"]
    return {code_hash(code): int(count) for code, count in per_code.items()}
