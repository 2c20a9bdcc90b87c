"""Pages for what went wrong: every error of the login flow becomes a readable page.

Bad input (malformed, forged, replayed) is a 400 (a JSON endpoint's body of another media
type: 415); WeChat failing is a 502; this site not able to finish (misconfiguration, database
down, a duplicate that waited too long) is a 503. No error of the flow ever becomes a 500.
Each page is logged here, redacted, and marked so that Django does not log it again to
``django.request`` with the callback URL (code and state).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from .exceptions import (
    AccountLinkFailed,
    BadCallback,
    BindingMismatch,
    BindingMissing,
    CodeSpent,
    ConfigurationError,
    ConsentRefused,
    DecryptionFailed,
    ExchangeWaitTimeout,
    ExpiredState,
    InactiveUser,
    InvalidCode,
    InvalidState,
    LoginRefused,
    RiskyUser,
    SnapshotUser,
    TooManyCodes,
    UnsupportedMediaType,
    UpstreamError,
    UpstreamUnavailable,
    WeChatOAuthError,
    error_class_for_key,
)
from .throttled_log import ThrottledLog

logger = logging.getLogger("wechat_oauth.login")

#: (error class, HTTP status, title, message), first match wins: subclasses before bases.
PAGES = (
    (ConsentRefused, 400, _("Login cancelled"), _("You did not allow the login in WeChat.")),
    (ExpiredState, 400, _("Login link expired"), _("This login link has expired. Please log in again.")),
    (
        CodeSpent,
        400,
        _("Login link already used"),
        _("This login link was already used. Please log in again."),
    ),
    (
        UnsupportedMediaType,
        415,
        _("Invalid login link"),
        _("This login link is not valid. Please log in again."),
    ),
    (
        (InvalidState, InvalidCode, BadCallback),
        400,
        _("Invalid login link"),
        _("This login link is not valid. Please log in again."),
    ),
    (
        (BindingMismatch, BindingMissing),
        400,
        _("Login started elsewhere"),
        _("This login was started in another browser. Please log in again here."),
    ),
    (
        DecryptionFailed,
        400,
        _("Invalid data"),
        _("The data from the Mini Program could not be read. Please try again."),
    ),
    (InactiveUser, 403, _("Account disabled"), _("This account is disabled.")),
    (
        (LoginRefused, RiskyUser),
        403,
        _("Login not allowed"),
        _("This WeChat account may not log in to this site."),
    ),
    (
        TooManyCodes,
        429,
        _("Too many login attempts"),
        _("There were too many login attempts from here. Please wait a few minutes, then log in again."),
    ),
    (
        AccountLinkFailed,
        503,
        _("Could not link your WeChat account"),
        _(
            "WeChat confirmed who you are, but we could not link it to an account on this site. "
            "Please try again later."
        ),
    ),
    (
        ExchangeWaitTimeout,
        503,
        _("Still logging you in"),
        _("Your login is still being completed. Please try again in a moment."),
    ),
    (
        ConfigurationError,
        503,
        _("WeChat login unavailable"),
        _("WeChat login is not available right now. Please try again later."),
    ),
    (
        (UpstreamUnavailable, UpstreamError),
        502,
        _("WeChat did not answer"),
        _("WeChat could not complete the login. Please try again."),
    ),
    (WeChatOAuthError, 502, _("Login failed"), _("The login could not be completed. Please try again.")),
)
DATABASE_PAGE = (
    503,
    _("Site busy"),
    _("The site cannot complete logins right now. Please try again in a moment."),
)


#: Errors the exchange guard has logged already: the page is only a DEBUG event.
LOGGED_BY_THE_GUARD = (UpstreamError, UpstreamUnavailable, ExchangeWaitTimeout)


def _log_level(error: WeChatOAuthError) -> int:
    if isinstance(error, LOGGED_BY_THE_GUARD):
        return logging.DEBUG
    return logging.ERROR if isinstance(error, ConfigurationError) else logging.INFO


def retry_url(target: str, app: str | None = None) -> str:
    """The "Log in again" address: the login of ``app`` (a configured app's name; None: the
    default app) coming back to ``target``."""
    login = reverse("wechat_oauth:login", kwargs={"app": app}) if app else reverse("wechat_oauth:login")
    return f"{login}?{urlencode({'next': target})}"


#: Seconds a 429 page asks the browser to wait.
TOO_MANY_RETRY_AFTER = 60
#: The error key of the database page (not an exception class's).
DATABASE_KEY = "database"


def _page_of(error_class: type[WeChatOAuthError]) -> tuple[int, Any, Any]:
    return next(
        (status, title, message)
        for classes, status, title, message in PAGES
        if issubclass(error_class, classes)
    )


def log_error(error: WeChatOAuthError) -> None:
    """The app's one (redacted) log record of an error page."""
    status, _title, _message = _page_of(type(error))
    logger.log(_log_level(error), "login page %s (%s): %s", status, error.key, error)


def json_error(error: WeChatOAuthError) -> JsonResponse:
    """The error of a JSON API (the Mini Program's session endpoint): the page's status, its
    key and message, never a page."""
    log_error(error)
    status, _title, message = _page_of(type(error))
    response = JsonResponse({"error": error.key, "message": str(message)}, status=status)
    if status == 429:
        response["Retry-After"] = str(TOO_MANY_RETRY_AFTER)
    return response


def json_database_error(error: DatabaseError) -> JsonResponse:
    log_database_error(error)
    status, _title, message = DATABASE_PAGE
    response = JsonResponse({"error": DATABASE_KEY, "message": str(message)}, status=status)
    response["Retry-After"] = "5"
    return response


def error_response(
    request: HttpRequest,
    error: WeChatOAuthError,
    *,
    target: str,
    app: str | None = None,
    retry: str | None = None,
) -> HttpResponse:
    log_error(error)
    return error_page(request, error.key, target=target, app=app, retry=retry)


def error_page(
    request: HttpRequest, key: str, *, target: str, app: str | None = None, retry: str | None = None
) -> HttpResponse:
    """The page of the error whose ``key`` is given (unknown keys: the generic 502 page).

    ``retry``: the *Log in again* address, when it is not this app's own login view (a site
    that logs in through a drop-in, e.g. :mod:`wechat_oauth.contrib.social`)."""
    if key == DATABASE_KEY:
        status, title, message = DATABASE_PAGE
    else:
        error_class = error_class_for_key(key)
        if issubclass(error_class, SnapshotUser):
            return _page(request, "wechat_oauth/snapshot.html", 200, {})
        status, title, message = _page_of(error_class)
    response = _page(
        request,
        "wechat_oauth/error.html",
        status,
        {
            "title": title,
            "message": message,
            "retry_url": retry if retry is not None else retry_url(target, app),
            "error_key": key,
        },
    )
    if status == 503 and key == DATABASE_KEY:
        response["Retry-After"] = "5"
    elif status == 429:
        response["Retry-After"] = str(TOO_MANY_RETRY_AFTER)
    return response


def protect_callback_response(response: HttpResponse) -> HttpResponse:
    """What every answer to a URL carrying a code gets, from the view and the middleware alike:
    the URL must not leave in a Referer, and no cache may keep the answer."""
    response["Referrer-Policy"] = "no-referrer"
    add_never_cache_headers(response)
    return response


def error_url(key: str, *, target: str) -> str:
    """Where the error page of ``key`` is shown on a URL that carries no code."""
    return f"{reverse('wechat_oauth:error')}?{urlencode({'reason': key, 'next': target})}"


#: An outage fails every login at once: its traceback once a minute, a line per login.
_database_down = ThrottledLog(logger)


def log_database_error(error: DatabaseError) -> None:
    if not _database_down.log(logging.ERROR, "login failed: database unavailable", exc_info=error):
        logger.error("login failed: database unavailable: %s: %s", type(error).__name__, error)


def database_error_response(
    request: HttpRequest,
    error: DatabaseError,
    *,
    target: str,
    app: str | None = None,
    retry: str | None = None,
) -> HttpResponse:
    log_database_error(error)
    return error_page(request, DATABASE_KEY, target=target, app=app, retry=retry)


def _page(request: HttpRequest, template: str, status: int, context: dict[str, object]) -> HttpResponse:
    response = render(request, template, context, status=status)
    add_never_cache_headers(response)
    _mark_as_logged(response)
    return response


def _mark_as_logged(response: HttpResponse) -> None:
    """Keep Django from logging the page a second time, with the raw request.

    Django logs every response of status 400 or more to ``django.request`` with the request
    attached (``django.utils.log.log_response``), and AdminEmailHandler and error trackers
    print that request's full URL: the callback's code and state, and a code is still unused
    when its claim was released (WeChat busy). Each page here was logged above, redacted;
    ``log_response`` skips a response whose ``_has_been_logged`` is set.
    """
    response._has_been_logged = True  # type: ignore[attr-defined]
