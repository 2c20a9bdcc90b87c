"""The WeChat app behind a provider and its ``SocialApp``, and one client per such app.

The ``SocialApp`` gives the credentials (``client_id`` is the app id, ``secret`` the app
secret), the provider's settings (``SOCIALACCOUNT_PROVIDERS["weixin"]``) the rest:

* ``SCOPE``: one scope (allauth's list form, ``["snsapi_userinfo"]``). ``weixin``: the default
  ``snsapi_login`` is a website app's QR login (qrconnect); ``snsapi_base``/``snsapi_userinfo``
  make it an Official Account (the authorize page, inside WeChat), as sites on allauth's own
  provider configure it. ``weixin_mp`` is always an Official Account (default ``snsapi_base``).
* ``AUTHORIZE_URL``: allauth's own setting, the page the browser is sent to (qrconnect for a
  website app, the authorize page for an Official Account).
* Any of :data:`wechat_oauth.registry.PER_APP_KEYS` (``API_BASE_URL``, ``TIMEOUT``,
  ``CONNECT_REDIRECT``, ``FORCE_POPUP``, ``USERINFO_LANG``...) for that provider; otherwise
  ``WECHAT_OAUTH``'s global value, otherwise the app's default.

Clients are cached per (provider, credentials, settings): one per ``SocialApp`` and process,
on a ``requests.Session`` from allauth's adapter (``get_requests_session``: a site's proxies
and certificates apply).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from ...client import WeChatClient
from ...exceptions import ConfigurationError
from ...registry import KIND_SCOPES, PER_APP_KEYS, WeChatApp

#: The setting names of a provider's settings dict that can change the app or its client.
_WATCHED_SETTINGS = ("SOCIALACCOUNT_PROVIDERS", "WECHAT_OAUTH")

_clients: dict[str, WeChatClient] = {}
_lock = threading.Lock()


def scope_of(provider: Any) -> str:
    """The provider's one scope (``ConfigurationError`` if its settings name none or several,
    or one its kind cannot ask for)."""
    scopes = [str(scope) for scope in provider.get_scope()]
    if len(scopes) != 1:
        raise ConfigurationError(
            f"SOCIALACCOUNT_PROVIDERS[{provider.id!r}]['SCOPE'] must name one scope, not {scopes}"
        )
    scope = scopes[0]
    if scope not in KIND_SCOPES[provider.kind_for(scope)]:
        raise ConfigurationError(f"provider {provider.id!r} cannot ask for scope {scope!r}")
    return scope


def wechat_app(provider: Any) -> WeChatApp:
    """The WeChat app a provider instance (with its ``SocialApp``) logs in through."""
    social_app = provider.app
    if not social_app.client_id or not social_app.secret:
        raise ConfigurationError(f"the SocialApp of provider {provider.id!r} has no client_id or no secret")
    scope = scope_of(provider)
    kind = provider.kind_for(scope)
    settings = provider.get_settings()
    overrides = {key: settings[key] for key in PER_APP_KEYS if key in settings}
    if kind == "open" and "AUTHORIZE_URL" in overrides:  # allauth's name for the QR page
        overrides["QRCONNECT_URL"] = overrides.pop("AUTHORIZE_URL")
    return WeChatApp(
        name=provider.id,
        kind=kind,
        app_id=str(social_app.client_id),
        app_secret=str(social_app.secret),
        scope=scope,
        overrides=overrides,
    )


def client_for(provider: Any, app: WeChatApp | None = None) -> WeChatClient:
    """The client of the provider's app: one per app (credentials and settings) and process."""
    from allauth.socialaccount.adapter import get_adapter

    app = app or wechat_app(provider)
    key = json.dumps(
        [app.name, app.kind, app.app_id, app.app_secret, app.scope, dict(app.overrides)],
        sort_keys=True,
        default=str,
    )
    client = _clients.get(key)
    if client is not None:
        return client
    with _lock:
        if key not in _clients:
            _clients[key] = WeChatClient.for_app(app, session=get_adapter().get_requests_session())
        return _clients[key]


def forget_clients() -> None:
    with _lock:
        _clients.clear()


@receiver(setting_changed)
def _forget_clients_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in _WATCHED_SETTINGS:
        forget_clients()
