"""The async views: ``login``, ``callback`` and a Mini Program's ``session``, for ASGI.

The same flow as :mod:`.views`, step for step (:mod:`.flow`'s ``begin_login``,
``finish_login``, ...), with the code's exchange awaited through
:func:`~wechat_oauth.guard.aexchange_once`: httpx for the call to WeChat, and a duplicate
waits in the event loop instead of a thread. The database work before and after the exchange
(reading the session, linking the account, logging in) runs in short ``sync_to_async`` steps;
none of them waits for another request's lock.

Which views serve a request is decided when its URL is resolved (see :mod:`.urls` and the
ASYNC_VIEWS setting): under ASGI these, under WSGI the sync ones.

A client that disconnects cancels its request (Django 5.0+); the exchange that request
started still completes and is stored for its duplicate (see
:mod:`wechat_oauth.guard.exchange_loop`).
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from . import flow, views
from .exceptions import CodeSpent, WeChatOAuthError
from .guard import aexchange_once, validate_code
from .jsonbody import require_post_json
from .registry import WeChatApp
from .responses import protect_callback_response

__all__ = ["acomplete_login", "callback", "login", "session"]


@require_GET
@never_cache
async def login(request: HttpRequest, app: str | None = None) -> HttpResponse:
    return views.login_response(request, app)


@require_GET
@never_cache
@transaction.non_atomic_requests  # the exchange must commit on its own, before the response
async def callback(request: HttpRequest, app: str | None = None) -> HttpResponse:
    wechat_app = views.app_of(app)
    try:
        received = views.read_callback_request(request)
        response = await acomplete_login(
            request,
            received,
            target=request.GET.get("next", ""),
            app=wechat_app,
            redirect_uri=lambda t: flow.callback_uri(request, t, wechat_app),
        )
    except (WeChatOAuthError, DatabaseError) as error:
        response = await sync_to_async(views.callback_error_response)(request, error, app)
    return protect_callback_response(response)


async def acomplete_login(
    request: HttpRequest,
    callback: flow.Callback,
    *,
    target: str,
    redirect_uri: flow.RedirectUri,
    app: WeChatApp | None = None,
) -> HttpResponse:
    """:func:`wechat_oauth.flow.complete_login`, awaiting the exchange."""
    pending = await sync_to_async(flow.begin_login)(request, callback, target=target, app=app)
    if isinstance(pending, HttpResponse):
        return pending
    try:
        exchange = await aexchange_once(pending.callback.code or "", **pending.exchange_arguments(request))
    except CodeSpent as spent:
        return await sync_to_async(flow.after_spent_code)(request, pending, spent, redirect_uri)
    return await sync_to_async(flow.finish_login)(request, pending, exchange)


@csrf_exempt  # no cookie authenticates it: the code is the credential
@require_post_json
@never_cache
@transaction.non_atomic_requests
async def session(request: HttpRequest, app: str | None = None) -> HttpResponse:
    """A Mini Program's login: ``{"code": "<wx.login() code>"}`` in, a session token out."""
    wechat_app = views.mini_program_of(app)
    if isinstance(wechat_app, HttpResponse):
        return wechat_app
    try:
        code = validate_code(views.json_body(request).get("code"))
        exchange = await aexchange_once(
            code, **flow.mini_program_exchange_arguments(request, code, wechat_app)
        )
        answer = await sync_to_async(flow.mini_program_answer)(request, exchange, app=wechat_app)
    except (WeChatOAuthError, DatabaseError) as error:
        return views.session_error_response(error)
    return JsonResponse(answer)
