"""Settings of the test suite.

SQLite and the local-memory cache by default, so ``pytest`` works on a machine with only
Python. ``WECHAT_OAUTH_TEST_DB=postgres`` (or ``mariadb``) and ``WECHAT_OAUTH_TEST_CACHE=redis``
make PostgreSQL (MariaDB) and Redis the default database and cache. Whatever the defaults, a
reachable PostgreSQL, MariaDB and Redis are also offered as the extra aliases ``postgres``,
``mariadb`` and ``redis`` for the tests that need them (marked ``postgres`` / ``mariadb`` /
``redis``), and SQLite stays available as ``sqlite``: every run covers every database.

SQLite is configured as Django's ``startproject`` does (no ``transaction_mode``, the default
``timeout``): the app must not depend on anything more. Only the file is ours, so that threads
and processes share it.
"""

import os
import tempfile
from typing import Any

from tests import services

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "wechat_oauth",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "wechat_oauth.middleware.WeChatOAuthMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "wechat_oauth.backends.WeChatBackend",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

WECHAT_OAUTH = {
    "APP_ID": "wxtestappid0000001",
    "APP_SECRET": "tests-app-secret-0123456789abcdef",
    "API_BASE_URL": "https://api.weixin.qq.com",
}

_sqlite_file = os.path.join(tempfile.gettempdir(), f"wechat_oauth_tests_{os.getpid()}.sqlite3")
SQLITE = {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": _sqlite_file,
    # A file, not Django's in-memory default: threads and processes must share it.
    "TEST": {"NAME": _sqlite_file},
}
POSTGRES = {
    "ENGINE": "django.db.backends.postgresql",
    **services.PG,
    "TEST": {"NAME": f"test_wechat_oauth_{os.getpid()}"},
}
if os.environ.get("WECHAT_OAUTH_TEST_MYSQL_DRIVER") == "pymysql":  # instead of mysqlclient
    import pymysql

    pymysql.install_as_MySQLdb()
MARIADB = {
    "ENGINE": "django.db.backends.mysql",
    **services.MARIADB,
    "OPTIONS": {"charset": "utf8mb4"},
    "TEST": {"NAME": f"test_wechat_oauth_{os.getpid()}", "CHARSET": "utf8mb4", "COLLATION": "utf8mb4_bin"},
}

_SERVERS = {
    "postgres": (POSTGRES, services.postgres_unavailable),
    "mariadb": (MARIADB, services.mariadb_unavailable),
}
_default = os.environ.get("WECHAT_OAUTH_TEST_DB", "sqlite")
# Annotated as Django's own (django-stubs' mypy plugin types settings.X by this module's values).
DATABASES: dict[str, dict[str, Any]] = {"default": _SERVERS[_default][0] if _default in _SERVERS else SQLITE}
if _default in _SERVERS:
    DATABASES["sqlite"] = SQLITE
for _alias, (_conf, _unavailable) in _SERVERS.items():
    if _alias != _default and _unavailable() is None:
        DATABASES[_alias] = _conf

LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
REDIS = {
    "BACKEND": "django_redis.cache.RedisCache",
    "LOCATION": services.REDIS_URL,
    "KEY_PREFIX": f"wechat-oauth-tests-{os.getpid()}",
    "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
}
CACHES: dict[str, dict[str, Any]] = {
    "default": REDIS if os.environ.get("WECHAT_OAUTH_TEST_CACHE") == "redis" else LOCMEM
}
if services.redis_unavailable() is None:
    CACHES["redis"] = REDIS
if services.redis_cluster_unavailable() is None:
    # The 3-master cluster the tests start on first use (the redis_cluster fixture).
    CACHES["redis_cluster"] = {
        **REDIS,
        "LOCATION": f"redis://127.0.0.1:{services.redis_cluster_ports()[0]}",
        "OPTIONS": {
            **REDIS["OPTIONS"],
            "CONNECTION_FACTORY": "wechat_oauth.contrib.redis_cluster.ClusterConnectionFactory",
        },
    }

STATIC_URL = "/static/"
LOGIN_REDIRECT_URL = "/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Django 6.1 asks for its mail settings to be configured (RemovedInDjango2028Warning when the
# AdminEmailHandler mails an error); older versions ignore the setting. Tests use locmem anyway.
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
# Django 6.1 runs model checks for every alias: on MariaDB the token scrub's partial index is
# ignored (models.W037; the scrub then walks the first_seen_at index). See docs/06-operations.rst, Databases.
SILENCED_SYSTEM_CHECKS = ["models.W037"]
