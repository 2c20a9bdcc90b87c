"""WSGI entry of both allauth sites (``gunicorn tests.allauth_site.wsgi``); DJANGO_SETTINGS_MODULE
picks which (settings_stock or settings_dropin)."""

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
