"""The WeChat apps a site logs in through: ``WECHAT_OAUTH["APPS"]``, or the single app of the
top-level APP_ID / APP_SECRET / SCOPE keys.

.. code-block:: python

    WECHAT_OAUTH = {
        "APPS": {
            "mp":  {"KIND": "mp",   "APP_ID": "wx…", "APP_SECRET": "…", "SCOPE": "snsapi_userinfo"},
            "web": {"KIND": "open", "APP_ID": "wx…", "APP_SECRET": "…"},   # snsapi_login
            "corp": {"KIND": "wecom", "CORP_ID": "ww…", "AGENT_ID": "1000002", "SECRET": "…"},
        },
        "DEFAULT_APP": "mp",
    }

Kinds: ``mp`` (an Official Account's web authorisation inside WeChat: ``snsapi_base`` or
``snsapi_userinfo``), ``open`` (an Open Platform website app's QR login: ``snsapi_login``) and
``miniprogram`` (a Mini Program's ``wx.login()`` code, POSTed to ``<app>/session/``) and
``wecom`` (a WeCom (企业微信) self-built app: the in-app authorisation inside WeCom, the SSO QR
login in a desktop browser; ``snsapi_base`` or ``snsapi_privateinfo``). A WeCom app's CORP_ID is
its ``app_id`` (codes, states and accounts are the corp's: one Django user per person per corp)
and its SECRET its ``app_secret``; APP_ID / APP_SECRET are accepted too.
Any of :data:`PER_APP_KEYS` set inside one app's dict overrides the global key for that app.
Without ``APPS``, the top-level keys are one app named ``"default"`` (its kind follows its
SCOPE). Without ``DEFAULT_APP``, the first app of ``APPS`` is the default: the app of the
plain ``login/`` and ``callback/`` URLs.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from .conf import SETTINGS_NAME, app_settings

#: The scopes each kind of app may ask for; the first is its default.
KIND_SCOPES: dict[str, tuple[str, ...]] = {
    "mp": ("snsapi_base", "snsapi_userinfo"),
    "open": ("snsapi_login",),
    # A Mini Program has no scope: wx.login()'s code goes to jscode2session.
    "miniprogram": ("",),
    "wecom": ("snsapi_base", "snsapi_privateinfo"),
}
#: Global settings an app's own dict may override.
PER_APP_KEYS = (
    "AUTHORIZE_URL",
    "QRCONNECT_URL",
    "API_BASE_URL",
    "TIMEOUT",
    "CONNECT_REDIRECT",
    "FORCE_POPUP",
    "USERINFO_LANG",
    "WECOM_API_BASE_URL",
    "WECOM_SSO_URL",
)
#: The keys that make an app (besides PER_APP_KEYS); CORP_ID, AGENT_ID and SECRET are a WeCom
#: app's (CORP_ID and SECRET are its APP_ID and APP_SECRET under WeCom's names).
APP_KEYS = ("KIND", "APP_ID", "APP_SECRET", "SCOPE", "CORP_ID", "AGENT_ID", "SECRET")
#: The app name of the single-app settings (no APPS).
LEGACY_APP_NAME = "default"


@dataclass(frozen=True)
class WeChatApp:
    """One WeChat app of the site, with its settings resolved (its own over the global ones)."""

    name: str
    kind: str
    app_id: str
    app_secret: str = field(repr=False)
    scope: str
    #: A WeCom app's AgentId (empty for the other kinds).
    agent_id: str = ""
    #: The app dict's overrides of PER_APP_KEYS.
    overrides: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def setting(self, key: str) -> Any:
        """A PER_APP_KEYS setting as this app sees it."""
        if key not in PER_APP_KEYS:
            raise KeyError(f"{key} is not a per-app setting")
        return self.overrides.get(key, getattr(app_settings, key))

    @property
    def is_mini_program(self) -> bool:
        return self.kind == "miniprogram"

    @property
    def is_wecom(self) -> bool:
        return self.kind == "wecom"

    @property
    def is_qr_login(self) -> bool:
        """An Open Platform website app: the browser goes to qrconnect, not authorize."""
        return self.kind == "open"


def _legacy_app() -> WeChatApp:
    scope = app_settings.SCOPE
    return WeChatApp(
        name=LEGACY_APP_NAME,
        kind="open" if scope == "snsapi_login" else "mp",
        app_id=app_settings.APP_ID,
        app_secret=app_settings.APP_SECRET,
        scope=scope,
    )


def _app_from(name: str, conf: Mapping[str, Any]) -> WeChatApp:
    kind = str(conf.get("KIND", "mp"))
    scopes = KIND_SCOPES.get(kind, ("",))
    return WeChatApp(
        name=name,
        kind=kind,
        app_id=str(conf.get("CORP_ID", conf.get("APP_ID", ""))),
        app_secret=str(conf.get("SECRET", conf.get("APP_SECRET", ""))),
        scope=str(conf.get("SCOPE", scopes[0])),
        agent_id=str(conf.get("AGENT_ID", "")).strip(),
        overrides={key: conf[key] for key in PER_APP_KEYS if key in conf},
    )


_lock = threading.Lock()
_apps: dict[str, WeChatApp] | None = None


def configured_apps() -> dict[str, WeChatApp]:
    """Every app of the settings by name, in the order they are configured (cached until
    WECHAT_OAUTH changes)."""
    global _apps
    apps = _apps
    if apps is None:
        with _lock:
            configured = app_settings.APPS
            if configured:
                apps = {str(name): _app_from(str(name), conf) for name, conf in configured.items()}
            else:
                apps = {LEGACY_APP_NAME: _legacy_app()}
            _apps = apps
    return apps


def default_app_name() -> str:
    return str(app_settings.DEFAULT_APP or next(iter(configured_apps())))


class UnknownApp(LookupError):
    """No app of that name is configured."""


def get_app(name: str | None = None) -> WeChatApp:
    """The app called ``name`` (default: DEFAULT_APP); :class:`UnknownApp` if there is none."""
    apps = configured_apps()
    name = default_app_name() if name is None else name
    try:
        return apps[name]
    except KeyError:
        raise UnknownApp(name) from None


def app_with_id(app_id: str) -> WeChatApp | None:
    """The configured app whose APP_ID is ``app_id``, if any."""
    return next((app for app in configured_apps().values() if app.app_id == app_id), None)


@receiver(setting_changed)
def _forget_apps(*, setting: str, **kwargs: Any) -> None:
    global _apps
    if setting == SETTINGS_NAME:
        _apps = None
