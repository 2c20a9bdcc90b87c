"""What both allauth sites share: django-allauth set up as its documentation says, with an
Official Account on provider ``weixin`` (its AUTHORIZE_URL the authorize page, scope
``snsapi_userinfo``), as sites on allauth's Weixin provider configure one for WeChat's browser.

Databases and caches are the test suite's (tests/settings.py: SQLite by default,
``WECHAT_OAUTH_TEST_DB=postgres|mariadb``, ``WECHAT_OAUTH_TEST_CACHE=redis``). A server of its
own (the tests' or a benchmark's) reads the environment:

* ``ALLAUTH_SITE_FAKE_WECHAT``: a fake WeChat's base URL (``python -m wechat_oauth.testing``):
  the authorize page and API host of both providers (the stock one's hard-coded API URLs too, see
  :mod:`tests.allauth_site.apps`); unset: WeChat's own;
* ``ALLAUTH_SITE_DATABASE``: a JSON dict, the default database (and the only one);
* ``ALLAUTH_SITE_APPS``: a JSON dict, provider id -> ``{"client_id", "secret"}``: the
  ``SocialApp`` in settings (``SOCIALACCOUNT_PROVIDERS[...]["APPS"]``) instead of a database row;
* ``ALLAUTH_SITE_LINK_BY_UNIONID=1``: the drop-in's unionid linking on for both its providers.
"""

import json
import os

from tests.settings import (  # noqa: F401  (the suite's services)
    CACHES,
    DATABASES,
    MAILERS,
    PASSWORD_HASHERS,
    SILENCED_SYSTEM_CHECKS,
)

SECRET_KEY = "allauth-site-tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.allauth_site.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en"
SITE_ID = 1

if os.environ.get("ALLAUTH_SITE_DATABASE"):
    DATABASES = {"default": json.loads(os.environ["ALLAUTH_SITE_DATABASE"])}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.sites",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    # settings_stock / settings_dropin add the Weixin provider here.
    "tests.allauth_site",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
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

LOGIN_REDIRECT_URL = "/whoami/"
SESSION_ENGINE = "django.contrib.sessions.backends.db"

FAKE_WECHAT = os.environ.get("ALLAUTH_SITE_FAKE_WECHAT", "").rstrip("/")
_PAGES = FAKE_WECHAT or "https://open.weixin.qq.com"
SOCIALACCOUNT_PROVIDERS = {
    "weixin": {
        "AUTHORIZE_URL": f"{_PAGES}/connect/oauth2/authorize",
        "SCOPE": ["snsapi_userinfo"],
    },
    "weixin_mp": {},  # the drop-in's Official Account provider; unknown to the stock site
}
if FAKE_WECHAT:
    for _provider in SOCIALACCOUNT_PROVIDERS.values():
        # The drop-in's API host (allauth's own provider has its URLs in its code).
        _provider["API_BASE_URL"] = FAKE_WECHAT
    SOCIALACCOUNT_PROVIDERS["weixin_mp"]["AUTHORIZE_URL"] = f"{FAKE_WECHAT}/connect/oauth2/authorize"
for _name, _app in json.loads(os.environ.get("ALLAUTH_SITE_APPS") or "{}").items():
    SOCIALACCOUNT_PROVIDERS.setdefault(_name, {})["APPS"] = [_app]
if os.environ.get("ALLAUTH_SITE_LINK_BY_UNIONID") == "1":
    for _provider in SOCIALACCOUNT_PROVIDERS.values():
        _provider["LINK_BY_UNIONID"] = True

# Stock Django sends errors to the console only when DEBUG is on: log them (and the drop-in's
# records) to stderr, with the logger's name, so that a failing test can show what happened.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"named": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "named"}},
    "loggers": {
        "django.request": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "wechat_oauth": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}
