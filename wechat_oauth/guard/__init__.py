"""Exactly-once code exchange: :func:`exchange_once` is the one entry point.

Every callback (view or middleware) hands its code here. The first request for a code calls
WeChat; every duplicate, in this process or another worker or server, gets that one call's
outcome. The database row (see :mod:`.database`) is the fence; an optional cache front will sit
before it for multi-server sites.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils import timezone

from ..client import TokenResult, WeChatClient, get_client
from ..conf import app_settings
from ..exceptions import InvalidCode
from ..hashing import code_hash, state_hash
from .database import DatabaseGuard

__all__ = ["Exchange", "exchange_once", "validate_code", "MAX_CODE_LENGTH"]

#: Longest code accepted. WeChat's codes are 32 characters; anything near this is not a code.
MAX_CODE_LENGTH = 512


@dataclass(frozen=True)
class Exchange:
    """The outcome of :func:`exchange_once` for one request."""

    token: TokenResult
    #: True when this request reused an exchange made for an earlier request with the same code.
    duplicate: bool
    #: Primary key of the OAuthCodeUse row.
    code_use_id: int
    #: For a duplicate: milliseconds since the code was first seen.
    gap_ms: int | None = None


def validate_code(code: object) -> str:
    """``code`` if it can be a WeChat code, else :class:`InvalidCode` (nothing is stored)."""
    if not isinstance(code, str) or not code:
        raise InvalidCode("The authorisation code is missing")
    if len(code) > MAX_CODE_LENGTH:
        raise InvalidCode("The authorisation code is too long")
    if not all("!" <= ch <= "~" for ch in code):
        raise InvalidCode("The authorisation code has characters a WeChat code never has")
    return code


def exchange_once(
    code: str,
    *,
    state: str = "",
    resent: bool = False,
    client: WeChatClient | None = None,
    using: str | None = None,
) -> Exchange:
    """Exchange ``code`` with WeChat at most once, ever; duplicates get the same outcome.

    Returns an :class:`Exchange`, or raises the typed error of the one exchange (the same type
    for every duplicate), :class:`~wechat_oauth.exceptions.ExchangeWaitTimeout` when an
    exchange in flight takes longer than WAIT_TIMEOUT, or
    :class:`~wechat_oauth.exceptions.InvalidCode` for input that cannot be a code.

    ``resent`` marks a request that carried WeChat's ``uin``/``key``/``pass_ticket`` re-send
    parameters (recorded for the admin). ``using`` picks a database alias (default: the
    router's choice for OAuthCodeUse).
    """
    code = validate_code(code)
    arrival = timezone.now()
    client = client or get_client()
    call: Callable[[], TokenResult] = lambda: client.exchange_code(code)  # noqa: E731
    return DatabaseGuard(using).exchange(
        call,
        app_id=client.app_id or app_settings.APP_ID,
        code_hash=code_hash(code),
        state_hash=state_hash(state),
        resent=resent,
        arrival=arrival,
    )
