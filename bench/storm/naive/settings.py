"""The naive baseline site: a WeChat login as tutorials write it (see views.py)."""

from bench.storm.server_settings import *  # noqa: F403
from bench.storm.server_settings import APP_ID, APP_SECRET, FAKE_URL

ROOT_URLCONF = "bench.storm.naive.urls"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
NAIVE_WECHAT = {
    "APP_ID": APP_ID,
    "APP_SECRET": APP_SECRET,
    "API_BASE_URL": FAKE_URL,
    "AUTHORIZE_URL": f"{FAKE_URL}/connect/oauth2/authorize",
}
