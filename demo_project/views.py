"""The demo's pages: home, the QR panel, the Mini Program panel, logout, and the naive login and
naive Mini Program session endpoint that show what the app prevents. In drop-in mode
(demo_project/drop_in.py) home also has the library's login button and shows a login made
through it."""

from __future__ import annotations

import json
import logging
import secrets
from collections import Counter
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, login, logout
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from demo_project.drop_in import DROP_INS, DropIn
from demo_project.fake import MOUNT, upstream_exchanges_by_code_hash
from demo_project.models import NaiveAttempt
from wechat_oauth.backends import BACKEND_PATH
from wechat_oauth.client import get_client
from wechat_oauth.exceptions import UpstreamUnavailable, WeChatOAuthError
from wechat_oauth.flow import RESENT_MARKERS, app_url, identity_of
from wechat_oauth.hashing import code_hash
from wechat_oauth.identity import link_account
from wechat_oauth.miniprogram import account_for_token, issue_token
from wechat_oauth.models import OAuthCodeUse, WeChatAccount
from wechat_oauth.registry import configured_apps, get_app
from wechat_oauth.results import PROFILE_SCOPES
from wechat_oauth.testing import DEFAULT_PERSON, openid_for, unionid_for

logger = logging.getLogger("demo_project.naive")

RECENT = 10
NAIVE_STATE_KEY = "demo_naive_state"
#: The website app whose QR panel the scan page shows (demo_project/settings.py).
QR_APP = "web"
#: The Mini Program whose front end the Mini Program page plays (demo_project/settings.py).
MINI_APP = "mini"
#: The app of the drop-in's provider or backend in drop-in mode (demo_project/settings.py).
DROP_IN_APP = "mp"


@require_GET
@never_cache
def home(request: HttpRequest) -> HttpResponse:
    app_names = {app.app_id: app.name for app in configured_apps().values()}
    exchanges = upstream_exchanges_by_code_hash()
    return render(
        request,
        "demo/home.html",
        {
            **_logged_in(request, app_names),
            **_drop_in(request),
            **_guarded(app_names, exchanges),
            **_naive(exchanges),
        },
    )


@require_GET
@never_cache
def scan(request: HttpRequest) -> HttpResponse:
    """WeChat's QR panel inside a page of the site (``{% wechat_qr_panel %}``)."""
    return render(request, "demo/scan.html", {"qr_app": QR_APP})


def _logged_in(request: HttpRequest, app_names: dict[str, str]) -> dict[str, Any]:
    """The user's WeChat accounts (every app it logged in through), and the one of this login."""
    if not request.user.is_authenticated:
        return {"accounts": [], "account": None, "openid": ""}
    accounts = list(WeChatAccount.objects.filter(user=request.user).order_by("created_at", "pk"))
    for account in accounts:
        account.app_name = app_names.get(account.app_id, account.app_id)
        account.linked_by = "unionid" if account.unionid else "openid only"
    identity = identity_of(request)  # None after the naive login
    current = next(
        (
            a
            for a in accounts
            if identity is not None and (a.app_id, a.openid) == (identity.app_id, identity.openid)
        ),
        None,
    )
    if current is None and accounts:
        current = max(accounts, key=lambda a: a.last_login_at or a.created_at)
    return {
        "accounts": accounts,
        "account": current,
        "openid": identity.openid if identity else (current.openid if current else ""),
    }


def _drop_in(request: HttpRequest) -> dict[str, Any]:
    """The drop-in mode (None: the plain demo), and the login made through its library, if the
    user logged in that way: the session's backend and the user's accounts of the library."""
    drop_in = DROP_INS.get(getattr(settings, "DEMO_DROP_IN", ""))
    if drop_in is None or not request.user.is_authenticated:
        return {"drop_in": drop_in, "drop_in_login": None}
    backend = request.session.get(BACKEND_SESSION_KEY, "")
    accounts = _library_accounts(drop_in, request.user) if backend == drop_in.session_backend else []
    if not accounts:  # another login: the app's own views, a password
        return {"drop_in": drop_in, "drop_in_login": None}
    return {
        "drop_in": drop_in,
        "drop_in_login": {"backend": backend, "accounts": accounts, "openid": accounts[0]["uid"]},
    }


def _library_accounts(drop_in: DropIn, user: Any) -> list[dict[str, str]]:
    """The user's WeChat accounts in the library's own table (allauth's ``SocialAccount``,
    social-auth's ``UserSocialAuth``), the most recent first."""
    if drop_in.name == "allauth":
        from allauth.socialaccount.models import SocialAccount

        rows = [
            (account.provider, account.uid, account.extra_data)
            for account in SocialAccount.objects.filter(
                user=user, provider__in=("weixin", "weixin_mp")
            ).order_by("-last_login", "-pk")
        ]
        table = "allauth SocialAccount"
    else:
        rows = [
            (social.provider, social.uid, social.extra_data)
            for social in user.social_auth.filter(provider__in=("weixinapp", "weixin")).order_by(
                "-modified", "-pk"
            )
        ]
        table = "social_django UserSocialAuth"
    return [
        {"table": table, "provider": provider, "uid": uid, "unionid": str((extra or {}).get("unionid") or "")}
        for provider, uid, extra in rows
    ]


def _code_stats(code_uses: QuerySet[OAuthCodeUse]) -> dict[str, int]:
    return code_uses.aggregate(
        codes=Count("pk"),
        logins=Count("pk", filter=Q(status=OAuthCodeUse.Status.EXCHANGED)),
        failures=Count("pk", filter=Q(status=OAuthCodeUse.Status.FAILED)),
        duplicates=Sum("duplicates", default=0),
    )


def _guarded(app_names: dict[str, str], exchanges: dict[str, int]) -> dict[str, Any]:
    """The guarded callbacks' codes, per app and in all, and the most recent ones."""
    code_uses = OAuthCodeUse.objects.filter(app_id__in=app_names)
    recent = list(code_uses.order_by("-first_seen_at", "-pk")[:RECENT])
    for row in recent:
        row.app_name = app_names[row.app_id]
        row.upstream_exchanges = exchanges.get(row.code_hash)  # None: before this server started
    # Where each app's codes arrive: a web app's callback, a Mini Program's session endpoint.
    per_app = [
        {
            "app": app,
            "endpoint": app_url("session" if app.is_mini_program else "callback", app),
            **_code_stats(code_uses.filter(app_id=app.app_id)),
        }
        for app in configured_apps().values()
    ]
    drop_in = DROP_INS.get(getattr(settings, "DEMO_DROP_IN", ""))
    if drop_in is not None:  # its provider's app is the Official Account: its codes arrive there too
        name, args = drop_in.callback
        for stats in per_app:
            if stats["app"].name == DROP_IN_APP:
                stats["endpoint"] += f", {reverse(name, args=args)}"
    total = {
        key: sum(stats[key] for stats in per_app) for key in ("codes", "logins", "failures", "duplicates")
    }
    return {"code_uses": recent, "guarded": total, "guarded_apps": per_app}


def _naive(exchanges: dict[str, int]) -> dict[str, Any]:
    """The naive callback's recent attempts and its failures by errcode (or outcome)."""
    attempts = list(NaiveAttempt.objects.all()[:RECENT])
    for attempt in attempts:
        attempt.upstream_exchanges = exchanges.get(attempt.code_hash) if attempt.code_hash else 0
    failures = Counter(
        _failure_label(outcome, errcode)
        for outcome, errcode in NaiveAttempt.objects.exclude(
            outcome=NaiveAttempt.Outcome.LOGGED_IN
        ).values_list("outcome", "errcode")
    )
    return {
        "attempts": attempts,
        "naive": {
            "attempts": NaiveAttempt.objects.count(),
            "failures": sum(failures.values()),
            "breakdown": ", ".join(f"{label} x{n}" for label, n in failures.most_common()),
        },
    }


@require_GET
@never_cache
def mini(request: HttpRequest) -> HttpResponse:
    """A Mini Program's front end, played by the page: one wx.login() code (the fake's), POSTed
    twice at once to the guarded session endpoint or to the naive one."""
    app = get_app(MINI_APP)
    config = {
        "app_id": app.app_id,
        # The fake WeChat's control API: what plays wx.login(), and its counters.
        "js_codes_url": f"{MOUNT}/_fake/js_codes",
        "stats_url": f"{MOUNT}/_fake/stats",
        "session_url": app_url("session", app),
        "naive_url": reverse("naive_session"),
        "report_url": reverse("mini_report"),
    }
    return render(
        request, "demo/mini.html", {"mini_app": app, "mini_config": config, "default_person": DEFAULT_PERSON}
    )


@csrf_exempt  # it changes nothing: a POST only so that the tokens stay out of the access log
@require_POST
@never_cache
def mini_report(request: HttpRequest) -> HttpResponse:
    """What the database holds for a person of the fake (``{"person", "tokens"}`` in): the Django
    users and WeChat accounts of that person (by unionid, or by openid in each app), and the user
    each session token authenticates as (None: not a valid token)."""
    body = _json_object(request)
    person, tokens = body.get("person"), body.get("tokens", [])
    if (
        not isinstance(person, str)
        or not person
        or not isinstance(tokens, list)
        or not all(isinstance(token, str) for token in tokens)
    ):
        return JsonResponse(
            {"error": "bad_request", "message": 'POST {"person": "<name>", "tokens": ["<token>", ...]}'},
            status=400,
        )
    apps = list(configured_apps().values())
    app_names = {app.app_id: app.name for app in apps}
    of_person = Q(unionid=unionid_for(person))
    for app in apps:
        of_person |= Q(app_id=app.app_id, openid=openid_for(app.app_id, person))
    accounts = list(WeChatAccount.objects.filter(of_person).order_by("created_at", "pk"))
    token_accounts = [account_for_token(token) for token in tokens]
    return JsonResponse(
        {
            "person": person,
            "users": sorted({account.user_id for account in accounts}),
            "accounts": [
                {
                    "app": app_names.get(account.app_id, account.app_id),
                    "app_id": account.app_id,
                    "openid": account.openid,
                    "unionid": account.unionid,
                    "user_id": account.user_id,
                }
                for account in accounts
            ],
            "token_users": [account.user_id if account else None for account in token_accounts],
        }
    )


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
        attempt.errmsg = (
            "the session holds no login state: an earlier request already used and removed it"
            if not expected
            else "the state does not match the one in the session"
        )
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
        attempt.outcome = NaiveAttempt.Outcome.UNAVAILABLE if unavailable else NaiveAttempt.Outcome.UPSTREAM
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
    logger.info(
        "naive callback%s failed: %s %s",
        _variant(attempt),
        attempt.outcome,
        attempt.errcode if attempt.errcode is not None else "",
    )
    return render(request, "demo/naive_error.html", {"attempt": attempt}, status=status)


def _variant(attempt: NaiveAttempt) -> str:
    return " (re-sent variant)" if attempt.resent else ""


@csrf_exempt  # as the app's session endpoint: a Mini Program has no cookie to forge requests with
@require_POST
@never_cache
def naive_session(request: HttpRequest) -> HttpResponse:
    """A Mini Program's session endpoint as tutorials write it: each POST's code straight to
    ``jscode2session``, then the identity linked and a session token answered.

    Correct for one request; a front end that calls wx.login() in both onLaunch and onLoad, or
    retries, sends one code twice. Each POST asks WeChat: one gets 40163 "code been used" (and
    had both succeeded, the second would have rotated the session_key under the first).
    """
    code = _json_object(request).get("code")
    if not isinstance(code, str) or not code:
        return JsonResponse(
            {"error": "bad_request", "message": 'POST {"code": "<wx.login() code>"}'}, status=400
        )
    app = get_app(MINI_APP)
    try:
        token = get_client(app).jscode2session(code)
    except WeChatOAuthError as error:
        logger.info("naive Mini Program session failed: %s", error.errcode)
        return JsonResponse(
            {"error": error.key, "errcode": error.errcode, "errmsg": (error.errmsg or error.message)[:255]},
            status=502,
        )
    account, _created = link_account(token, app=app)
    logger.info("naive Mini Program session: logged in openid %s", token.openid)
    return JsonResponse(
        {
            "token": issue_token(account),
            "openid": token.openid,
            "unionid": token.unionid,
            "user_id": account.user_id,
        }
    )


def _json_object(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object body, or ``{}`` if it is not one."""
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _failure_label(outcome: str, errcode: int | None) -> str:
    """``40163``, ``state``, ``unavailable``...: what the summary counts failures by."""
    return str(errcode) if errcode is not None else outcome
