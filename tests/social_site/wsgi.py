"""The social-auth site as a WSGI application (``gunicorn tests.social_site.wsgi``), with
DJANGO_SETTINGS_MODULE naming ``tests.social_site.settings_dropin`` or ``settings_stock``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.social_site.settings_dropin")
application = get_wsgi_application()
