"""A login belongs to the browser that started it: the binding cookie and the replay fingerprint.

The login start gives the browser a binding cookie (random, HttpOnly, SameSite=Lax, lives
STATE_MAX_AGE) and the signed state carries a keyed hash of it (:func:`commitment`). At the
callback, :func:`check_binding` decides from the request's cookie, its User-Agent and the state
alone, so every duplicate of one callback gets the same decision:

* cookie present and matching the state: **bound**, the browser that started the login;
* cookie present and different: refused (:class:`~wechat_oauth.exceptions.BindingMismatch`):
  the login was started in another browser (a login-CSRF link, or a stolen callback URL);
* cookie absent: **unbound**. WeChat's in-app browser is known to drop cookies between the
  authorisation and the callback, so an unbound callback is accepted from a User-Agent listed in
  UNBOUND_USER_AGENTS (WeChat's and WeCom's by default) and refused from any other
  (:class:`~wechat_oauth.exceptions.BindingMissing`). An unbound callback never silently
  replaces a different logged-in user: the flow asks first (see :mod:`.confirm`).

A duplicate is answered with the first request's outcome only when it comes from the same
browser: :func:`fingerprint` is a keyed hash of the binding cookie (or its absence) and the
User-Agent, the two things WeChat's duplicates of one callback share. The IP address is left
out on purpose: a phone changes it between networks, and a carrier-grade NAT gives thousands of
people one, so it would refuse genuine duplicates and tell attackers apart from nobody.
"""

from __future__ import annotations

import enum
import re
import secrets
from typing import TYPE_CHECKING

from django.utils.crypto import constant_time_compare

from .conf import app_settings
from .exceptions import BindingMismatch, BindingMissing
from .hashing import keyed_hash, signing_keys
from .state import BINDING_BYTES, LoginState, b62encode_bytes

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

__all__ = [
    "Binding",
    "binding_token",
    "check_binding",
    "commitment",
    "fingerprint",
    "fingerprint_of",
    "set_binding_cookie",
]

#: Random bytes of a binding cookie; its value is their base62 form (22 characters).
TOKEN_BYTES = 16
_TOKEN = re.compile(r"[0-9A-Za-z]{22}", re.ASCII)


class Binding(enum.Enum):
    BOUND = "bound"
    UNBOUND = "unbound"


def _cookie(request: HttpRequest) -> str | None:
    return request.COOKIES.get(app_settings.BINDING_COOKIE_NAME)


def binding_token(request: HttpRequest) -> str:
    """The browser's binding token: its cookie when it holds a well-formed one (so logins
    started in two tabs both stay valid), else a new random one."""
    current = _cookie(request)
    if current is not None and _TOKEN.fullmatch(current):
        return current
    return b62encode_bytes(secrets.token_bytes(TOKEN_BYTES))


def commitment(token: str, *, secret: str | bytes | None = None, nbytes: int = BINDING_BYTES) -> str:
    """What a state carries of the binding token: one-way, so a leaked state (callback URLs
    leak through logs and shared links) does not let anyone forge the cookie. ``nbytes``:
    ``COMPACT_BINDING_BYTES`` for a compact state."""
    digest = bytes.fromhex(keyed_hash("binding", token, secret=secret))
    return b62encode_bytes(digest[:nbytes])


def set_binding_cookie(response: HttpResponse, request: HttpRequest, token: str) -> None:
    response.set_cookie(
        app_settings.BINDING_COOKIE_NAME,
        token,
        max_age=int(app_settings.STATE_MAX_AGE),
        path="/",
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )


def check_binding(request: HttpRequest, state: LoginState) -> Binding:
    """Bound or unbound, or the refusal; depends on nothing but the request and the state."""
    cookie = _cookie(request)
    if cookie is not None:
        # Every signing key: a state issued before a key rotation still matches its cookie.
        if any(
            constant_time_compare(commitment(cookie, secret=key, nbytes=state.binding_bytes), state.binding)
            for key in signing_keys()
        ):
            return Binding.BOUND
        raise BindingMismatch()
    if unbound_allowed(request):
        return Binding.UNBOUND
    raise BindingMissing()


def unbound_allowed(request: HttpRequest) -> bool:
    """Whether this browser is one known to lose cookies mid-login (UNBOUND_USER_AGENTS)."""
    agent = request.headers.get("User-Agent", "")
    return any(marker in agent for marker in app_settings.UNBOUND_USER_AGENTS)


def fingerprint(request: HttpRequest) -> str:
    """Keyed hash of what the duplicates of one callback share: the binding cookie (or its
    absence) and the User-Agent. Stored with the code's outcome; a duplicate with another
    fingerprint is not given that outcome."""
    return fingerprint_of(_cookie(request), request.headers.get("User-Agent", ""))


def fingerprint_of(cookie: str | None, user_agent: str) -> str:
    """:func:`fingerprint` from its parts (for code that calls ``exchange_once`` itself)."""
    return keyed_hash("fingerprint", f"{cookie or ''}\n{user_agent}")
