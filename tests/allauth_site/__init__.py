"""A site that logs in with django-allauth, configured allauth's own way (its settings, its URLs
under ``accounts/``, its templates, a ``SocialApp`` for provider ``weixin``).

* ``settings_stock``: the site as it is, with allauth's Weixin provider
  (``allauth.socialaccount.providers.weixin``);
* ``settings_dropin``: the same site after the README's two-line change (that provider replaced
  by ``wechat_oauth`` and ``wechat_oauth.contrib.allauth``);
* ``settings``: what both share.

tests/test_contrib_allauth*.py run under ``--ds tests.allauth_site.settings_dropin`` (that
database has every table of both); test_contrib_allauth_sites.py serves each module as a server
process of its own on that database. To serve one by hand, or from a benchmark (see settings.py
for the environment):

.. code-block:: sh

    python -m wechat_oauth.testing --port 8900 --app-id wxfake000000000001 --app-secret s3cret &
    export ALLAUTH_SITE_FAKE_WECHAT=http://127.0.0.1:8900
    export ALLAUTH_SITE_DATABASE='{"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/site.db"}'
    export ALLAUTH_SITE_APPS='{"weixin": {"client_id": "wxfake000000000001", "secret": "s3cret"}}'
    DJANGO_SETTINGS_MODULE=tests.allauth_site.settings_dropin python -m django migrate
    DJANGO_SETTINGS_MODULE=tests.allauth_site.settings_dropin python -m django runserver 127.0.0.1:8001
    DJANGO_SETTINGS_MODULE=tests.allauth_site.settings_stock python -m django runserver 127.0.0.1:8002

Both serve ``/`` (the login link), ``/accounts/...`` (allauth) and ``/whoami/`` (JSON: the user
and their social accounts). One database can serve both: the drop-in's migrations make every
table the stock site has, and the same person is the same user on both. A benchmark serves
each with ``gunicorn tests.allauth_site.wsgi`` and this environment (DJANGO_SETTINGS_MODULE
picks the site).
"""
