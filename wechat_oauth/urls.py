"""The app's URLs: ``path("wechat/", include("wechat_oauth.urls"))``.

``login/``, ``callback/`` and ``<app>/session/`` each have a sync view (:mod:`.views`) and an
async one (:mod:`.async_views`). Which one serves a request is decided when its URL is
resolved, by the ASYNC_VIEWS setting: ``None`` (the default) gives a request that Django
handles in an event loop (ASGI: uvicorn, daphne, granian) the async view, provided httpx (the
``[async]`` extra) is installed, and any other (WSGI) the sync one, so one urls.py serves both
deployments; ``True`` or ``False`` forces one kind.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from django.urls import URLPattern, path
from django.urls.resolvers import ResolverMatch, RoutePattern

from . import async_views, views
from .conf import app_settings

app_name = "wechat_oauth"


def use_async_views() -> bool:
    """Whether the request being resolved gets the async views (see the module docstring)."""
    choice = app_settings.ASYNC_VIEWS
    if choice is not None:
        return bool(choice)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return _httpx_installed()


@functools.cache
def _httpx_installed() -> bool:
    from .async_client import httpx_installed

    return httpx_installed()


class SyncOrAsyncPattern(URLPattern):
    """A URL served by ``view`` or, when :func:`use_async_views`, by ``async_view``."""

    def __init__(
        self, route: str, view: Callable[..., Any], async_view: Callable[..., Any], name: str
    ) -> None:
        super().__init__(RoutePattern(route, name=name, is_endpoint=True), view, name=name)
        self.async_view = async_view

    def resolve(self, path: str) -> ResolverMatch | None:
        match = super().resolve(path)
        if match is None or not use_async_views():
            return match
        return ResolverMatch(
            self.async_view,
            match.args,
            match.kwargs,
            match.url_name,
            route=match.route,
            # Attributes since Django 4.1; django-stubs has them as arguments only.
            captured_kwargs=match.captured_kwargs,  # type: ignore[attr-defined]
            extra_kwargs=match.extra_kwargs,  # type: ignore[attr-defined]
        )


either = SyncOrAsyncPattern  # reads well in urlpatterns: either(route, sync, async, name=...)


urlpatterns = [
    # DEFAULT_APP's login and callback.
    either("login/", views.login, async_views.login, name="login"),
    either("callback/", views.callback, async_views.callback, name="callback"),
    path("confirm/", views.confirm, name="confirm"),
    path("error/", views.error, name="error"),
    path("qr/", views.qr_panel, name="qr"),
    # Any configured app's (WECHAT_OAUTH["APPS"]): reverse("wechat_oauth:login",
    # kwargs={"app": "web"}).
    either("<slug:app>/login/", views.login, async_views.login, name="login"),
    either("<slug:app>/callback/", views.callback, async_views.callback, name="callback"),
    path("<slug:app>/qr/", views.qr_panel, name="qr"),
    # A Mini Program's login (KIND "miniprogram"): JSON in, a session token out.
    either("<slug:app>/session/", views.session, async_views.session, name="session"),
    path("<slug:app>/session/revoke/", views.revoke_session, name="session_revoke"),
]
