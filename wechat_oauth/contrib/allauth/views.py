"""The providers' views: allauth's own login view, the drop-in's callback and confirmation.

The callback, step by step (see :mod:`wechat_oauth.flow` for the app's own, which this follows):
the state (signed, no session: :mod:`.redirect`), the browser binding, the code through the
fence with the ``SocialApp``'s client (every duplicate gets the first request's exchange, the
profile included), snapshot users refused, then allauth's completion (:mod:`.completion`). A
code that is spent (Back, refresh) sends a logged-in browser on to ``next`` and restarts an
anonymous one's login once. Every error of the WeChat side is the app's readable page (400,
403, 429, 502, 503; never a 500), logged once and redacted; consent refused and what allauth's
own completion decides (a closed signup, an adapter's refusal) stay allauth's pages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_POST

from ...binding import Binding, check_binding, fingerprint
from ...budget import CodeBudget
from ...exceptions import (
    BindingMissing,
    CodeSpent,
    ConfigurationError,
    ExpiredState,
    SnapshotUser,
    WeChatOAuthError,
)
from ...flow import Callback, read_callback
from ...guard import exchange_once
from ...responses import database_error_response, error_response, protect_callback_response
from . import completion
from .client import client_for, wechat_app
from .redirect import DEFAULT_PROCESS, start_login, state_from_query, verify

logger = logging.getLogger("wechat_oauth.login")

#: allauth's ``AuthProcess.CONNECT``: add the identity to the logged-in user.
CONNECT = "connect"


def provider_of(request: HttpRequest, provider_id: str) -> Any:
    """The provider instance of ``provider_id`` with its ``SocialApp`` (404 without one;
    several visible apps: ConfigurationError)."""
    from allauth.socialaccount.adapter import get_adapter
    from allauth.socialaccount.models import SocialApp
    from django.core.exceptions import MultipleObjectsReturned

    try:
        return get_adapter(request).get_provider(request, provider_id)
    except SocialApp.DoesNotExist:
        raise Http404(f"No SocialApp for provider {provider_id}") from None
    except MultipleObjectsReturned:
        raise ConfigurationError(f"Several visible SocialApps for provider {provider_id}") from None


def retry_url(request: HttpRequest, provider: Any, state: dict[str, Any]) -> str:
    """The error page's *Log in again*: the provider's login view, with the same next/process
    (allauth's login view checks ``next`` again); none without a provider."""
    if provider is None:
        return ""
    params = {}
    if state.get("next"):
        params["next"] = str(state["next"])
    if state.get("process", DEFAULT_PROCESS) != DEFAULT_PROCESS:
        params["process"] = str(state["process"])
    return str(provider.get_login_url(request, **params))


def start_or_error_page(request: HttpRequest, provider: Any, state: dict[str, Any]) -> HttpResponse:
    """The login start, or the error page of a provider that cannot start one (its scope, its
    SocialApp's credentials)."""
    try:
        return start_login(request, provider, state)
    except WeChatOAuthError as error:
        return error_response(request, error, target="", retry="")


def _callback(request: HttpRequest, provider_id: str) -> HttpResponse:
    state: dict[str, Any] = {"process": DEFAULT_PROCESS}
    provider = None
    try:
        provider = provider_of(request, provider_id)
        state = state_from_query(request.GET)
        received = read_callback(request.GET)
        response = _complete(request, provider, received, state)
    except WeChatOAuthError as error:
        response = error_response(request, error, target="", retry=retry_url(request, provider, state))
    except DatabaseError as error:
        response = database_error_response(
            request, error, target="", retry=retry_url(request, provider, state)
        )
    return protect_callback_response(response)


def _complete(request: HttpRequest, provider: Any, received: Callback, state: dict[str, Any]) -> HttpResponse:
    from allauth.socialaccount.helpers import render_authentication_error
    from allauth.socialaccount.providers.base import AuthError

    app = wechat_app(provider)
    try:
        login = verify(app, received.state, state)
    except ExpiredState:
        if _signed_in(request):  # a refresh, long after the login
            return completion.continue_to(request, state)
        raise
    if received.code is None:  # consent refused: WeChat sends the state alone
        return render_authentication_error(
            request, provider, error=AuthError.CANCELLED, extra_context={"state": state}
        )
    binding = check_binding(request, login)  # before the code is spent: a refusal costs nothing
    unbound = binding is Binding.UNBOUND
    if unbound and state.get("process") == CONNECT:
        raise BindingMissing("An account is connected only in the browser that asked for it")
    # Read the session before waiting for the exchange: the first request's login deletes it.
    request.session.keys()
    try:
        exchange = exchange_once(
            received.code,
            client=client_for(provider, app),
            state=received.state,
            resent=received.resent,
            fingerprint=fingerprint(request),
            budget=CodeBudget.for_request(request, attempt=f"{app.app_id}:{login.nonce}"),
        )
    except CodeSpent:
        if _signed_in(request):  # Back or refresh after the login
            return completion.continue_to(request, state)
        if login.attempt == 0:
            logger.info("code already spent: restarting the login once")
            return start_login(request, provider, state, attempt=1, app=app)
        raise
    if exchange.token.is_snapshot_user:
        raise SnapshotUser()
    return completion.finish(
        request, provider, completion.WeixinLogin.of(exchange.token, state), unbound=unbound
    )


def _confirm(request: HttpRequest, provider_id: str) -> HttpResponse:
    provider = None
    try:
        provider = provider_of(request, provider_id)
        return completion.confirmed(request, provider)
    except WeChatOAuthError as error:
        return error_response(request, error, target="", retry=retry_url(request, provider, {}))
    except DatabaseError as error:
        return database_error_response(request, error, target="", retry=retry_url(request, provider, {}))


def _signed_in(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


def callback_view(provider_id: str) -> Callable[[HttpRequest], HttpResponse]:
    @require_GET
    @never_cache
    @login_not_required
    @transaction.non_atomic_requests  # the exchange must commit on its own, before the response
    def callback(request: HttpRequest) -> HttpResponse:
        return _callback(request, provider_id)

    return callback


def confirm_view(provider_id: str) -> Callable[[HttpRequest], HttpResponse]:
    @require_POST
    @csrf_protect
    @never_cache
    @login_not_required
    @transaction.non_atomic_requests
    def confirm(request: HttpRequest) -> HttpResponse:
        return _confirm(request, provider_id)

    return confirm


def urlpatterns_for(provider_class: Any) -> list[Any]:
    """A provider's URLs: allauth's paths and names (``<id>_login``, ``<id>_callback``) and the
    confirmation of an unbound login (``<id>_confirm``)."""
    from allauth.socialaccount.providers.oauth2.views import OAuth2LoginView

    provider_id = provider_class.id
    return [
        path(
            f"{provider_class.get_slug()}/",
            include(
                [
                    path(
                        "login/",
                        OAuth2LoginView.adapter_view(provider_class.oauth2_adapter_class),
                        name=f"{provider_id}_login",
                    ),
                    path("login/callback/", callback_view(provider_id), name=f"{provider_id}_callback"),
                    path("login/confirm/", confirm_view(provider_id), name=f"{provider_id}_confirm"),
                ]
            ),
        )
    ]
