"""Django settings of the benchmarks: PostgreSQL (the production target); Redis for the front."""

import os

SECRET_KEY = "bench-only"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "wechat_oauth",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("WECHAT_OAUTH_BENCH_PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("WECHAT_OAUTH_BENCH_PG_PORT", "5432"),
        "USER": os.environ.get("WECHAT_OAUTH_BENCH_PG_USER", "postgres"),
        "NAME": os.environ.get("WECHAT_OAUTH_BENCH_PG_NAME", "wechat_oauth_bench"),
    }
}
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # The cache front of issue 5, switched on per measurement with CACHE_ALIAS.
    "front": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ.get("WECHAT_OAUTH_BENCH_REDIS", "redis://127.0.0.1:6379/14"),
        "KEY_PREFIX": "wechat-oauth-bench",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.05, "SOCKET_TIMEOUT": 0.05},
    },
}
WECHAT_OAUTH = {"APP_ID": "wxbench", "APP_SECRET": "bench-secret"}
