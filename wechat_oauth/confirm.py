"""Ask before an unbound login replaces who is signed in.

An unbound callback (no binding cookie: WeChat's browser may have dropped it, or the link was
sent by someone else, see :mod:`.binding`) must never silently switch a browser that is logged
in as one person to another. The exchange is done (exactly once, like any other), and the login
it yields is parked in *this* browser's session; the page ``wechat_oauth/confirm.html``
(overridable) asks whether to continue as the WeChat user or to stay. Only a POST of that page,
from the same session and with Django's CSRF token, completes the parked login, and only within
:data:`PENDING_MAX_AGE` seconds.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

if TYPE_CHECKING:
    from .flow import WeChatIdentity
    from .models import WeChatAccount

#: Session key of the parked login.
PENDING_KEY = "_wechat_oauth_pending"
#: How long (seconds) a parked login may be confirmed.
PENDING_MAX_AGE = 300


def ask(
    request: HttpRequest,
    *,
    identity: WeChatIdentity,
    target: str,
    account: WeChatAccount | None = None,
    created: bool = False,
) -> HttpResponse:
    """Park the login and render the question (200). Every duplicate of the callback parks the
    same login and shows the same page."""
    request.session[PENDING_KEY] = {
        "identity": asdict(identity),
        "account": account.pk if account is not None else None,
        "created": created,
        "target": target,
        "expires": time.time() + PENDING_MAX_AGE,
    }
    context = {
        "current": getattr(request, "user", None),
        "nickname": account.nickname if account is not None else "",
        "confirm_url": reverse("wechat_oauth:confirm"),
    }
    response = render(request, "wechat_oauth/confirm.html", context)
    add_never_cache_headers(response)
    return response


def complete(request: HttpRequest) -> HttpResponse:
    """The confirmation page's POST: ``continue`` completes the parked login, anything else
    drops it; both go on to the login's ``next``. No parked login: a 400 page."""
    from . import flow
    from .exceptions import InvalidState
    from .models import WeChatAccount
    from .responses import error_response

    pending: dict[str, Any] | None = request.session.pop(PENDING_KEY, None)
    if not isinstance(pending, dict) or pending.get("expires", 0) < time.time():
        return error_response(
            request, InvalidState("No login waits for confirmation"), target=flow.default_redirect()
        )
    target = str(pending["target"])
    if request.POST.get("action") != "continue":
        return HttpResponseRedirect(flow.safe_target(request, target))
    identity = flow.WeChatIdentity(**pending["identity"])
    if pending["account"] is None:
        flow.switch_identity(request, identity)
    else:
        account = WeChatAccount.objects.select_related("user").get(pk=pending["account"])
        user = flow.authenticated(request, account)
        flow.log_in(request, user, account, created=bool(pending["created"]), identity=identity)
    return HttpResponseRedirect(flow.safe_target(request, target))
