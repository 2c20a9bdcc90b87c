"""The naive baseline site: a WeChat login as tutorials write it (see views.py), with the same
four apps as the guarded site (an Official Account, a website app's QR login, a Mini Program
and a WeCom app)."""

from bench.storm.server_settings import *  # noqa: F403
from bench.storm.server_settings import (
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

ROOT_URLCONF = "bench.storm.naive.urls"
# Its one model: the bare fence of the profile's floor (models.py).
INSTALLED_APPS = [*INSTALLED_APPS, "bench.storm.naive"]
# Innermost: the per-phase profile tells the view from the middleware (bench/storm/phases.py).
MIDDLEWARE = [*MIDDLEWARE, "bench.storm.phases.ViewMarkMiddleware"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
NAIVE_WECHAT = {
    "API_BASE_URL": FAKE_URL,
    "APPS": {
        "mp": {
            "APP_ID": MP_APP_ID,
            "APP_SECRET": MP_APP_SECRET,
            "SCOPE": "snsapi_base",
            "PAGE_URL": f"{FAKE_URL}/connect/oauth2/authorize",
            "CALLBACK": "/wechat/callback/",
        },
        "web": {
            "APP_ID": WEB_APP_ID,
            "APP_SECRET": WEB_APP_SECRET,
            "SCOPE": "snsapi_login",
            "PAGE_URL": f"{FAKE_URL}/connect/qrconnect",
            "CALLBACK": "/wechat/web/callback/",
        },
        "mini": {"APP_ID": MINI_APP_ID, "APP_SECRET": MINI_APP_SECRET},
        "corp": {
            "APP_ID": WECOM_CORP_ID,
            "APP_SECRET": WECOM_SECRET,
            "AGENT_ID": WECOM_AGENT_ID,
            "SCOPE": "snsapi_base",
            "PAGE_URL": f"{FAKE_URL}/connect/oauth2/authorize",
            "SSO_URL": f"{FAKE_URL}/wwlogin/sso/login",
            "CALLBACK": "/wechat/corp/callback/",
        },
    },
}
