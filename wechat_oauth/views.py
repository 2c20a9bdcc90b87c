"""``login`` sends the browser to WeChat; ``callback`` is where WeChat sends it back;
``confirm`` answers the "switch account?" page (see :mod:`.confirm`); ``error`` shows an error
page of the middleware's logins on a URL without the code.

Thin on purpose: the flow lives in :mod:`.flow`, the error pages in :mod:`.responses`.
"""

from __future__ import annotations

from django.db import DatabaseError, transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from . import confirm as confirmation
from . import flow, miniprogram
from .binding import set_binding_cookie
from .exceptions import BadCallback, WeChatOAuthError
from .jsonbody import SESSION_BODY_MAX_BYTES, read_json_object, require_post_json
from .registry import UnknownApp, WeChatApp, get_app
from .responses import (
    database_error_response,
    error_page,
    error_response,
    json_database_error,
    json_error,
    protect_callback_response,
)
from .state import safe_next_url


def _next_of(request: HttpRequest) -> str:
    return safe_next_url(request.GET.get("next"), request=request) or flow.default_redirect()


def app_of(name: str | None) -> WeChatApp:
    """The web app a URL names (None: DEFAULT_APP); 404 for a name that is not configured, or
    a Mini Program's (it has no login page: its code is POSTed to ``<app>/session/``)."""
    try:
        app = get_app(name)
    except UnknownApp:
        raise Http404("No such WeChat app") from None
    if app.is_mini_program:
        raise Http404("A Mini Program logs in through <app>/session/")
    return app


@require_GET
@never_cache
def login(request: HttpRequest, app: str | None = None) -> HttpResponse:
    return login_response(request, app)


def login_response(request: HttpRequest, app: str | None) -> HttpResponse:
    """To WeChat: no database, no call out (shared with the async login view)."""
    wechat_app = app_of(app)
    target = _next_of(request)
    return flow.authorize_redirect(
        request, target=target, app=wechat_app, redirect_uri=flow.callback_uri(request, target, wechat_app)
    )


@require_GET
@never_cache
def qr_panel(request: HttpRequest, app: str | None = None) -> HttpResponse:
    """JSON for ``new WxLogin(...)``: the parameters of a website app's embedded QR panel,
    with a fresh state and the binding cookie (see the ``wechat_qr_panel`` template tag)."""
    wechat_app = app_of(app)
    if not wechat_app.is_qr_login:
        return JsonResponse(
            {"error": "not_a_website_app", "message": f"{wechat_app.name} is not a website (open) app"},
            status=400,
        )
    parameters, token = flow.qr_panel_parameters(request, target=_next_of(request), app=wechat_app)
    response = JsonResponse(parameters)
    set_binding_cookie(response, request, token)
    return response


@require_GET
@never_cache
@transaction.non_atomic_requests  # the exchange must commit on its own, before the response
def callback(request: HttpRequest, app: str | None = None) -> HttpResponse:
    wechat_app = app_of(app)
    try:
        received = read_callback_request(request)
        response = flow.complete_login(
            request,
            received,
            target=request.GET.get("next", ""),
            app=wechat_app,
            redirect_uri=lambda t: flow.callback_uri(request, t, wechat_app),
        )
    except (WeChatOAuthError, DatabaseError) as error:
        response = callback_error_response(request, error, app)
    return protect_callback_response(response)


def read_callback_request(request: HttpRequest) -> flow.Callback:
    """The callback's parameters. The state is bound to ``next`` exactly as the login view
    sent it (verified before anything uses it); where the user finally goes is checked again
    on the way out."""
    if len(request.GET.getlist("next")) > 1:
        raise BadCallback("The 'next' parameter is repeated")
    return flow.read_callback(request.GET)


def callback_error_response(request: HttpRequest, error: Exception, app: str | None) -> HttpResponse:
    """The error page of a failed callback (a typed error, or the database's)."""
    if isinstance(error, DatabaseError):
        return database_error_response(request, error, target=_next_of(request), app=app)
    assert isinstance(error, WeChatOAuthError)
    return error_response(request, error, target=_next_of(request), app=app)


def json_body(request: HttpRequest) -> dict[str, object]:
    return read_json_object(request, max_bytes=SESSION_BODY_MAX_BYTES)


@csrf_exempt  # no cookie authenticates it: the code is the credential
@require_post_json
@never_cache
@transaction.non_atomic_requests  # the exchange must commit on its own, before the response
def session(request: HttpRequest, app: str | None = None) -> HttpResponse:
    """A Mini Program's login: ``{"code": "<wx.login() code>"}`` in, a session token out."""
    wechat_app = mini_program_of(app)
    if isinstance(wechat_app, HttpResponse):
        return wechat_app
    try:
        return JsonResponse(
            flow.mini_program_session(request, json_body(request).get("code"), app=wechat_app)
        )
    except (WeChatOAuthError, DatabaseError) as error:
        return session_error_response(error)


def mini_program_of(app: str | None) -> WeChatApp | HttpResponse:
    """The Mini Program a session URL names, or the JSON error that says why not."""
    try:
        wechat_app = get_app(app)
    except UnknownApp:
        return JsonResponse({"error": "unknown_app", "message": "No such WeChat app"}, status=404)
    if not wechat_app.is_mini_program:
        return JsonResponse(
            {"error": "not_a_mini_program", "message": f"{wechat_app.name} is not a Mini Program"}, status=400
        )
    return wechat_app


def session_error_response(error: Exception) -> HttpResponse:
    if isinstance(error, DatabaseError):
        return json_database_error(error)
    assert isinstance(error, WeChatOAuthError)
    return json_error(error)


@csrf_exempt
@require_post_json
@never_cache
def revoke_session(request: HttpRequest, app: str | None = None) -> HttpResponse:
    """Revoke every session token of the identity whose token authorises this request."""
    token = miniprogram.bearer_token(request)
    account = miniprogram.account_for_token(token) if token else None
    if account is None:
        return JsonResponse(
            {"error": "invalid_token", "message": "No valid session token in Authorization"}, status=401
        )
    miniprogram.revoke(account)
    return JsonResponse({"revoked": True})


@require_POST
@csrf_protect
@never_cache
def confirm(request: HttpRequest) -> HttpResponse:
    return confirmation.complete(request)


@require_GET
@never_cache
def error(request: HttpRequest) -> HttpResponse:
    return error_page(request, str(request.GET.get("reason", "")), target=_next_of(request))
