"""System checks: misconfiguration is reported by ``manage.py check`` with an id and a hint.

========================= =================================================================
wechat_oauth.E001         APP_ID or APP_SECRET missing
wechat_oauth.E002         SCOPE is not one WeChat knows
wechat_oauth.E003         WeChatOAuthMiddleware placed before session or auth middleware
wechat_oauth.E004         LINK_USERS without WeChatBackend in AUTHENTICATION_BACKENDS
wechat_oauth.E005         CACHE_ALIAS names no cache in CACHES
wechat_oauth.W001         CACHE_ALIAS is a per-process cache (local memory, dummy)
wechat_oauth.W002         CACHE_ALIAS is not a django-redis cache (the front stays off)
========================= =================================================================
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .backends import BACKEND_PATH
from .conf import app_settings

VALID_SCOPES = ("snsapi_base", "snsapi_userinfo", "snsapi_login")
MIDDLEWARE_PATH = "wechat_oauth.middleware.WeChatOAuthMiddleware"
MUST_COME_BEFORE = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
)


@register(Tags.security)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
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


@register()
def check_middleware_and_backend(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    middleware = list(settings.MIDDLEWARE)
    if MIDDLEWARE_PATH in middleware:
        position = middleware.index(MIDDLEWARE_PATH)
        late = [path for path in MUST_COME_BEFORE if path not in middleware[:position]]
        if late:
            messages.append(Error(
                "WeChatOAuthMiddleware must come after " + " and ".join(late) + ".",
                hint="It stores the login in the session and logs the user in: move it below "
                     "SessionMiddleware and AuthenticationMiddleware in MIDDLEWARE.",
                id="wechat_oauth.E003",
            ))
    if app_settings.LINK_USERS and BACKEND_PATH not in settings.AUTHENTICATION_BACKENDS:
        messages.append(Error(
            f"{BACKEND_PATH} is not in AUTHENTICATION_BACKENDS.",
            hint="Without it a WeChat login does not survive the next request. Add it, or set "
                 "WECHAT_OAUTH['LINK_USERS'] = False to keep only request.wechat.",
            id="wechat_oauth.E004",
        ))
    return messages


PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@register(Tags.caches)
def check_cache_front(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    alias = app_settings.CACHE_ALIAS
    if not alias:
        return []
    if alias not in settings.CACHES:
        return [Error(
            f"WECHAT_OAUTH['CACHE_ALIAS'] is {alias!r}, which is not in CACHES.",
            hint="Name a django-redis cache shared by every server, or remove CACHE_ALIAS.",
            id="wechat_oauth.E005",
        )]
    backend = settings.CACHES[alias].get("BACKEND", "")
    if backend in PER_PROCESS_CACHES:
        return [Warning(
            f"CACHE_ALIAS {alias!r} is a per-process cache ({backend}): other workers and "
            "servers cannot see it, so the cache front stays off.",
            hint="Point CACHE_ALIAS at a django-redis cache (pip install django-wechat-oauth[redis]).",
            id="wechat_oauth.W001",
        )]
    if not backend.startswith("django_redis."):
        return [Warning(
            f"CACHE_ALIAS {alias!r} uses {backend}; the cache front needs django-redis "
            "(Lua scripts and blocking pops), so it stays off and the database works alone.",
            hint="Use django_redis.cache.RedisCache for this alias.",
            id="wechat_oauth.W002",
        )]
    return []
