"""System checks: misconfiguration is reported by ``manage.py check`` with an id and a hint."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, Warning, register

from .conf import app_settings

VALID_SCOPES = ("snsapi_base", "snsapi_userinfo", "snsapi_login")


@register(Tags.security)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    messages: list[Error | Warning] = []
    if not app_settings.APP_ID or not app_settings.APP_SECRET:
        messages.append(Error(
            "WECHAT_OAUTH has no APP_ID or no APP_SECRET.",
            hint="Set WECHAT_OAUTH = {'APP_ID': 'wx...', 'APP_SECRET': '...'} in settings.",
            id="wechat_oauth.E001",
        ))
    if app_settings.SCOPE not in VALID_SCOPES:
        messages.append(Error(
            f"WECHAT_OAUTH['SCOPE'] is {app_settings.SCOPE!r}.",
            hint="Use one of: " + ", ".join(VALID_SCOPES) + ".",
            id="wechat_oauth.E002",
        ))
    return messages
