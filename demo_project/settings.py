"""Settings of the demo site: zero configuration, SQLite, no internet.

``python manage.py demo [addrport]`` serves the site and the fake WeChat from one process;
the command points the WECHAT_OAUTH URLs at the address it serves (see
:func:`demo_project.fake.serve_fake_wechat_at`). Environment variables:

* ``WECHAT_OAUTH_DEMO_DB``: path of the SQLite file (default ``demo_project/db.sqlite3``);
* ``WECHAT_OAUTH_DEMO_ORIGIN``: where the fake WeChat is reached (default
  ``http://127.0.0.1:8000``); the demo command sets it from its addrport;
* ``WECHAT_OAUTH_DEMO_DROP_IN``: ``allauth`` or ``social`` (``demo --drop-in`` sets it): the
  site is also set up django-allauth's or python-social-auth's way, and logs in through this
  app's drop-in for it too (see the end of this file, and :mod:`demo_project.drop_in`).

Not for production: the secret key and the app secrets are public.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from demo_project.drop_in import missing, requested
from demo_project.fake import DEFAULT_ORIGIN, ORIGIN_ENV, fake_wechat_urls

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "demo-only-not-secret-4f1c9a7e2b6d8035"  # a demo: public on purpose
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "wechat_oauth",
    "demo_project",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "wechat_oauth.middleware.WeChatOAuthMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "wechat_oauth.backends.WeChatBackend",
]

ROOT_URLCONF = "demo_project.urls"
# The fake WeChat is mounted in front of Django here; runserver uses it too.
WSGI_APPLICATION = "demo_project.wsgi.application"
ASGI_APPLICATION = "demo_project.asgi.application"  # manage.py demo --asgi

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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("WECHAT_OAUTH_DEMO_DB") or BASE_DIR / "db.sqlite3",
        # IMMEDIATE: a write transaction takes SQLite's write lock at BEGIN, so concurrent
        # callbacks queue in the busy handler (up to ``timeout`` seconds) instead of failing.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    },
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Three apps of one Open Platform account, all known to the fake WeChat (demo_project.fake builds
# it from here): the Official Account, logged in through inside WeChat (the default app), the
# website app, logged in through by scanning a QR code, and the Mini Program, whose wx.login()
# code the Mini Program page POSTs to <app>/session/. One person is one user of the site. Beside
# them a WeCom (企业微信) app, whose members log in through the SSO QR page (a desktop browser)
# or the in-app authorisation (inside WeCom); they are users of their own.
WECHAT_OAUTH = {
    "APPS": {
        "mp": {
            "KIND": "mp",
            "APP_ID": "wxdemo000000000001",
            "APP_SECRET": "demo-app-secret-0123456789abcdef",
            "SCOPE": "snsapi_userinfo",
        },
        "web": {
            "KIND": "open",
            "APP_ID": "wxdemo000000000002",
            "APP_SECRET": "demo-web-secret-0123456789abcdef",
        },
        "mini": {
            "KIND": "miniprogram",
            "APP_ID": "wxdemo000000000003",
            "APP_SECRET": "demo-mini-secret-0123456789abcdef",
        },
        "corp": {
            "KIND": "wecom",
            "CORP_ID": "wwdemo000000000001",
            "AGENT_ID": "1000002",
            "SECRET": "demo-wecom-secret-0123456789abcdef",
        },
    },
    "DEFAULT_APP": "mp",
    **fake_wechat_urls(os.environ.get(ORIGIN_ENV) or DEFAULT_ORIGIN),
}

LOGIN_REDIRECT_URL = "/"
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"

# runserver's access log prints every request line, and the callback's carries the code (and
# the fake's API requests the app secret): mask them as the app does for its own logs.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "wechat_oauth.redact.RedactingFilter"}},
    "formatters": {
        "server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
        "plain": {"format": "[{name}] {message}", "style": "{"},
    },
    "handlers": {
        "server": {"class": "logging.StreamHandler", "filters": ["redact"], "formatter": "server"},
        "console": {"class": "logging.StreamHandler", "filters": ["redact"], "formatter": "plain"},
    },
    "loggers": {
        "django.server": {"handlers": ["server"], "level": "INFO", "propagate": False},
        # "duplicate of code ... absorbed (gap 17 ms)" and friends: what the demo is about.
        "wechat_oauth": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "demo_project": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# -- Drop-in mode: the site also set up a library's own way ------------------------------------
# What a site on django-allauth or python-social-auth has, with this app's drop-in in place of
# the library's WeChat login; the demo's Official Account (app "mp", on the same fake WeChat)
# is the provider's app. The fake's URLs are not repeated here: both drop-ins take WeChat's
# hosts from WECHAT_OAUTH, which point at the fake (and follow the demo command's address).
try:
    _DROP_IN = requested()
except ValueError as error:
    raise ImproperlyConfigured(str(error)) from None
if _DROP_IN is not None and missing(_DROP_IN):
    raise ImproperlyConfigured(missing(_DROP_IN))
#: "allauth", "social", or "" (the plain demo).
DEMO_DROP_IN = _DROP_IN.name if _DROP_IN is not None else ""
_MP = WECHAT_OAUTH["APPS"]["mp"]

if DEMO_DROP_IN == "allauth":
    INSTALLED_APPS += [
        "django.contrib.sites",
        "allauth",
        "allauth.account",
        "allauth.socialaccount",
        # "allauth.socialaccount.providers.weixin",  # replaced by the drop-in ("wechat_oauth"
        "wechat_oauth.contrib.allauth",  # is in INSTALLED_APPS already)
    ]
    MIDDLEWARE += ["allauth.account.middleware.AccountMiddleware"]
    AUTHENTICATION_BACKENDS += ["allauth.account.auth_backends.AuthenticationBackend"]
    SITE_ID = 1
    # Provider weixin: the Official Account (its scope makes it one), its SocialApp in the
    # settings instead of a row made in the admin. URLs: accounts/ (demo_project/urls.py).
    SOCIALACCOUNT_PROVIDERS = {
        "weixin": {
            "SCOPE": [_MP["SCOPE"]],
            "APPS": [{"client_id": _MP["APP_ID"], "secret": _MP["APP_SECRET"]}],
        },
    }
elif DEMO_DROP_IN == "social":
    INSTALLED_APPS += ["social_django"]
    MIDDLEWARE += ["social_django.middleware.SocialAuthExceptionMiddleware"]
    # Was social_core.backends.weixin.WeixinOAuth2APP (backend weixinapp, inside WeChat).
    AUTHENTICATION_BACKENDS += ["wechat_oauth.contrib.social.backends.WeixinOAuth2APP"]
    # URLs: social/ (demo_project/urls.py): social:begin, social:complete.
    SOCIAL_AUTH_URL_NAMESPACE = "social"
    SOCIAL_AUTH_WEIXINAPP_KEY = _MP["APP_ID"]
    SOCIAL_AUTH_WEIXINAPP_SECRET = _MP["APP_SECRET"]
    SOCIAL_AUTH_WEIXINAPP_SCOPE = [_MP["SCOPE"]]
    SOCIAL_AUTH_LOGIN_ERROR_URL = "/"
