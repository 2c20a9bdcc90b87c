"""The guarded site: this app as its README installs it, on the run's database, with the Redis
front, and four apps: the Official Account "mp" (DEFAULT_APP: ``wechat/login/``), the
website app "web" (KIND "open", QR login: ``wechat/web/login/``), the Mini Program "mini"
(KIND "miniprogram": ``wechat/mini/session/``) and the WeCom app "corp" (KIND "wecom":
``wechat/corp/login/``)."""

import os

from bench.storm.server_settings import *  # noqa: F403
from bench.storm.server_settings import (
    ASYNC_VIEWS,
    FAKE_URL,
    INSTALLED_APPS,
    MIDDLEWARE,
    MINI_APP_ID,
    MINI_APP_SECRET,
    MP_APP_ID,
    MP_APP_SECRET,
    WEB_APP_ID,
    WEB_APP_SECRET,
    WECOM_AGENT_ID,
    WECOM_CORP_ID,
    WECOM_SECRET,
)

ROOT_URLCONF = "bench.storm.guarded.urls"
INSTALLED_APPS = [*INSTALLED_APPS, "wechat_oauth"]
MIDDLEWARE = [
    *MIDDLEWARE,
    "wechat_oauth.middleware.WeChatOAuthMiddleware",
    # Innermost: the per-phase profile tells the view from the middleware (bench/storm/phases.py).
    "bench.storm.phases.ViewMarkMiddleware",
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "wechat_oauth.backends.WeChatBackend",
]

_redis = os.environ.get("STORM_REDIS_URL", "")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if _redis:
    CACHES["wechat"] = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": _redis,
        "KEY_PREFIX": "storm",
        # As the README recommends: a dead or slow Redis costs tens of ms, not seconds.
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": 0.05,
            "SOCKET_TIMEOUT": float(os.environ.get("STORM_REDIS_SOCKET_TIMEOUT", "0.05")),
        },
    }

WECHAT_OAUTH = {
    "APPS": {
        "mp": {"KIND": "mp", "APP_ID": MP_APP_ID, "APP_SECRET": MP_APP_SECRET},
        "web": {"KIND": "open", "APP_ID": WEB_APP_ID, "APP_SECRET": WEB_APP_SECRET},
        "mini": {"KIND": "miniprogram", "APP_ID": MINI_APP_ID, "APP_SECRET": MINI_APP_SECRET},
        "corp": {
            "KIND": "wecom",
            "CORP_ID": WECOM_CORP_ID,
            "AGENT_ID": WECOM_AGENT_ID,
            "SECRET": WECOM_SECRET,
            "SCOPE": "snsapi_base",
        },
    },
    "DEFAULT_APP": "mp",
    "API_BASE_URL": FAKE_URL,
    "AUTHORIZE_URL": f"{FAKE_URL}/connect/oauth2/authorize",
    "QRCONNECT_URL": f"{FAKE_URL}/connect/qrconnect",
    "WECOM_API_BASE_URL": FAKE_URL,
    "WECOM_SSO_URL": f"{FAKE_URL}/wwlogin/sso/login",
    "CACHE_ALIAS": "wechat" if _redis else None,
    # Everything else at its default: snsapi_base (mp), snsapi_login (web), TIMEOUT
    # (3.05, 5.0), DEDUPE_WINDOW 60 s, one user per unionid across the apps, the WeCom app
    # token shared through the database (and the cache).
}
if ASYNC_VIEWS is not None:  # python -m bench.storm --async-views (True) / --sync-views (False)
    WECHAT_OAUTH["ASYNC_VIEWS"] = ASYNC_VIEWS
