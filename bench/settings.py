"""Django settings of the benchmarks: PostgreSQL (the production target); Redis for the front."""

import os

SECRET_KEY = "bench-only"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "wechat_oauth",
]
# What the admin needs (bench/admin_changelist.py renders the change list with the test Client).
ROOT_URLCONF = "bench.urls"
ALLOWED_HOSTS = ["testserver"]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
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
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "wechat_oauth.backends.WeChatBackend",
]
LOGIN_REDIRECT_URL = "/"
