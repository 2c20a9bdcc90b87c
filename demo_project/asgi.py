"""ASGI entry point of the demo (``python manage.py demo --asgi``, or any ASGI server):
``/fake-wechat/...`` goes to the fake WeChat, the rest to Django, as in demo_project/wsgi.py.

The fake is the same in-process one (:func:`demo_project.fake.fake_app`), run by
:class:`~wechat_oauth.testing.asgi.WsgiInThreads`: each of its requests in a thread of a pool,
so the code exchange, a request from a Django view to this very server, is answered while the
view waits. Static files are served as runserver serves them (DEBUG), for the admin's pages.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")
django_application = get_asgi_application()  # sets Django up: the imports below need settings

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from demo_project.fake import MOUNT, fake_app  # noqa: E402
from wechat_oauth.testing.asgi import ASGIApp, Receive, Scope, Send, WsgiInThreads  # noqa: E402


class MountFakeWeChatASGI:
    """Send HTTP requests under ``mount`` to ``fake`` (``root_path`` extended by the mount),
    everything else to ``site``."""

    def __init__(self, site: ASGIApp, fake: ASGIApp, mount: str = MOUNT) -> None:
        self.site = site
        self.fake = fake
        self.mount = mount.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            root = scope.get("root_path", "") or ""
            path = scope.get("path", "")
            within = path[len(root) :] if root and path.startswith(root) else path
            if within == self.mount or within.startswith(self.mount + "/"):
                await self.fake({**scope, "root_path": root + self.mount}, receive, send)
                return
        await self.site(scope, receive, send)


site = ASGIStaticFilesHandler(django_application) if settings.DEBUG else django_application
application = MountFakeWeChatASGI(site, WsgiInThreads(fake_app()))
