"""WSGI entry point of the demo: ``/fake-wechat/...`` goes to the fake WeChat, the rest to Django.

``WSGI_APPLICATION`` names ``application``, so ``runserver`` (and the demo command) serve both.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")

from demo_project.fake import MOUNT, fake_app

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class MountFakeWeChat:
    """Send requests under ``mount`` to ``fake`` (SCRIPT_NAME/PATH_INFO moved), others to ``site``."""

    def __init__(self, site: WSGIApp, fake: WSGIApp, mount: str = MOUNT) -> None:
        self.site = site
        self.fake = fake
        self.mount = mount.rstrip("/")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == self.mount or path.startswith(self.mount + "/"):
            environ = {
                **environ,
                "SCRIPT_NAME": environ.get("SCRIPT_NAME", "").rstrip("/") + self.mount,
                "PATH_INFO": path[len(self.mount) :] or "/",
            }
            return self.fake(environ, start_response)
        return self.site(environ, start_response)


application = MountFakeWeChat(get_wsgi_application(), fake_app())
