"""The one extension point for site policy: ``WECHAT_OAUTH["ADAPTER"]``.

Subclass :class:`DefaultAdapter`, override what your site decides differently, and name the
class in the setting (django-allauth's adapters have the same shape):

.. code-block:: python

    # myapp/wechat.py
    from wechat_oauth.adapter import DefaultAdapter

    class Adapter(DefaultAdapter):
        def may_log_in(self, request, app, token):
            return not Blocklist.objects.filter(openid=token.openid).exists()

    WECHAT_OAUTH = {..., "ADAPTER": "myapp.wechat.Adapter"}

Every method runs in the login request; ``create_user`` and ``populate_user`` inside the
transaction that links the identity (an exception there rolls the user back).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import requests
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from . import __version__
from .conf import SETTINGS_NAME, app_settings

if TYPE_CHECKING:
    from django.http import HttpRequest

    from .registry import WeChatApp
    from .results import TokenResult, UserInfo


class DefaultAdapter:
    """What the app does when no adapter is configured."""

    def may_log_in(self, request: HttpRequest, app: WeChatApp, token: TokenResult) -> bool:
        """Veto a login before any user is created or logged in: False shows the "login
        refused" page (403). Snapshot users never get here (they are refused first)."""
        return True

    def links_by_unionid(self, app: WeChatApp, token: TokenResult) -> bool:
        """Whether this identity joins the user already known for its unionid (the same person
        through another app of the organisation). Default: whenever WeChat sent a unionid."""
        return bool(token.unionid)

    def create_user(self, app: WeChatApp, token: TokenResult, profile: UserInfo | None) -> Any:
        """The Django user of a person seen for the first time. Default: the CREATE_USER hook
        (``wechat_oauth.users.create_user``: ``wx_<openid>``, no usable password)."""
        return app_settings.CREATE_USER(token, profile)

    def populate_user(self, user: Any, app: WeChatApp, profile: UserInfo | None) -> None:
        """Update a known user from a fresh profile (after every login that fetched one).
        Default: nothing (the profile is kept on the WeChatAccount)."""

    def http_session(self, app: WeChatApp) -> requests.Session:
        """The ``requests.Session`` the app's client calls WeChat with (one per app and
        process): proxies, certificates, adapters with connection pools of your own."""
        session = requests.Session()
        session.headers["User-Agent"] = f"django-wechat-oauth/{__version__}"
        return session


@functools.cache
def get_adapter() -> DefaultAdapter:
    """The configured adapter, one instance per process (until WECHAT_OAUTH changes)."""
    return import_string(app_settings.ADAPTER)()  # type: ignore[no-any-return]


@receiver(setting_changed)
def _forget_adapter(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTINGS_NAME:
        get_adapter.cache_clear()
