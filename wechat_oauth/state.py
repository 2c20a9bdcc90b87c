"""Signed login states that need no session, and the check of ``next`` URLs.

Why the state is built this way:

* WeChat often calls the callback twice with the same ``state`` (the first request aborted and
  re-sent with ``uin``/``key``/``pass_ticket`` added; on Android sometimes with two different
  codes), and its in-app browser often drops cookies. A state kept in the session and popped on
  first use fails the duplicate, and every login whose cookie was lost. So the state carries its
  own proof, an HMAC: :func:`verify_state` is pure (no session, database or cache) and
  idempotent, and the duplicate passes exactly as the first call did. Replays are bounded by
  STATE_MAX_AGE and by the single use of codes, which the exchange guard enforces.
* WeChat accepts at most 128 characters of ``[A-Za-z0-9]``, so every field is base62 with a
  fixed width (no separators needed), and the whole state is :data:`STATE_LENGTH` characters.
* The ``next`` URL does not travel in the state (it would not fit): it rides in the
  redirect_uri's own query string, which WeChat keeps. The MAC *binds* it, with the scope and app
  id, so a state cannot be spliced onto another return page, scope or app.
* The nonce names the login attempt: two callbacks with different codes and one state are the
  same attempt. ``attempt`` (0: started by the user, 1: the automatic restart after a spent code)
  is signed so that a loop guard can trust it.
* ``binding`` commits the state to the browser that started the login (see :mod:`.binding`): a
  keyed hash of that browser's binding cookie, so the state can be checked against the cookie
  when the callback has it, and still verified (as unbound) when WeChat's browser dropped it.
  It is a one-way commitment: a leaked state does not reveal the cookie.

Layout (version 2): ``version(1) issued(6, unix seconds) attempt(1 digit) nonce(22, 128 random
bits) binding(22) mac(22, HMAC-SHA256 truncated to 128 bits)``; the MAC covers the first 52
characters, the app id, the scope and the target.

The compact layout (version ``c``, ``issue_state(compact=True)``, 53 characters) is for a state
that must also fit a column of someone else's: python-social-auth keeps its state as a nonce
in a 65-character column. The same fields, shorter: nonce 64 random bits (11), binding 96 bits
(17), MAC 96 bits (17). Both layouts verify; each is checked against its own length.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import DisallowedHost
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme

from .conf import SETTINGS_NAME, app_settings
from .exceptions import ExpiredState, InvalidState
from .hashing import signing_keys
from .results import aware_utc

if TYPE_CHECKING:
    from django.http import HttpRequest

UTC = timezone.utc

__all__ = [
    "CLOCK_SKEW",
    "COMPACT_STATE_LENGTH",
    "MAX_NEXT_URL_LENGTH",
    "STATE_LENGTH",
    "LoginState",
    "callback_path",
    "callback_paths",
    "issue_state",
    "leads_into_a_callback",
    "safe_next_url",
    "verify_state",
]

# -- base62 ------------------------------------------------------------------------------------

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_INDEX = {char: value for value, char in enumerate(ALPHABET)}
_ALNUM = re.compile(r"[A-Za-z0-9]+", re.ASCII)


@functools.cache
def b62_width(nbytes: int) -> int:
    """Characters needed to write any ``nbytes``-byte value in base62 (per process: a state's
    few fixed field sizes, asked for on every login and callback)."""
    width = 0
    while 62**width < 256**nbytes:
        width += 1
    return width


def b62encode_int(value: int, width: int) -> str:
    """``value`` in base62, left-padded with ``0`` to exactly ``width`` characters."""
    if value < 0 or value >= 62**width:
        raise ValueError(f"{value} does not fit in {width} base62 characters")
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 62)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def b62decode_int(text: str) -> int:
    """The integer written by ``text`` (raises ValueError on a character outside base62)."""
    value = 0
    for char in text:
        try:
            value = value * 62 + _INDEX[char]
        except KeyError:
            raise ValueError(f"not a base62 character: {char!r}") from None
    return value


def b62encode_bytes(data: bytes) -> str:
    """``data`` in base62, fixed width for its length (leading zero bytes are kept)."""
    return b62encode_int(int.from_bytes(data, "big"), b62_width(len(data)))


# -- State -------------------------------------------------------------------------------------

VERSION = "2"
_ISSUED_CHARS = 6  # 62**6 seconds: until the year 3769
_NONCE_BYTES = 16
_MAC_BYTES = 16
#: Bytes of the binding commitment (see :func:`wechat_oauth.binding.commitment`).
BINDING_BYTES = 16
_NONCE_CHARS = b62_width(_NONCE_BYTES)  # 22
_MAC_CHARS = b62_width(_MAC_BYTES)  # 22
#: Characters of the binding commitment (22).
BINDING_CHARS = b62_width(BINDING_BYTES)
#: The binding of a state issued for no browser in particular (``issue_state`` without one).
NO_BINDING = "0" * BINDING_CHARS
_BODY_CHARS = len(VERSION) + _ISSUED_CHARS + 1 + _NONCE_CHARS + BINDING_CHARS
#: Length of every state this version issues (74).
STATE_LENGTH = _BODY_CHARS + _MAC_CHARS
#: What WeChat accepts.
WECHAT_MAX_STATE = 128
#: How far (seconds) a state's issue time may be ahead of this server's clock.
CLOCK_SKEW = 60
#: Salt of the state's HMAC; distinct from hashing.state_hash's ("wechat_oauth.state").
_MAC_SALT = "wechat_oauth.state.mac"

_ISSUED = slice(len(VERSION), len(VERSION) + _ISSUED_CHARS)
_ATTEMPT = _ISSUED.stop
_NONCE = slice(_ATTEMPT + 1, _ATTEMPT + 1 + _NONCE_CHARS)
_BINDING = slice(_NONCE.stop, _BODY_CHARS)

#: The compact layout's version, and the bytes of its nonce, binding and MAC.
COMPACT_VERSION = "c"
COMPACT_NONCE_BYTES = 8
COMPACT_BINDING_BYTES = 12
COMPACT_MAC_BYTES = 12


@dataclass(frozen=True)
class _Layout:
    """Where each field of one version's states is, and how long the whole state is."""

    version: str
    nonce_bytes: int
    binding_bytes: int
    mac_bytes: int

    @property
    def nonce(self) -> slice:
        start = len(self.version) + _ISSUED_CHARS + 1
        return slice(start, start + b62_width(self.nonce_bytes))

    @property
    def binding(self) -> slice:
        return slice(self.nonce.stop, self.nonce.stop + b62_width(self.binding_bytes))

    @property
    def body_chars(self) -> int:
        return cast(int, self.binding.stop)

    @property
    def length(self) -> int:
        return self.body_chars + b62_width(self.mac_bytes)


_LAYOUTS = {
    VERSION: _Layout(VERSION, _NONCE_BYTES, BINDING_BYTES, _MAC_BYTES),
    COMPACT_VERSION: _Layout(COMPACT_VERSION, COMPACT_NONCE_BYTES, COMPACT_BINDING_BYTES, COMPACT_MAC_BYTES),
}
#: Length of every compact state (53).
COMPACT_STATE_LENGTH = _LAYOUTS[COMPACT_VERSION].length
#: The binding of a compact state issued for no browser in particular.
COMPACT_NO_BINDING = "0" * b62_width(COMPACT_BINDING_BYTES)


@dataclass(frozen=True)
class LoginState:
    """A state as issued or as verified."""

    value: str  # the state string sent to WeChat
    nonce: str  # identifies the login attempt
    issued_at: datetime  # aware, UTC, whole seconds
    attempt: int  # 0: started by the user; 1: the automatic restart (loop guard)
    #: Commitment to the starting browser's binding cookie; NO_BINDING when issued for none.
    binding: str = NO_BINDING

    @property
    def binding_bytes(self) -> int:
        """The bytes of the commitment this state's layout carries (see binding.commitment)."""
        return COMPACT_BINDING_BYTES if self.value[:1] == COMPACT_VERSION else BINDING_BYTES


def issue_state(
    *,
    target: str,
    scope: str | None = None,
    attempt: int = 0,
    app_id: str | None = None,
    binding: str | None = None,
    now: datetime | None = None,
    compact: bool = False,
) -> LoginState:
    """A new state bound to ``target`` (the path and query the user returns to), scope and app.

    ``scope`` and ``app_id`` default to DEFAULT_APP's (the SCOPE and APP_ID settings without
    APPS). ``binding`` is the
    commitment to the browser's binding cookie (:func:`wechat_oauth.binding.commitment`, of
    ``COMPACT_BINDING_BYTES`` for a compact state); None: no browser in particular.
    ``compact``: the 53-character layout (see the module's docstring).
    """
    if not isinstance(target, str):
        raise TypeError("target must be a str")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or not 0 <= attempt <= 9:
        raise ValueError("attempt must be an int from 0 to 9")
    issued = int(aware_utc(now).timestamp())
    if issued < 0:
        raise ValueError("now is before 1970")
    layout = _LAYOUTS[COMPACT_VERSION if compact else VERSION]
    width = b62_width(layout.binding_bytes)
    if binding is None:
        binding = "0" * width
    if len(binding) != width or not _ALNUM.fullmatch(binding):
        raise ValueError(f"binding must be {width} base62 characters")
    body = (
        layout.version
        + b62encode_int(issued, _ISSUED_CHARS)
        + str(attempt)
        + b62encode_bytes(secrets.token_bytes(layout.nonce_bytes))
        + binding
    )
    mac = _mac(signing_keys()[0], body, *_context(target, scope, app_id), nbytes=layout.mac_bytes)
    return LoginState(
        value=body + mac,
        nonce=body[layout.nonce],
        issued_at=datetime.fromtimestamp(issued, UTC),
        attempt=attempt,
        binding=binding,
    )


def verify_state(
    value: str,
    *,
    target: str,
    scope: str | None = None,
    app_id: str | None = None,
    max_age: float | None = None,
    now: datetime | None = None,
) -> LoginState:
    """The :class:`LoginState` that ``value`` encodes, if it is genuine, current and bound here.

    Raises :class:`InvalidState` for anything malformed, forged, of an unknown version, issued
    for another target, scope or app id (or under another key), or issued more than CLOCK_SKEW
    seconds in the future; :class:`ExpiredState` when it is genuine but older than ``max_age``
    seconds (default STATE_MAX_AGE). The MAC is checked before the age, so only a state this
    site issued can be reported as expired. Calling it twice gives the same answer.
    """
    if not isinstance(value, str) or not value:
        raise InvalidState("The login state is missing")
    if len(value) > WECHAT_MAX_STATE or not _ALNUM.fullmatch(value):
        raise InvalidState("The login state is malformed")
    layout = _LAYOUTS.get(value[0])
    if layout is None:
        raise InvalidState("The login state has an unknown version")
    if len(value) != layout.length or not value[_ATTEMPT].isdigit():
        raise InvalidState("The login state is malformed")
    if not isinstance(target, str):
        raise TypeError("target must be a str")
    body, mac = value[: layout.body_chars], value[layout.body_chars :]
    context = _context(target, scope, app_id)
    if not any(
        constant_time_compare(mac, _mac(key, body, *context, nbytes=layout.mac_bytes))
        for key in signing_keys()
    ):
        raise InvalidState("The login state is forged, or was issued for another page, scope or app")
    issued = b62decode_int(value[_ISSUED])
    age = aware_utc(now).timestamp() - issued
    if age < -CLOCK_SKEW:
        raise InvalidState("The login state was issued in the future")
    if age > (app_settings.STATE_MAX_AGE if max_age is None else max_age):
        raise ExpiredState()
    return LoginState(
        value=value,
        nonce=value[layout.nonce],
        issued_at=datetime.fromtimestamp(issued, UTC),
        attempt=int(value[_ATTEMPT]),
        binding=value[layout.binding],
    )


def _context(target: str, scope: str | None, app_id: str | None) -> tuple[str, str, str]:
    """What a state's MAC binds besides its body; app id and scope default to DEFAULT_APP's."""
    if app_id is None or scope is None:
        from .registry import get_app

        default = get_app()
        app_id = default.app_id if app_id is None else app_id
        scope = default.scope if scope is None else scope
    return (str(app_id), str(scope), target)


def _mac(
    secret: str | bytes, body: str, app_id: str, scope: str, target: str, *, nbytes: int = _MAC_BYTES
) -> str:
    # JSON of a list of strings is injective: no choice of target can imitate another field.
    # (The version is the body's first character: a MAC never verifies under the other layout.)
    message = json.dumps([body, app_id, scope, target], ensure_ascii=True, separators=(",", ":"))
    digest = salted_hmac(_MAC_SALT, message, secret=secret, algorithm="sha256").digest()
    return b62encode_bytes(digest[:nbytes])


# -- next URLs ---------------------------------------------------------------------------------

#: Longest ``next`` URL accepted.
MAX_NEXT_URL_LENGTH = 2048
_SAFE_SCHEMES = ("http", "https")
_DECODE_ROUNDS = 4


def safe_next_url(
    candidate: str | None,
    *,
    request: HttpRequest | None = None,
    allowed_hosts: Iterable[str] = (),
    require_https: bool | None = None,
) -> str | None:
    """``candidate`` if it is a safe place to send the user after login, else None.

    Safe: a site-absolute path (``/orders/?id=3``), or an http(s) URL whose host[:port] is
    exactly one of the request's host, ``allowed_hosts`` and ALLOWED_REDIRECT_HOSTS (https only
    when ``require_https``, which defaults to ``request.is_secure()``). On top of
    :func:`~django.utils.http.url_has_allowed_host_and_scheme`, refused: control, format and
    whitespace characters and backslashes anywhere; userinfo; protocol-relative and path-relative
    forms; and, after percent-decoding (repeatedly) the part before ``?``/``#``, control and
    whitespace characters, backslashes and a leading ``//``. In the query and fragment an encoded
    space or backslash is ordinary data (``?q=a%20b``); encoded control characters are refused.
    """
    if not isinstance(candidate, str) or not candidate or len(candidate) > MAX_NEXT_URL_LENGTH:
        return None
    hosts = set(allowed_hosts) | set(app_settings.ALLOWED_REDIRECT_HOSTS)
    if request is not None:
        try:
            hosts.add(request.get_host())
        except DisallowedHost:
            pass
        if require_https is None:
            require_https = request.is_secure()
    hosts.discard("")
    require_https = bool(require_https)

    if any(_is_forbidden(char) or char == "\\" for char in candidate):
        return None
    head_end = min((i for i in (candidate.find("?"), candidate.find("#")) if i >= 0), default=len(candidate))
    head, tail = candidate[:head_end], candidate[head_end:]
    heads = _decodings(head)
    tails = _decodings(tail)
    if heads is None or tails is None:
        return None
    for form in heads[1:]:
        if any(_is_forbidden(char) or char == "\\" for char in form):
            return None
    for form in tails[1:]:
        if any(unicodedata.category(char) == "Cc" for char in form):
            return None

    for form in heads:
        if not _head_is_safe(form, hosts, require_https):
            return None
    if not url_has_allowed_host_and_scheme(candidate, hosts, require_https=require_https):
        return None
    if _leads_into_a_callback(candidate):
        return None
    return candidate


#: Query parameters of a callback: a ``next`` that carries them would replay someone's login.
CALLBACK_PARAMETERS = frozenset({"code", "state"})


def _leads_into_a_callback(candidate: str) -> bool:
    """Whether ``candidate``, in any of its percent-decodings, points at a callback view (any
    app's) or carries ``code``/``state``: such a ``next`` would complete a login after this
    one, and a login-CSRF link disguised as an ordinary login link of the site is exactly
    that."""
    return leads_into_a_callback(candidate, callback_paths())


def leads_into_a_callback(candidate: str, paths: Iterable[str]) -> bool:
    """Whether ``candidate``, in any of its percent-decodings, points at one of
    ``paths`` (callback views) or carries ``code``/``state`` (see :func:`safe_next_url`; a drop-in's
    login start drops such a ``next`` for its own callbacks)."""
    callbacks = {path.rstrip("/") for path in paths} - {""}
    for form in _decodings(candidate) or [candidate]:
        try:
            parts = urlsplit(form)
        except ValueError:
            return True
        names = {name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
        if names & CALLBACK_PARAMETERS or parts.path.rstrip("/") in callbacks:
            return True
    return False


def callback_path(app: str | None = None) -> str:
    """The path of the callback view of ``app`` (else the default app's), or "" where the
    app's URLs are not installed on this site."""
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse("wechat_oauth:callback", kwargs={"app": app} if app else {})
    except NoReverseMatch:
        return ""


@functools.cache
def callback_paths() -> frozenset[str]:
    """The paths of every callback view of the app, the default app's and each app's (per
    process, until WECHAT_OAUTH or the URLconf changes)."""
    from .registry import configured_apps

    return frozenset({callback_path(), *(callback_path(name) for name in configured_apps())} - {""})


@receiver(setting_changed)
def _forget_callback_paths(*, setting: str, **kwargs: object) -> None:
    if setting in (SETTINGS_NAME, "ROOT_URLCONF"):
        callback_paths.cache_clear()


def _is_forbidden(char: str) -> bool:
    # Control, format (e.g. U+202E), surrogate, private-use, unassigned; all separators/spaces.
    return char.isspace() or unicodedata.category(char)[0] in "CZ"


def _decodings(text: str) -> list[str] | None:
    """``text`` and each successive percent-decoding of it; None if it never settles."""
    forms = [text]
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote(text)
        if decoded == text:
            return forms
        forms.append(decoded)
        text = decoded
    return None


def _head_is_safe(head: str, hosts: set[str], require_https: bool) -> bool:
    """Whether the scheme/authority/path part ``head`` stays on an allowed host."""
    if head.startswith("/"):
        path = head
    else:
        try:
            parts = urlsplit(head)
        except ValueError:  # e.g. an unclosed IPv6 bracket
            return False
        # The netloc must equal an allowed host[:port]: userinfo ("good@evil.com"), another
        # port, a trailing dot or a look-alike character all make it differ. An empty netloc
        # (https:evil.com, http:/evil.com) is refused too.
        if parts.scheme not in _SAFE_SCHEMES or parts.netloc not in hosts:
            return False
        path = parts.path
    if path.startswith("//"):
        return False
    return url_has_allowed_host_and_scheme(head, hosts, require_https=require_https)
