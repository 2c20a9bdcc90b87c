"""``WeChatOAuthMiddleware``: any page can be WeChat's redirect_uri; ``request.wechat``.

Place it after ``SessionMiddleware`` and ``AuthenticationMiddleware`` (a system check says so).

* A request to any path that carries ``code`` and a ``state`` issued for that very page is
  completed like the callback view, then redirected to the same page without WeChat's
  parameters. A ``state`` that was not issued for the page is left alone: the page may use
  parameters of those names for its own purposes.
* ``AUTO_LOGIN_PATHS``: anonymous visitors inside WeChat's browser (``MicroMessenger`` in the
  User-Agent) on matching paths are sent to the login view.
* ``Authorization: Bearer <token>`` (a Mini Program's session token, see
  :mod:`~wechat_oauth.miniprogram`) makes ``request.user`` that token's user.
* ``request.wechat`` is the visitor's :class:`~wechat_oauth.flow.WeChatIdentity` from the
  session, or None: usable with ``snsapi_base`` and no Django user at all.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from . import async_views, flow, miniprogram
from .conf import app_settings
from .exceptions import InvalidState, WeChatOAuthError
from .responses import (
    DATABASE_KEY,
    error_url,
    log_database_error,
    log_error,
    protect_callback_response,
)
from .state import callback_paths, verify_state


class WeChatOAuthMiddleware:
    """Sync and async (``sync_and_async_middleware``): under ASGI a callback on any page is
    completed as the async callback view does, awaiting the exchange."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        request.wechat = SimpleLazyObject(lambda: flow.identity_of(request))  # type: ignore[attr-defined]
        self._authenticate_bearer(request)
        response = self._complete_callback(request) or self._auto_login(request)
        return response or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        request.wechat = SimpleLazyObject(lambda: flow.identity_of(request))  # type: ignore[attr-defined]
        await sync_to_async(self._authenticate_bearer)(request)
        response = await self._acomplete_callback(request)
        if response is None:
            response = await sync_to_async(self._auto_login)(request)
        return response or await self.get_response(request)

    def _authenticate_bearer(self, request: HttpRequest) -> None:
        """A Mini Program's ``Authorization: Bearer <session token>``: its user is the
        request's user (an invalid token changes nothing: the request stays anonymous)."""
        token = miniprogram.bearer_token(request)
        if token is None:
            return
        account = miniprogram.account_for_token(token)
        if account is not None:
            request.user = account.user

    def _complete_callback(self, request: HttpRequest) -> HttpResponse | None:
        target = self._callback_target(request)
        if target is None:
            return None
        try:
            received = flow.read_callback(request.GET)
            response = flow.complete_login(
                request, received, target=target, redirect_uri=request.build_absolute_uri
            )
        except (WeChatOAuthError, DatabaseError) as error:
            response = _error_redirect(error, target)
        return protect_callback_response(response)

    async def _acomplete_callback(self, request: HttpRequest) -> HttpResponse | None:
        target = self._callback_target(request)
        if target is None:
            return None
        try:
            received = flow.read_callback(request.GET)
            response = await async_views.acomplete_login(
                request, received, target=target, redirect_uri=request.build_absolute_uri
            )
        except (WeChatOAuthError, DatabaseError) as error:
            response = _error_redirect(error, target)
        return protect_callback_response(response)

    def _callback_target(self, request: HttpRequest) -> str | None:
        """The page a callback on this request completes (this page without WeChat's
        parameters), or None when the request is not such a callback."""
        # GET only: a HEAD from a link scanner or a POST must not complete (and answer) a login.
        if request.method != "GET" or "state" not in request.GET or request.path_info in callback_paths():
            return None
        target = flow.without_oauth_parameters(request)
        try:
            verify_state(request.GET.get("state", ""), target=target, max_age=float("inf"))
        except InvalidState:
            return None  # not a state issued for this page: not ours to handle
        return target

    def _auto_login(self, request: HttpRequest) -> HttpResponse | None:
        patterns = _compiled(tuple(app_settings.AUTO_LOGIN_PATHS))
        if not patterns or request.method != "GET":
            return None
        if "MicroMessenger" not in request.headers.get("User-Agent", ""):
            return None
        if flow.identity_of(request) is not None or request.user.is_authenticated:
            return None
        if not any(pattern.search(request.path_info) for pattern in patterns):
            return None
        query = urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(f"{reverse('wechat_oauth:login')}?{query}")


def _error_redirect(error: Exception, target: str) -> HttpResponse:
    """The error page is shown on a URL without the code (this one may be shared or logged)."""
    if isinstance(error, DatabaseError):
        log_database_error(error)
        return HttpResponseRedirect(error_url(DATABASE_KEY, target=target))
    assert isinstance(error, WeChatOAuthError)
    log_error(error)
    return HttpResponseRedirect(error_url(error.key, target=target))


@functools.lru_cache(maxsize=8)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """AUTO_LOGIN_PATHS compiled once per value of the setting, not on every request."""
    return tuple(re.compile(pattern) for pattern in patterns)
