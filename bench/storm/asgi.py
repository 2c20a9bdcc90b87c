"""ASGI entry of the storm's sites under ``python -m bench.storm --asgi`` (gunicorn with uvicorn
workers); DJANGO_SETTINGS_MODULE picks which: the guarded or naive site, or a library site's
mode (their settings modules are the same as under WSGI)."""

from django.core.asgi import get_asgi_application

application = get_asgi_application()
