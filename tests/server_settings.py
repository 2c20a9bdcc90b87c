"""Settings of the Django server processes the end-to-end tests start (tests/live_servers.py).

The test settings, pointed at what the test process hands over in one JSON environment
variable (:data:`CONFIG_VARIABLE`): the database (the pytest-created test database) and the
``WECHAT_OAUTH`` dict (the fake WeChat of the test process), and optionally extra caches.
Every instance gets the same SECRET_KEY (that of tests.settings) and the same database, so a
state issued by one verifies on another and database sessions are shared.
"""

import json
import os

from tests.services import CONFIG_VARIABLE
from tests.settings import *  # noqa: F403
from tests.settings import LOCMEM

_config = json.loads(os.environ[CONFIG_VARIABLE])

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
DATABASES = {"default": _config["database"]}
WECHAT_OAUTH = _config["wechat_oauth"]
SESSION_ENGINE = "django.contrib.sessions.backends.db"
# A per-process default cache keeps the servers independent of Redis, unless the test hands
# over caches of its own (the cache front's tests: a shared django-redis alias).
CACHES = {"default": LOCMEM, **_config.get("caches", {})}

# Stock Django sends errors to the console only when DEBUG is on: log them (and the app's own
# records) to stderr, with the logger's name, so a failing test can show what happened.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"named": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "named"}},
    "loggers": {
        "django.request": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "django.server": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "wechat_oauth": {"handlers": ["stderr"], "level": "DEBUG", "propagate": False},
    },
}
