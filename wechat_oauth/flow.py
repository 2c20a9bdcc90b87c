"""The login flow shared by the callback view and the middleware.

    read_callback()     the query string -> a Callback, or a 400-class error (nothing stored)
    complete_login()    verify state -> exchange_once (with the profile) -> link -> login -> redirect
    authorize_redirect() a new login: a fresh state and WeChat's authorize (or qrconnect) URL

Every duplicate callback walks the same path and gets the first one's exchange; a callback
whose code is spent (Back, refresh) sends a logged-in browser on to ``next`` and otherwise
restarts the login once (the state carries the attempt number: the loop guard).

A login belongs to the browser that started it (see :mod:`.binding`): the login start sets the
binding cookie the state commits to; a callback from another browser is refused, and one
without the cookie (WeChat's browser drops cookies) never silently replaces a different
logged-in user (see :mod:`.confirm`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib.auth import authenticate, login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.urls import reverse

from . import confirm
from .adapter import get_adapter
from .backends import BACKEND_PATH
from .binding import Binding, binding_token, check_binding, commitment, fingerprint, set_binding_cookie
from .budget import CodeBudget
from .client import WeChatClient, get_client
from .conf import app_settings
from .exceptions import (
    BadCallback,
    CodeSpent,
    ConfigurationError,
    ConsentRefused,
    ExpiredState,
    InactiveUser,
    InvalidState,
    LoginRefused,
    SnapshotUser,
)
from .guard import Exchange, exchange_once, validate_code
from .identity import link_account
from .models import WeChatAccount
from .registry import WeChatApp, default_app_name, get_app
from .results import TokenResult
from .signals import wechat_login
from .state import LoginState, issue_state, safe_next_url, verify_state
from .wecom import WeComClient

logger = logging.getLogger("wechat_oauth.login")

#: Query parameters WeChat adds to a redirect_uri; none survives into the final redirect.
OAUTH_PARAMETERS = ("code", "state", "uin", "key", "pass_ticket")
#: Parameters of WeChat's re-sent duplicate (the first request was aborted by the client).
RESENT_MARKERS = ("uin", "key", "pass_ticket")
SESSION_KEY = "_wechat_oauth_identity"

#: Rebuilds the callback address for ``target`` (an automatic restart of the login).
RedirectUri = Callable[[str], str]


@dataclass(frozen=True)
class Callback:
    #: None when the user refused consent (WeChat sends only the state back).
    code: str | None
    state: str
    #: The request carried WeChat's re-send markers (uin/key/pass_ticket).
    resent: bool


@dataclass(frozen=True)
class WeChatIdentity:
    """What ``request.wechat`` holds for a visitor who completed a WeChat login."""

    app_id: str
    openid: str
    unionid: str
    scope: str

    def is_same_as(self, other: WeChatIdentity) -> bool:
        """The same person of the same app (the scope may differ between logins)."""
        return (self.app_id, self.openid) == (other.app_id, other.openid)


def read_callback(query: QueryDict) -> Callback:
    """The callback's parameters, or the 400-class error that says what is wrong with them."""
    for name in ("code", "state"):
        if len(query.getlist(name)) > 1:
            raise BadCallback(f"The {name!r} parameter is repeated")
    state = query.get("state")
    if not state:
        raise InvalidState("The state parameter is missing")
    code = validate_code(query["code"]) if "code" in query else None
    return Callback(code=code, state=state, resent=any(name in query for name in RESENT_MARKERS))


def without_oauth_parameters(request: HttpRequest) -> str:
    """The request's path and query string minus WeChat's callback parameters."""
    query = request.GET.copy()
    for name in OAUTH_PARAMETERS:
        query.pop(name, None)
    encoded = query.urlencode()
    return request.path + (f"?{encoded}" if encoded else "")


def default_redirect() -> str:
    return str(settings.LOGIN_REDIRECT_URL)


def app_url(name: str, app: WeChatApp) -> str:
    """The path of view ``name`` (login, callback) for ``app``: the plain one for the default
    app, ``<app>/<name>/`` for the others."""
    if app.name == default_app_name():
        return reverse(f"wechat_oauth:{name}")
    return reverse(f"wechat_oauth:{name}", kwargs={"app": app.name})


def callback_uri(request: HttpRequest, target: str, app: WeChatApp | None = None) -> str:
    """The redirect_uri of ``app``'s callback view, carrying ``next`` in its own query string."""
    callback = request.build_absolute_uri(app_url("callback", app or get_app()))
    return f"{callback}?{urlencode({'next': target})}"


def login_state(
    request: HttpRequest, *, target: str, app: WeChatApp, attempt: int = 0
) -> tuple[LoginState, str]:
    """A new state of ``app`` for ``target`` and the binding token it commits to (the caller
    sets the binding cookie on its response with :func:`set_binding_cookie`)."""
    token = binding_token(request)
    state = issue_state(
        target=target, scope=app.scope, app_id=app.app_id, attempt=attempt, binding=commitment(token)
    )
    return state, token


def authorize_redirect(
    request: HttpRequest,
    *,
    target: str,
    redirect_uri: str,
    attempt: int = 0,
    app: WeChatApp | None = None,
    client: WeChatClient | None = None,
) -> HttpResponseRedirect:
    """Send the browser to WeChat to log in through ``app`` (default: DEFAULT_APP), coming back
    to ``redirect_uri`` for ``target``: the authorize page of an Official Account, the
    qrconnect page of a website app; for a WeCom app the in-app authorisation inside WeCom's
    browser (``wxwork`` in its User-Agent) and the SSO QR login anywhere else. ``client``:
    the app's client when it is not a configured app's (a drop-in's)."""
    app = app or get_app()
    state, token = login_state(request, target=target, app=app, attempt=attempt)
    client = client or get_client(app)
    if isinstance(client, WeComClient):  # inside WeCom: in-app authorisation; else SSO QR
        url = client.login_url(redirect_uri, state.value, user_agent=request.headers.get("User-Agent", ""))
    elif app.is_qr_login:
        url = client.qrconnect_url(redirect_uri, state.value, scope=app.scope)
    else:
        url = client.authorize_url(redirect_uri, state.value, app.scope)
    response = HttpResponseRedirect(url)
    set_binding_cookie(response, request, token)
    return response


def qr_panel_parameters(request: HttpRequest, *, target: str, app: WeChatApp) -> tuple[dict[str, Any], str]:
    """What WeChat's ``wxLogin.js`` needs to draw ``app``'s QR panel inside a page of the site
    (``new WxLogin({...})``), with a state issued as for any login, and the binding token the
    caller sets as the cookie. ``redirect_uri`` is URL-encoded: wxLogin.js pastes it into its
    iframe's address as it is."""
    state, token = login_state(request, target=target, app=app)
    parameters = {
        "appid": app.app_id,
        "scope": app.scope,
        "state": state.value,
        "redirect_uri": quote(callback_uri(request, target, app), safe=""),
    }
    return parameters, token


def login_here(request: HttpRequest, target: str | None = None) -> HttpResponseRedirect:
    """Start a login that comes back to ``target`` (default: this page) itself, not to the
    callback view; WeChatOAuthMiddleware completes it there."""
    target = target or without_oauth_parameters(request)
    return authorize_redirect(request, target=target, redirect_uri=request.build_absolute_uri(target))


@dataclass(frozen=True)
class PendingLogin:
    """A callback whose state and browser are verified: what its code's exchange needs."""

    callback: Callback
    state: LoginState
    app: WeChatApp
    target: str
    unbound: bool

    def exchange_arguments(self, request: HttpRequest) -> dict[str, Any]:
        """The keyword arguments of ``exchange_once``/``aexchange_once`` for this callback."""
        app, state = self.app, self.state
        return {
            "client": get_client(app),
            "state": self.callback.state,
            "resent": self.callback.resent,
            "fingerprint": fingerprint(request),
            "budget": CodeBudget.for_request(request, attempt=f"{app.app_id}:{state.nonce}"),
        }


def complete_login(
    request: HttpRequest,
    callback: Callback,
    *,
    target: str,
    redirect_uri: RedirectUri,
    app: WeChatApp | None = None,
) -> HttpResponse:
    """Finish the login the callback belongs to and redirect to ``target``.

    ``target`` is what the state was bound to (path and query the user returns to);
    ``redirect_uri(target)`` rebuilds the callback address for an automatic restart. ``app``
    (default: DEFAULT_APP) is the app the callback's URL names: a state issued for another
    app is refused (InvalidState), before its code is spent. The async views run the same
    three steps around :func:`~wechat_oauth.guard.aexchange_once`.
    """
    pending = begin_login(request, callback, target=target, app=app)
    if isinstance(pending, HttpResponse):
        return pending
    try:
        exchange = exchange_once(pending.callback.code or "", **pending.exchange_arguments(request))
    except CodeSpent as spent:
        return after_spent_code(request, pending, spent, redirect_uri)
    return finish_login(request, pending, exchange)


def begin_login(
    request: HttpRequest, callback: Callback, *, target: str, app: WeChatApp | None = None
) -> PendingLogin | HttpResponse:
    """Everything before the exchange: the state verified, the browser checked, the session
    read; or the response that ends the callback here (a refresh long after the login)."""
    app = app or get_app()
    try:
        state = verify_state(callback.state, target=target, scope=app.scope, app_id=app.app_id)
    except ExpiredState:
        if _signed_in(request):  # a refresh, long after the login
            return _continue(request, target)
        raise
    if callback.code is None:
        raise ConsentRefused()
    binding = check_binding(request, state)  # before the code is spent: a refusal costs nothing
    # Read the session before waiting for the exchange: once the first request for the code
    # commits it logs in, which moves the session data to a new key and deletes the old one;
    # a duplicate reading the session after that would log in with the data gone.
    request.session.keys()
    return PendingLogin(
        callback=callback, state=state, app=app, target=target, unbound=binding is Binding.UNBOUND
    )


def after_spent_code(
    request: HttpRequest, pending: PendingLogin, spent: CodeSpent, redirect_uri: RedirectUri
) -> HttpResponse:
    """The code was spent before this request (Back, refresh, a code WeChat refused as used):
    a logged-in browser goes on, a first attempt restarts the login once, else CodeSpent."""
    if _signed_in(request):  # Back or refresh after the login
        return _continue(request, pending.target)
    if pending.state.attempt == 0:
        logger.info("code already spent: restarting the login once")
        return authorize_redirect(
            request,
            target=pending.target,
            redirect_uri=redirect_uri(pending.target),
            attempt=1,
            app=pending.app,
        )
    raise spent


def finish_login(request: HttpRequest, pending: PendingLogin, exchange: Exchange) -> HttpResponse:
    """After the exchange: link and log in, or ask first (see :func:`_finish_login`)."""
    return _finish_login(request, exchange, pending.app, unbound=pending.unbound, target=pending.target)


def _finish_login(
    request: HttpRequest, exchange: Exchange, app: WeChatApp, *, unbound: bool, target: str
) -> HttpResponse:
    """Link and log in (or keep the identity), unless an unbound callback must ask first."""
    token = exchange.token
    if token.is_snapshot_user:
        raise SnapshotUser()
    if not get_adapter().may_log_in(request, app, token):
        raise LoginRefused()
    identity = WeChatIdentity(
        app_id=app.app_id, openid=token.openid, unionid=token.unionid, scope=token.scope
    )
    if not app_settings.LINK_USERS:
        if unbound and (app_settings.CONFIRM_UNBOUND or _other_identity_signed_in(request, identity)):
            return confirm.ask(request, identity=identity, target=target)
        switch_identity(request, identity)
        return _continue(request, target)
    account, created = _link(token, app, refresh_account=not exchange.duplicate)
    user = authenticated(request, account)
    if unbound and (app_settings.CONFIRM_UNBOUND or _other_user_signed_in(request, user)):
        return confirm.ask(request, identity=identity, target=target, account=account, created=created)
    log_in(request, user, account, created=created, identity=identity)
    return _continue(request, target)


def mini_program_session(request: HttpRequest, code: object, *, app: WeChatApp) -> dict[str, Any]:
    """A Mini Program login: ``code`` (from ``wx.login()``) through the fence, the identity
    linked, and what the session endpoint answers (a session token, openid, unionid, user
    id). Every duplicate of the code gets the first one's identity, session_key included."""
    code = validate_code(code)
    exchange = exchange_once(code, **mini_program_exchange_arguments(request, code, app))
    return mini_program_answer(request, exchange, app=app)


def mini_program_exchange_arguments(request: HttpRequest, code: str, app: WeChatApp) -> dict[str, Any]:
    return {
        "client": get_client(app),
        "budget": CodeBudget.for_request(request, attempt=f"{app.app_id}:{code}"),
    }


def mini_program_answer(request: HttpRequest, exchange: Exchange, *, app: WeChatApp) -> dict[str, Any]:
    """After a Mini Program code's exchange: the identity linked, a session token issued."""
    from . import miniprogram

    token = exchange.token
    if not get_adapter().may_log_in(request, app, token):
        raise LoginRefused()
    account, _created = link_account(token, app=app, refresh=not exchange.duplicate)
    if not account.user.is_active:
        raise InactiveUser()
    return {
        "token": miniprogram.issue_token(account),
        "openid": token.openid,
        "unionid": token.unionid,
        "user_id": account.user_id,
    }


def switch_identity(request: HttpRequest, identity: WeChatIdentity) -> None:
    """Keep ``identity`` in the session (LINK_USERS = False). As ``login()`` does for users: a
    different identity gets an empty session, the same (or a first) one a new session key."""
    if _other_identity_signed_in(request, identity):
        request.session.flush()
    else:
        request.session.cycle_key()  # no session fixation
    request.session[SESSION_KEY] = asdict(identity)


def log_in(
    request: HttpRequest, user: Any, account: WeChatAccount, *, created: bool, identity: WeChatIdentity
) -> None:
    """Log ``user`` in through ``account`` and keep ``identity`` in the session."""
    login(request, user, backend=BACKEND_PATH)
    request.session[SESSION_KEY] = asdict(identity)
    logger.info("openid %s logged in as user %s%s", identity.openid, user.pk, " (new)" if created else "")
    wechat_login.send(sender=type(account), request=request, user=user, account=account, created=created)


def identity_of(request: HttpRequest) -> WeChatIdentity | None:
    """The WeChat identity stored in the session by a completed login, if any."""
    stored = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    if not isinstance(stored, dict):
        return None
    try:
        return WeChatIdentity(**stored)
    except TypeError:
        return None


def _link(token: TokenResult, app: WeChatApp, *, refresh_account: bool) -> tuple[WeChatAccount, bool]:
    # Before linking: a site that cannot keep the login must not create users for nothing.
    if BACKEND_PATH not in settings.AUTHENTICATION_BACKENDS:
        raise ConfigurationError(f"{BACKEND_PATH} is not in AUTHENTICATION_BACKENDS (check E004)")
    return link_account(token, app=app, refresh=refresh_account)


def authenticated(request: HttpRequest, account: WeChatAccount) -> Any:
    user = authenticate(request, wechat_account=account)
    if user is None:
        raise InactiveUser()
    return user


def _other_user_signed_in(request: HttpRequest, user: Any) -> bool:
    current = getattr(request, "user", None)
    return bool(current is not None and current.is_authenticated and current.pk != user.pk)


def _other_identity_signed_in(request: HttpRequest, identity: WeChatIdentity) -> bool:
    current = identity_of(request)
    return current is not None and not identity.is_same_as(current)


def safe_target(request: HttpRequest, target: str) -> str:
    """Where a completed login goes: ``target`` if it is safe, else LOGIN_REDIRECT_URL."""
    return safe_next_url(target, request=request) or default_redirect()


def _continue(request: HttpRequest, target: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(safe_target(request, target))


def _signed_in(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated) or identity_of(request) is not None
