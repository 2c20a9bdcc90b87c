"""social-core's ``weixin`` and ``weixinapp`` backends, with every code exchanged once.

What the stock backends do under WeChat's duplicate callbacks (measured in
``tests/test_contrib_social.py``): social-core 6.2+ consumes a one-time nonce per state, so the
second request of a login (WeChat's re-sent callback, a parallel duplicate, Android's second
code, a refresh) fails at the state check, and the first request, which the client aborted,
takes the login nobody sees. Here:

* **State.** The state is this app's signed state (:mod:`wechat_oauth.state`, its compact
  layout: social-core's nonce column holds 65 characters), kept by
  social-core in the session as before and committed to the browser-binding cookie
  (:mod:`wechat_oauth.binding`) that the login start sets. The first callback passes
  social-core's own check (the session, the nonce). A later one whose nonce the first consumed
  is verified without the session: the signature, the age, and the binding cookie (a callback
  from another browser is refused; one without the cookie only from WeChat's User-Agent, and
  never while a user is logged in: it then goes on to ``next`` and changes nothing).
* **Exchange.** ``request_access_token`` (the one hook both backends' ``auth_complete`` call)
  goes through :func:`wechat_oauth.guard.exchange_once`, with the state and the browser's
  fingerprint: the first request with a code asks WeChat, every duplicate from the same
  browser and login replays that answer (another browser's replay is refused), a second code
  of one state is exchanged as its own (at most MAX_CODES_PER_LOGIN). The profile is fetched
  inside that one exchange, only under snsapi_userinfo / snsapi_login: ``user_data`` asks
  WeChat nothing, so snsapi_base works.
* **Pipeline.** social-core's pipeline runs unchanged, inside one transaction that is run once
  more when a concurrent duplicate of the same login created the user first (the loser's user
  is rolled back): one user per openid.
* **Pages.** A spent code sends a logged-in browser on to ``next`` and restarts an anonymous
  one's login once; a snapshot-mode user (``is_snapshotuser``) gets this app's snapshot page
  and no user; every other failure this app's readable page (400/429/502/503), never a 500.
  social-core's own errors (from the pipeline) still go to the site's handling of them.
* **URLs.** ``weixinapp`` goes to the authorize page with WeChat's exact parameter order,
  ``connect_redirect=1`` and ``#wechat_redirect``; ``weixin`` to qrconnect with
  ``#wechat_redirect``. Scope: ``weixin`` always snsapi_login; ``weixinapp`` the first of
  snsapi_base / snsapi_userinfo in ``SOCIAL_AUTH_WEIXINAPP_SCOPE`` (snsapi_login, which
  social-core adds by default, is dropped), snsapi_userinfo when it names neither. WeChat's
  hosts come from ``WECHAT_OAUTH`` (``AUTHORIZE_URL``, ``QRCONNECT_URL``, ``API_BASE_URL``),
  not from social-auth's ``*_AUTHORIZATION_URL`` / ``*_ACCESS_TOKEN_URL`` settings.

Names, uids (the openid) and extra_data stay social-core's, plus ``unionid`` when WeChat sends
one (what :func:`.pipeline.associate_by_unionid` links by).
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.db import DatabaseError, OperationalError, router, transaction
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url

from ...binding import Binding, binding_token, check_binding, commitment, fingerprint, set_binding_cookie
from ...budget import CodeBudget
from ...client import WeChatClient
from ...conf import app_settings
from ...exceptions import (
    CodeSpent,
    ConfigurationError,
    ConsentRefused,
    ExpiredState,
    InvalidState,
    SnapshotUser,
    WeChatOAuthError,
)
from ...guard import exchange_once
from ...models import OAuthCodeUse
from ...responses import database_error_response, error_response, protect_callback_response
from ...results import AUTHORIZE_SCOPES, TokenResult, utc_now
from ...state import COMPACT_BINDING_BYTES, LoginState, issue_state, safe_next_url, verify_state
from ...transactions import is_deadlock, write_transaction
from .upstream import STATE_REFUSALS, StockWeixinOAuth2, StockWeixinOAuth2APP, django_request

logger = logging.getLogger("wechat_oauth.social")

__all__ = ["WeChatSocialMixin", "WeixinOAuth2", "WeixinOAuth2APP", "client_for", "wechat_response"]

#: Parameters of WeChat's re-sent duplicate (the first request was aborted by the client).
RESENT_MARKERS = ("uin", "key", "pass_ticket")
#: How many times the pipeline runs when concurrent duplicates of one new login race.
PIPELINE_ATTEMPTS = 3
#: The login's ``next``, signed, set at the login start beside the binding cookie: social-auth
#: keeps ``next`` in the session only, and a duplicate that arrives after the first request of
#: its login logged in carries the session Django's login() replaced.
NEXT_COOKIE_NAME = "wechat_oauth_social_next"
NEXT_COOKIE_SALT = "wechat_oauth.contrib.social.next"

_clients: dict[tuple[Any, ...], WeChatClient] = {}
_clients_lock = threading.Lock()


def client_for(app_id: str, app_secret: str) -> WeChatClient:
    """One :class:`~wechat_oauth.client.WeChatClient` per credentials (and WECHAT_OAUTH's hosts
    and timeout), shared by every request of the process."""
    key = (
        app_id,
        app_secret,
        app_settings.API_BASE_URL,
        app_settings.AUTHORIZE_URL,
        app_settings.QRCONNECT_URL,
        app_settings.timeout,
    )
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = WeChatClient(
                app_id,
                app_secret,
                api_base_url=app_settings.API_BASE_URL,
                authorize_url=app_settings.AUTHORIZE_URL,
                qrconnect_url=app_settings.QRCONNECT_URL,
                timeout=app_settings.timeout,
            )
        return client


def wechat_response(token: TokenResult) -> dict[str, Any]:
    """The ``response`` social-core's weixin backends hand the pipeline: WeChat's token answer,
    merged with its userinfo answer when the scope gave one."""
    response: dict[str, Any] = {
        "access_token": token.access_token,
        "refresh_token": token.refresh_token,
        "expires_in": max(0, int((token.expires_at - utc_now()).total_seconds())),
        "openid": token.openid,
        "scope": token.scope,
    }
    profile = token.profile
    if profile is not None:
        response.update(
            nickname=profile.nickname,
            sex=profile.sex,
            province=profile.province,
            city=profile.city,
            country=profile.country,
            headimgurl=profile.headimgurl,
            privilege=list(profile.privilege),
        )
    unionid = token.unionid or (profile.unionid if profile is not None else "")
    if unionid:
        response["unionid"] = unionid
    return response


class _Answer(Exception):
    """Ends the callback with ``response`` (a redirect or a page) instead of a user."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__("answered")
        self.response = response


class WeChatSocialMixin:
    """What the two drop-in backends add to social-core's (see the module's docstring)."""

    #: ``mp``: WeChat's authorize page (inside WeChat); ``open``: qrconnect (website QR login).
    WECHAT_KIND = "mp"
    #: ``weixinapp``'s scope when SOCIAL_AUTH_WEIXINAPP_SCOPE names neither mp scope.
    WECHAT_DEFAULT_SCOPE = "snsapi_userinfo"
    EXTRA_DATA = [("nickname", "username"), ("headimgurl", "profile_image_url"), ("unionid", "unionid", True)]

    #: The binding token of this request's login start (or restart).
    _binding: str | None = None
    #: 0: a login started by the user; 1: the automatic restart after a spent code.
    _attempt = 0
    #: The callback's state, and what it says (None: a state of the stock backend's).
    _state_value = ""
    _state: LoginState | None = None

    # Provided by social-core's backend classes.
    name: str
    data: Any
    strategy: Any
    setting: Any
    get_key_and_secret: Any
    get_or_create_state: Any
    get_redirect_uri: Any
    get_request_state: Any

    # -- What the backend is -----------------------------------------------------------------

    def wechat_client(self) -> WeChatClient:
        key, secret = self.get_key_and_secret()
        if not key or not secret:
            prefix = f"SOCIAL_AUTH_{self.name.upper()}"
            raise ConfigurationError(f"{prefix}_KEY or {prefix}_SECRET is not set")
        return client_for(str(key), str(secret))

    def wechat_scope(self) -> str:
        if self.WECHAT_KIND == "open":
            return "snsapi_login"
        configured = self.setting("SCOPE", []) or []
        if isinstance(configured, str):
            configured = configured.replace(",", " ").split()
        return next((scope for scope in configured if scope in AUTHORIZE_SCOPES), self.WECHAT_DEFAULT_SCOPE)

    def get_scope(self) -> list[str]:
        return [self.wechat_scope()]

    def _app_id(self) -> str:
        return str(self.get_key_and_secret()[0] or "")

    def _state_target(self) -> str:
        # What the state's MAC binds besides app id and scope: the backend it was issued for.
        return f"social:{self.name}"

    # -- Login start -------------------------------------------------------------------------

    def start(self) -> Any:
        request = django_request(self.strategy)
        self._binding = binding_token(request)
        response = super().start()  # type: ignore[misc]  # auth_url() -> state_token()
        set_binding_cookie(response, request, self._binding)
        remember_next(response, request, self.strategy.session_get("next"))
        return response

    def state_token(self) -> str:
        """This app's signed state instead of a random one: the compact layout (53 characters
        of [A-Za-z0-9]), since social-core keeps the state in a 65-character nonce column."""
        if self._binding is None:
            self._binding = binding_token(django_request(self.strategy))
        return issue_state(
            target=self._state_target(),
            scope=self.wechat_scope(),
            app_id=self._app_id(),
            attempt=self._attempt,
            compact=True,
            binding=commitment(self._binding, nbytes=COMPACT_BINDING_BYTES),
        ).value

    def auth_url(self) -> str:
        state = self.get_or_create_state() or ""
        redirect_uri = self.get_redirect_uri(state)
        client = self.wechat_client()
        if self.WECHAT_KIND == "open":
            return client.qrconnect_url(redirect_uri, state)
        return client.authorize_url(redirect_uri, state, self.wechat_scope())

    # -- Callback ----------------------------------------------------------------------------

    def auth_complete(self, *args: Any, **kwargs: Any) -> Any:
        request = django_request(self.strategy)
        try:
            return super().auth_complete(*args, **kwargs)  # type: ignore[misc]
        except _Answer as answer:
            return answer.response
        except WeChatOAuthError as error:
            target = self._next_url(request)
            return protect_callback_response(
                error_response(request, error, target=target, retry=self._retry_url(target))
            )
        except DatabaseError as error:
            target = self._next_url(request)
            return protect_callback_response(
                database_error_response(request, error, target=target, retry=self._retry_url(target))
            )

    def validate_state(self) -> str | None:
        """social-core's check first (the session, the one-time nonce); a state it no longer
        vouches for (its nonce consumed by the first request of the login) is checked here."""
        request_state = self.get_request_state()
        try:
            value = super().validate_state()  # type: ignore[misc]
        except STATE_REFUSALS:
            if not isinstance(request_state, str) or not request_state:
                raise InvalidState("The state parameter is missing") from None
            self._state = self._verify_without_session(request_state)
            self._state_value = request_state
            return request_state
        self._state_value = str(value or "")
        self._state = self._read(self._state_value)
        return value

    def _read(self, value: str) -> LoginState | None:
        """What a state social-core vouched for says (None: one the stock backend issued)."""
        try:
            return verify_state(
                value,
                target=self._state_target(),
                scope=self.wechat_scope(),
                app_id=self._app_id(),
                max_age=float("inf"),
            )
        except InvalidState:
            return None

    def _verify_without_session(self, value: str) -> LoginState:
        request = django_request(self.strategy)
        try:
            state = verify_state(
                value, target=self._state_target(), scope=self.wechat_scope(), app_id=self._app_id()
            )
        except ExpiredState:
            if _signed_in(request):  # a refresh, long after the login
                raise _Answer(self._continue(request)) from None
            raise
        if check_binding(request, state) is Binding.UNBOUND and _signed_in(request):
            # No binding cookie and someone logged in: this may be another person's callback
            # link. It must not switch this browser to that person, nor attach that person's
            # WeChat to this user (social-auth's "connect"): it changes nothing.
            logger.info("callback without the binding cookie while a user is logged in: nothing changed")
            raise _Answer(self._continue(request))
        if not self.strategy.session_get("next"):
            # The session of the login start is gone (the first request of this login logged
            # in, and Django's login() replaced it): its next, from the login start's cookie.
            remembered = remembered_next(request)
            if remembered:
                self.strategy.session_set("next", remembered)
        return state

    def request_access_token(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The exchange, once per code, whatever social-core asked for (URL, parameters)."""
        request = django_request(self.strategy)
        code = self.data.get("code")
        if not code:
            raise ConsentRefused()
        using = router.db_for_write(OAuthCodeUse)
        if transaction.get_connection(using).in_atomic_block:
            raise ConfigurationError(
                "The social-auth callback runs inside a transaction (ATOMIC_REQUESTS?): the "
                "exchange must commit on its own. Wrap social_django's complete view in "
                "transaction.non_atomic_requests."
            )
        state = self._state
        attempt = f"{self._app_id()}:{state.nonce if state is not None else self._state_value}"
        try:
            exchange = exchange_once(
                str(code),
                client=self.wechat_client(),
                state=self._state_value,
                resent=any(name in self.data for name in RESENT_MARKERS),
                fingerprint=fingerprint(request),
                budget=CodeBudget.for_request(request, attempt=attempt),
            )
        except CodeSpent:
            if _signed_in(request):  # Back or refresh after the login
                raise _Answer(self._continue(request)) from None
            if state is not None and state.attempt == 0:
                logger.info("code already spent: restarting the login once")
                raise _Answer(self._restart(request)) from None
            raise
        if exchange.token.is_snapshot_user:
            raise SnapshotUser()
        return wechat_response(exchange.token)

    def user_data(self, access_token: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Nothing to ask: the profile came with the exchange (only where the scope has one)."""
        return {}

    def do_auth(self, access_token: str, *args: Any, **kwargs: Any) -> Any:
        """social-core's pipeline in one transaction; run again when a concurrent duplicate of
        the same login created the association first (ours, users included, rolled back)."""
        storage = self.strategy.storage.user
        openid = str((kwargs.get("response") or {}).get("openid") or "")
        for attempt in range(1, PIPELINE_ATTEMPTS + 1):
            try:
                with self._pipeline_transaction(storage):
                    return super().do_auth(access_token, *args, **kwargs)  # type: ignore[misc]
            except Exception as error:
                if attempt == PIPELINE_ATTEMPTS or not self._lost_a_race(storage, error, openid):
                    raise
                logger.info("openid %s was linked by a concurrent login (attempt %d): again", openid, attempt)
        raise AssertionError("unreachable")

    @staticmethod
    def _pipeline_transaction(storage: Any) -> Any:
        if isinstance(storage, type) and issubclass(storage, Model):
            return write_transaction(storage)  # the write lock first on SQLite
        return transaction.atomic()

    def _lost_a_race(self, storage: Any, error: Exception, openid: str) -> bool:
        if isinstance(error, OperationalError) and (is_deadlock(error) or "locked" in str(error)):
            return True
        try:
            return bool(openid) and storage.get_social_auth(self.name, openid) is not None
        except DatabaseError:
            return False

    # -- Where the browser goes --------------------------------------------------------------

    def _next_url(self, request: HttpRequest) -> str:
        """The login's ``next`` (social-auth keeps it in the session), if safe, else
        LOGIN_REDIRECT_URL."""
        candidate = self.strategy.session_get("next")
        safe = safe_next_url(candidate, request=request) if isinstance(candidate, str) else None
        return safe or resolve_url(self.setting("LOGIN_REDIRECT_URL") or settings.LOGIN_REDIRECT_URL)

    def _retry_url(self, target: str) -> str:
        """The error pages' *Log in again*: the site's login page (social-auth-app-django's
        login start is a POST), coming back to ``target``."""
        login = resolve_url(self.setting("LOGIN_URL") or settings.LOGIN_URL)
        return f"{login}?{urlencode({'next': target})}"

    def _continue(self, request: HttpRequest) -> HttpResponse:
        return protect_callback_response(HttpResponseRedirect(self._next_url(request)))

    def _restart(self, request: HttpRequest) -> HttpResponse:
        """A new login (attempt 1, the loop guard) straight to WeChat, as the login start would."""
        self._attempt = 1
        self._binding = binding_token(request)
        response = HttpResponseRedirect(self.auth_url())
        set_binding_cookie(response, request, self._binding)
        return protect_callback_response(response)


def remember_next(response: HttpResponse, request: HttpRequest, next_url: Any) -> None:
    """The login's ``next`` (social-auth's, sanitized by its login start), signed, in a cookie
    that lives as long as the login's state (NEXT_COOKIE_NAME)."""
    if isinstance(next_url, str) and next_url:
        response.set_cookie(
            NEXT_COOKIE_NAME,
            signing.dumps(next_url, salt=NEXT_COOKIE_SALT),
            max_age=int(app_settings.STATE_MAX_AGE),
            path="/",
            secure=request.is_secure(),
            httponly=True,
            samesite="Lax",
        )


def remembered_next(request: HttpRequest) -> str | None:
    """The ``next`` of this browser's last login start, if its cookie is ours, not older than
    STATE_MAX_AGE, and a safe target on this site."""
    value = request.COOKIES.get(NEXT_COOKIE_NAME)
    if not value:
        return None
    try:
        # Django compares the age with max_age as numbers: a float is fine (the stubs say int).
        next_url = signing.loads(value, salt=NEXT_COOKIE_SALT, max_age=float(app_settings.STATE_MAX_AGE))  # type: ignore[arg-type]
    except signing.BadSignature:
        return None
    return safe_next_url(next_url, request=request) if isinstance(next_url, str) else None


def _signed_in(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


class WeixinOAuth2(WeChatSocialMixin, StockWeixinOAuth2):
    """``weixin``: an Open Platform website app's QR login (qrconnect, snsapi_login)."""

    WECHAT_KIND = "open"


class WeixinOAuth2APP(WeChatSocialMixin, StockWeixinOAuth2APP):
    """``weixinapp``: an Official Account's web authorisation inside WeChat's browser."""

    WECHAT_KIND = "mp"
