"""System checks of the django-allauth drop-in.

============================ ==================================================================
wechat_oauth_allauth.E001    allauth's own Weixin provider is installed too (same id ``weixin``)
wechat_oauth_allauth.E002    ``wechat_oauth`` is not in INSTALLED_APPS (the fence's table)
wechat_oauth_allauth.E003    a provider's SCOPE is not one scope its kind of app can ask for
============================ ==================================================================
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from ...registry import KIND_SCOPES

STOCK_PROVIDER = "allauth.socialaccount.providers.weixin"


@register()
def check_allauth_drop_in(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from .provider import provider_classes

    messages: list[CheckMessage] = []
    if apps.is_installed(STOCK_PROVIDER):
        messages.append(
            Error(
                f"{STOCK_PROVIDER} and wechat_oauth.contrib.allauth are both installed: two "
                "providers with the id 'weixin', and whichever loads last wins.",
                hint=f"Remove {STOCK_PROVIDER!r} from INSTALLED_APPS.",
                id="wechat_oauth_allauth.E001",
            )
        )
    if not apps.is_installed("wechat_oauth"):
        messages.append(
            Error(
                "wechat_oauth.contrib.allauth needs 'wechat_oauth' in INSTALLED_APPS.",
                hint="Add 'wechat_oauth' (its OAuthCodeUse table is the fence of the exchange) and "
                "run migrate.",
                id="wechat_oauth_allauth.E002",
            )
        )
    providers = getattr(settings, "SOCIALACCOUNT_PROVIDERS", {}) or {}
    for cls in provider_classes:
        scopes = providers.get(cls.id, {}).get("SCOPE")
        if scopes is None:
            continue
        scopes = list(scopes)
        kind = cls.kind_for(str(scopes[0])) if len(scopes) == 1 else ""
        if len(scopes) != 1 or str(scopes[0]) not in KIND_SCOPES.get(kind, ()):
            allowed = (
                ("snsapi_login", "snsapi_base", "snsapi_userinfo")
                if cls.id == "weixin"
                else KIND_SCOPES["mp"]
            )
            messages.append(
                Error(
                    f"SOCIALACCOUNT_PROVIDERS[{cls.id!r}]['SCOPE'] is {scopes}.",
                    hint="A WeChat app asks for one scope: one of " + ", ".join(allowed) + ".",
                    id="wechat_oauth_allauth.E003",
                )
            )
    return messages
