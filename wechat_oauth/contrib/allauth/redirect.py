"""The login start and the state check: no session, so a duplicate and a dropped cookie pass.

allauth keeps ``{"process", "next", "data", "headless"}`` in the session under a random state
id and pops it in the callback: the duplicate callback finds it gone, and WeChat's browser may
have dropped the session cookie altogether. Here the state sent to WeChat is the app's signed
state (:func:`wechat_oauth.state.issue_state`: issue time, nonce, attempt, a commitment to the
browser-binding cookie, an HMAC), and allauth's dict rides in the redirect_uri's own query
string (WeChat keeps it), in one canonical form the HMAC binds::

    /accounts/weixin/login/callback/?next=%2Fshop%2F&process=connect&code=...&state=...

So :func:`verify` is pure and idempotent: every duplicate passes it exactly as the first request
did, with or without cookies, and nobody can change ``next`` or ``process`` without breaking the
HMAC. What the browser binding requires is unchanged (:func:`wechat_oauth.binding.check_binding`
right after): a different binding cookie is refused, a missing one is accepted only from WeChat's
User-Agents.
"""

from __future__ import annotations

import json
from typing import Any, cast
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, QueryDict

from ...exceptions import BadCallback
from ...flow import authorize_redirect
from ...registry import WeChatApp
from ...state import LoginState, leads_into_a_callback, verify_state
from .client import client_for, wechat_app
from .compat import STATE_KEYS, allauth_state

#: The process allauth assumes when none is given (``AuthProcess.LOGIN``): left out of URLs.
DEFAULT_PROCESS = "login"


def callback_query(state: dict[str, Any]) -> str:
    """allauth's state as the callback's query string, in the one form the HMAC covers."""
    items: list[tuple[str, str]] = []
    if state.get("next"):
        items.append(("next", str(state["next"])))
    if state.get("process", DEFAULT_PROCESS) != DEFAULT_PROCESS:
        items.append(("process", str(state["process"])))
    if state.get("headless"):
        items.append(("headless", "1"))
    if state.get("data") is not None:
        items.append(("data", json.dumps(state["data"], sort_keys=True, separators=(",", ":"))))
    return urlencode(items)


def state_from_query(query: QueryDict) -> dict[str, Any]:
    """allauth's state as the callback's query carries it (not yet verified: see :func:`verify`)."""
    for name in STATE_KEYS:
        if len(query.getlist(name)) > 1:
            raise BadCallback(f"The {name!r} parameter is repeated")
    data = None
    if "data" in query:
        try:
            data = json.loads(cast(str, query["data"]))  # QueryDict[key]: the last value
        except ValueError:
            raise BadCallback("The 'data' parameter is not JSON") from None
    return allauth_state(
        process=query.get("process") or DEFAULT_PROCESS,
        next_url=query.get("next") or None,
        data=data,
        headless=query.get("headless") == "1",
    )


def callback_paths() -> list[str]:
    """The callback paths of the drop-in's providers (a ``next`` must not lead into one)."""
    from django.urls import NoReverseMatch, reverse

    from .provider import provider_classes

    paths = []
    for cls in provider_classes:
        try:
            paths.append(reverse(f"{cls.id}_callback"))
        except NoReverseMatch:
            continue
    return paths


def start_login(
    request: HttpRequest,
    provider: Any,
    state: dict[str, Any],
    *,
    attempt: int = 0,
    app: WeChatApp | None = None,
) -> HttpResponse:
    """Send the browser to WeChat: the authorize page for an Official Account, qrconnect for a
    website app, with a new state and the binding cookie. ``attempt=1``: the one automatic
    restart after a spent code (the state carries it: the loop guard)."""
    app = app or wechat_app(provider)
    if state.get("next") and leads_into_a_callback(str(state["next"]), callback_paths()):
        state = {**state}
        state.pop("next")  # a login-CSRF link hidden in an ordinary login link
    target = callback_query(state)
    callback = provider.get_oauth2_adapter(request).get_callback_url(request, provider.app)
    return authorize_redirect(
        request,
        target=target,
        attempt=attempt,
        app=app,
        redirect_uri=f"{callback}?{target}" if target else callback,
        client=client_for(provider, app),
    )


def verify(app: WeChatApp, state_value: str, state: dict[str, Any]) -> LoginState:
    """The login state of this callback, if it is genuine, current and was issued for this app,
    its scope and exactly this allauth state (``InvalidState``, ``ExpiredState`` otherwise)."""
    return verify_state(state_value, target=callback_query(state), scope=app.scope, app_id=app.app_id)
