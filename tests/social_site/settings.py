"""What both social-auth sites share: social-auth-app-django set up as its documentation says.

Databases and caches are the test suite's (tests/settings.py: SQLite by default,
``WECHAT_OAUTH_TEST_DB=postgres|mariadb``, ``WECHAT_OAUTH_TEST_CACHE=redis``). A server of its
own (a benchmark) can point the site at a fake WeChat through the environment:

* ``SOCIAL_SITE_FAKE_WECHAT``: the fake's base URL (``python -m wechat_oauth.testing``): the
  drop-in's WECHAT_OAUTH hosts, and the stock backends' URL settings (plus its hard-coded
  userinfo URL, see :mod:`tests.social_site.fake_routes`);
* ``SOCIAL_SITE_DATABASE``: a JSON dict, the default database (needed by a server: the suite's
  SQLite file is named after the test process).

For instance, the drop-in site and the stock site side by side::

    python -m wechat_oauth.testing --port 8771 --latency 0.08 \
        --app-id wxsocialmp00000001 --app-secret social-site-mp-secret-0123456789ab
    python -c "from wechat_oauth.testing.remote import RemoteFakeWeChat; RemoteFakeWeChat(
        'http://127.0.0.1:8771').add_app('wxsocialweb0000001', 'social-site-web-secret-0123456789a')"
    export SOCIAL_SITE_FAKE_WECHAT=http://127.0.0.1:8771
    for mode in dropin stock; do
        SOCIAL_SITE_DATABASE='{"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/'$mode'.db"}' \
        DJANGO_SETTINGS_MODULE=tests.social_site.settings_$mode python -m django migrate
    done
    SOCIAL_SITE_DATABASE=... DJANGO_SETTINGS_MODULE=tests.social_site.settings_dropin \
        gunicorn -w 2 -b 127.0.0.1:8001 tests.social_site.wsgi      # settings_stock: the other

A login: GET /login/?next=/whoami/ (a form), POST /login/weixinapp/ with its CSRF token, the
fake's authorize URL (``&fake_openid=...`` skips its page), the callback; GET /whoami/ shows the
user and its accounts.
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

SECRET_KEY = "social-site-tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.social_site.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en"
STATIC_URL = "/static/"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "social_django",
    # The drop-in's fence (OAuthCodeUse); the stock site has it too, unused, so that one
    # database serves both.
    "wechat_oauth",
    "tests.social_site",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # social-auth's documented error handling: its exceptions become a message and a
    # redirect to LOGIN_ERROR_URL.
    "social_django.middleware.SocialAuthExceptionMiddleware",
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
                "social_django.context_processors.backends",
                "social_django.context_processors.login_redirect",
            ]
        },
    }
]

#: The site's WeChat apps, as social-auth names their settings.
SOCIAL_AUTH_WEIXINAPP_KEY = "wxsocialmp00000001"
SOCIAL_AUTH_WEIXINAPP_SECRET = "social-site-mp-secret-0123456789ab"
# weixinapp inherits weixin's snsapi_login, which WeChat's authorize page refuses: a working
# site names its scope and ignores the default.
SOCIAL_AUTH_WEIXINAPP_SCOPE = ["snsapi_userinfo"]
SOCIAL_AUTH_WEIXINAPP_IGNORE_DEFAULT_SCOPE = True
SOCIAL_AUTH_WEIXIN_KEY = "wxsocialweb0000001"
SOCIAL_AUTH_WEIXIN_SECRET = "social-site-web-secret-0123456789a"

SOCIAL_AUTH_URL_NAMESPACE = "social"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
SOCIAL_AUTH_LOGIN_ERROR_URL = "/login-error/"

WECHAT_OAUTH: dict = {}

FAKE_WECHAT = os.environ.get("SOCIAL_SITE_FAKE_WECHAT", "").rstrip("/")
if FAKE_WECHAT:
    WECHAT_OAUTH = {
        "API_BASE_URL": FAKE_WECHAT,
        "AUTHORIZE_URL": f"{FAKE_WECHAT}/connect/oauth2/authorize",
        "QRCONNECT_URL": f"{FAKE_WECHAT}/connect/qrconnect",
    }
if os.environ.get("SOCIAL_SITE_DATABASE"):
    DATABASES = {"default": json.loads(os.environ["SOCIAL_SITE_DATABASE"])}
