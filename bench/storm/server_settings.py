"""Settings shared by the two storm sites (imported by guarded/settings.py and naive/settings.py).

The bench process hands everything over in environment variables (``STORM_*``); the app
secret too, so that it never shows in ``ps``. Both sites get the same middleware (plus this
app's for the guarded one), the same database (``STORM_DB_ENGINE``: PostgreSQL, MariaDB or
SQLite with Django's default settings), database sessions, the same ``CONN_MAX_AGE`` (Django's default 0
unless ``--conn-max-age`` says otherwise) and the same SQL-counting middleware (active only
for requests that ask for it).
"""

import os

SITE = os.environ.get("STORM_SITE", "guarded")
SECRET_KEY = os.environ.get("STORM_SECRET_KEY", "storm-bench-only")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]
MIDDLEWARE = [
    # Outermost, so that its count includes the session save of SessionMiddleware.
    "bench.storm.serverside.SQLCountMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
SESSION_ENGINE = "django.contrib.sessions.backends.db"
LOGIN_REDIRECT_URL = "/whoami/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The database: STORM_DB_ENGINE postgres, mariadb or sqlite (bench/storm/databases.py).
ENGINE = os.environ.get("STORM_DB_ENGINE", "postgres")
NAME = os.environ.get("STORM_DB_NAME", f"wechat_oauth_storm_{SITE}")
# Django's default (a connection per request) unless the run asks for persistent ones.
CONN_MAX_AGE = int(os.environ.get("STORM_CONN_MAX_AGE", "0"))
if ENGINE == "sqlite":
    # Django's default settings: no transaction_mode, the default timeout. Only the file is
    # ours: every instance and worker of the site opens it.
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": NAME, "CONN_MAX_AGE": CONN_MAX_AGE}
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": {"postgres": "django.db.backends.postgresql", "mariadb": "django.db.backends.mysql"}[
                ENGINE
            ],
            "HOST": os.environ.get("STORM_DB_HOST", "127.0.0.1"),
            "PORT": os.environ.get("STORM_DB_PORT", "5432" if ENGINE == "postgres" else "3306"),
            "USER": os.environ.get("STORM_DB_USER", "postgres" if ENGINE == "postgres" else "root"),
            "PASSWORD": os.environ.get("STORM_DB_PASSWORD", ""),
            "NAME": NAME,
            "CONN_MAX_AGE": CONN_MAX_AGE,
            # PostgreSQL: which worker a backend belongs to (settings are imported after
            # gunicorn's fork): the worker-kill scenario finds the holder of an exchange in
            # pg_stat_activity by it. MariaDB: utf8mb4 (the worker is found by its client port).
            "OPTIONS": (
                {"application_name": f"storm-{SITE}-{os.getpid()}"}
                if ENGINE == "postgres"
                else {"charset": "utf8mb4"}
            ),
        }
    }
if os.environ.get("STORM_DB_DISABLE_SERVER_SIDE_CURSORS") == "1":
    # --pgbouncer (bench/storm/pgbouncer.py): transaction pooling has no cursors across transactions.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
if ENGINE == "mariadb":
    # MariaDB has no partial indexes (the token scrub's is ignored; see docs/06-operations.rst, Databases).
    SILENCED_SYSTEM_CHECKS = ["models.W037"]

# --async-views / --sync-views (STORM_ASYNC_VIEWS 1 / 0): the guarded site's ASYNC_VIEWS; unset
# (None) leaves the key out of WECHAT_OAUTH, the app's default (async views under ASGI).
ASYNC_VIEWS = {"1": True, "0": False}.get(os.environ.get("STORM_ASYNC_VIEWS", ""))

FAKE_URL = os.environ.get("STORM_FAKE_URL", "http://127.0.0.1:1")
# The site's four apps on the fake (bench/storm/apps.py): an Official Account ("mp"), a
# website app (QR login, "web"), a Mini Program ("mini") and a WeCom app ("corp": its corp id,
# agent id and the agent's secret).
MP_APP_ID = os.environ.get("STORM_MP_APP_ID", "wxstorm")
MP_APP_SECRET = os.environ.get("STORM_MP_APP_SECRET", "")
WEB_APP_ID = os.environ.get("STORM_WEB_APP_ID", "wxstormweb")
WEB_APP_SECRET = os.environ.get("STORM_WEB_APP_SECRET", "")
MINI_APP_ID = os.environ.get("STORM_MINI_APP_ID", "wxstormmini")
MINI_APP_SECRET = os.environ.get("STORM_MINI_APP_SECRET", "")
WECOM_CORP_ID = os.environ.get("STORM_WECOM_APP_ID", "wwstorm")
WECOM_SECRET = os.environ.get("STORM_WECOM_APP_SECRET", "")
WECOM_AGENT_ID = os.environ.get("STORM_WECOM_AGENT_ID", "1000002")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"named": {"format": "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "named"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False}},
}
