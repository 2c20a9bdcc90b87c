"""The demo's pages: home, logout, and the naive login that shows what the app prevents."""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from dataclasses import replace

from django.contrib.auth import login, logout
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from demo_project.fake import upstream_exchanges_by_code_hash
from demo_project.models import NaiveAttempt
from wechat_oauth.backends import BACKEND_PATH
from wechat_oauth.client import get_client
from wechat_oauth.conf import app_settings
from wechat_oauth.exceptions import UpstreamUnavailable, WeChatOAuthError
from wechat_oauth.flow import RESENT_MARKERS
from wechat_oauth.hashing import code_hash
from wechat_oauth.identity import link_account
from wechat_oauth.models import OAuthCodeUse, WeChatAccount
from wechat_oauth.results import PROFILE_SCOPES

logger = logging.getLogger("demo_project.naive")

RECENT = 10
NAIVE_STATE_KEY = "demo_naive_state"


@require_GET
@never_cache
def home(request: HttpRequest) -> HttpResponse:
    account = None
    if request.user.is_authenticated:
        account = (WeChatAccount.objects.filter(user=request.user, app_id=app_settings.APP_ID)
                   .order_by("-last_login_at").first())
    identity = request.wechat  # type: ignore[attr-defined]
    exchanges = upstream_exchanges_by_code_hash()

    code_uses = list(OAuthCodeUse.objects.filter(app_id=app_settings.APP_ID)
                     .order_by("-first_seen_at", "-pk")[:RECENT])
    for row in code_uses:
        row.upstream_exchanges = exchanges.get(row.code_hash)  # None: before this server started
    guarded = OAuthCodeUse.objects.filter(app_id=app_settings.APP_ID).aggregate(
        codes=Count("pk"),
        logins=Count("pk", filter=Q(status=OAuthCodeUse.Status.EXCHANGED)),
        failures=Count("pk", filter=Q(status=OAuthCodeUse.Status.FAILED)),
        duplicates=Sum("duplicates", default=0),
    )

    attempts = list(NaiveAttempt.objects.all()[:RECENT])
    for attempt in attempts:
        attempt.upstream_exchanges = exchanges.get(attempt.code_hash) if attempt.code_hash else 0
    naive_failures = Counter(
        _failure_label(outcome, errcode)
        for outcome, errcode in NaiveAttempt.objects.exclude(
            outcome=NaiveAttempt.Outcome.LOGGED_IN).values_list("outcome", "errcode"))
    naive = {
        "attempts": NaiveAttempt.objects.count(),
        "failures": sum(naive_failures.values()),
        "breakdown": ", ".join(f"{label} x{n}" for label, n in naive_failures.most_common()),
    }

    return render(request, "demo/home.html", {
        "account": account,
        "openid": identity.openid if identity else (account.openid if account else ""),
        "code_uses": code_uses,
        "guarded": guarded,
        "attempts": attempts,
        "naive": naive,
    })


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("home")


# -- The naive login: what tutorials do, for comparison ------------------------------------------


@require_GET
@never_cache
def naive_login(request: HttpRequest) -> HttpResponse:
    """Start a WeChat login whose callback is the naive one (state kept in the session)."""
    state = secrets.token_hex(16)  # WeChat accepts [A-Za-z0-9] only
    request.session[NAIVE_STATE_KEY] = state
    redirect_uri = request.build_absolute_uri(reverse("naive_callback"))
    return HttpResponseRedirect(get_client().authorize_url(redirect_uri, state))


@require_GET
@never_cache
def naive_callback(request: HttpRequest) -> HttpResponse:
    """The callback as tutorials write it: pop the session's state, exchange the code directly.

    Correct for one request; WeChat's double callback sends two. The first (aborted by the
    client) pops the state and spends the code; the second, the one the user sees, finds no
    state in the session, or gets 40163 "code been used" from WeChat.
    """
    attempt = NaiveAttempt(resent=any(name in request.GET for name in RESENT_MARKERS))
    code = request.GET.get("code", "")
    state = request.GET.get("state", "")
    expected = request.session.pop(NAIVE_STATE_KEY, None)
    if code:
        attempt.code_hash = code_hash(code)

    if not expected or not constant_time_compare(state, expected):
        attempt.outcome = NaiveAttempt.Outcome.STATE
        attempt.errmsg = ("the session holds no login state: an earlier request already used "
                          "and removed it" if not expected else
                          "the state does not match the one in the session")
        return _naive_failure(request, attempt, status=400)
    if not code:
        attempt.outcome = NaiveAttempt.Outcome.DENIED
        attempt.errmsg = "the callback carries no code: the user did not allow the login"
        return _naive_failure(request, attempt, status=400)

    client = get_client()
    try:
        token = client.exchange_code(code)
    except WeChatOAuthError as error:
        unavailable = isinstance(error, UpstreamUnavailable)
        attempt.outcome = (NaiveAttempt.Outcome.UNAVAILABLE if unavailable
                           else NaiveAttempt.Outcome.UPSTREAM)
        attempt.errcode = error.errcode
        attempt.errmsg = (error.errmsg or error.message)[:255]
        return _naive_failure(request, attempt, status=502)

    if token.scope in PROFILE_SCOPES:
        try:
            token = replace(token, profile=client.userinfo(token.access_token, token.openid))
        except WeChatOAuthError as error:
            logger.warning("naive login: userinfo failed: %s", error)
    account, _created = link_account(token)
    login(request, account.user, backend=BACKEND_PATH)
    attempt.outcome = NaiveAttempt.Outcome.LOGGED_IN
    attempt.openid = token.openid
    attempt.save()
    logger.info("naive callback%s: logged in openid %s", _variant(attempt), token.openid)
    return redirect("home")


def _naive_failure(request: HttpRequest, attempt: NaiveAttempt, *, status: int) -> HttpResponse:
    attempt.save()
    logger.info("naive callback%s failed: %s %s", _variant(attempt), attempt.outcome,
                attempt.errcode if attempt.errcode is not None else "")
    return render(request, "demo/naive_error.html", {"attempt": attempt}, status=status)


def _variant(attempt: NaiveAttempt) -> str:
    return " (re-sent variant)" if attempt.resent else ""


def _failure_label(outcome: str, errcode: int | None) -> str:
    """``40163``, ``state``, ``unavailable``...: what the summary counts failures by."""
    return str(errcode) if errcode is not None else outcome
