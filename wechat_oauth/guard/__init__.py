"""Exactly-once code exchange: :func:`exchange_once` is the one entry point.

Every callback (view or middleware) hands its code here. The first request for a code calls
WeChat; every duplicate, in this process or another worker or server, gets that one call's
outcome. The database row (see :mod:`.database`) is the fence; the optional django-redis
front (see :mod:`.cache`) answers duplicates before they reach the database.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from ..async_client import async_client_for
from ..client import WeChatClient, get_client
from ..conf import app_settings
from ..exceptions import InvalidCode, WeChatOAuthError
from ..hashing import code_hash, state_hash
from ..outcome import StoredOutcome
from ..results import TokenResult
from ..wecom import WeComClient
from .cache import CLAIMED, IN_FLIGHT, REPLAY, WAIT_MARGIN, CacheFront, cache_front
from .database import DatabaseGuard
from .duplicates import Claim, Exchange, answer_duplicate

if TYPE_CHECKING:
    from ..budget import CodeBudget

logger = logging.getLogger("wechat_oauth.exchange")

__all__ = ["MAX_CODE_LENGTH", "Exchange", "aexchange_once", "exchange_once", "validate_code"]

#: Longest code accepted. WeChat's codes are 32 characters; anything near this is not a code.
MAX_CODE_LENGTH = 512


def validate_code(code: object) -> str:
    """``code`` if it can be a WeChat code, else :class:`InvalidCode` (nothing is stored)."""
    if not isinstance(code, str) or not code:
        raise InvalidCode("The authorisation code is missing")
    if len(code) > MAX_CODE_LENGTH:
        raise InvalidCode("The authorisation code is too long")
    if not all("!" <= ch <= "~" for ch in code):
        raise InvalidCode("The authorisation code has characters a WeChat code never has")
    return code


def _exchange_with_profile(client: WeChatClient, code: str) -> TokenResult:
    """The exchange, and the profile where the scope allows it, as one guarded outcome.

    The profile belongs to the outcome every duplicate replays: otherwise the duplicate that
    the user sees (often woken before the first request fetched the profile) would create the
    user without it. A failing userinfo call does not fail the login.
    """
    token = client.exchange_code(code)
    if not token.profile_allowed:
        return token
    try:
        profile = client.userinfo(token.access_token, token.openid)  # the app's USERINFO_LANG
    except WeChatOAuthError as error:
        logger.warning("userinfo of openid %s failed, going on without a profile: %s", token.openid, error)
        return token
    return replace(token, profile=profile)


def exchange_once(
    code: str,
    *,
    state: str = "",
    resent: bool = False,
    fingerprint: str = "",
    budget: CodeBudget | None = None,
    client: WeChatClient | None = None,
    using: str | None = None,
) -> Exchange:
    """Exchange ``code`` with WeChat at most once, ever; duplicates get the same outcome.

    Returns an :class:`Exchange`, or raises the typed error of the one exchange (the same type
    for every duplicate), :class:`~wechat_oauth.exceptions.ExchangeWaitTimeout` when an
    exchange in flight takes longer than WAIT_TIMEOUT, or
    :class:`~wechat_oauth.exceptions.InvalidCode` for input that cannot be a code.

    ``resent`` marks a request that carried WeChat's ``uin``/``key``/``pass_ticket`` re-send
    parameters (recorded for the admin). A duplicate is given the stored outcome only when its
    ``state`` and ``fingerprint`` (the browser, see :func:`wechat_oauth.binding.fingerprint`)
    equal the first request's; otherwise it gets :class:`~wechat_oauth.exceptions.ReplayRefused`.
    ``budget`` (see :mod:`wechat_oauth.budget`) is charged when this request holds a new code.
    ``using`` picks a database alias (default: the router's choice for OAuthCodeUse).
    """
    code = validate_code(code)
    client = client or get_client()
    claim = _claim(client, code, state=state, resent=resent, fingerprint=fingerprint, budget=budget)
    if isinstance(client, WeComClient):
        return _exchange_wecom(client, code, claim, using)
    call: Callable[[], TokenResult]
    if client.app is not None and client.app.is_mini_program:
        call = partial(client.jscode2session, code)
    else:
        call = partial(_exchange_with_profile, client, code)
    return _guarded(call, claim, using)


async def aexchange_once(
    code: str,
    *,
    state: str = "",
    resent: bool = False,
    fingerprint: str = "",
    budget: CodeBudget | None = None,
    client: WeChatClient | None = None,
    using: str | None = None,
) -> Exchange:
    """:func:`exchange_once` for async code (the async views): the same guarantee, the same
    rows, outcomes and errors, so sync and async servers may share one database and Redis.

    The call to WeChat goes through httpx (extra ``[async]``) and runs to its end even when
    the awaiting request is cancelled; duplicates wait in the event loop, holding no thread
    and no connection (see :mod:`.async_exchange`). A WeCom app's code goes through the sync
    guard, in a worker thread (its app token is shared with the sync client).
    """
    from .async_exchange import aguarded

    code = validate_code(code)
    client = client or get_client()
    arguments: dict[str, Any] = {
        "state": state,
        "resent": resent,
        "fingerprint": fingerprint,
        "budget": budget,
    }
    if isinstance(client, WeComClient):
        return await sync_to_async(exchange_once, thread_sensitive=False)(
            code, client=client, using=using, **arguments
        )
    claim = _claim(client, code, **arguments)
    twin = async_client_for(client)
    call: Callable[[], Awaitable[TokenResult]]
    if client.app is not None and client.app.is_mini_program:
        call = partial(twin.jscode2session, code)
    else:
        call = partial(twin.exchange_with_profile, code)
    return await aguarded(call, claim, using, cache_front())


def _claim(
    client: WeChatClient, code: str, *, state: str, resent: bool, fingerprint: str, budget: CodeBudget | None
) -> Claim:
    return Claim(
        app_id=client.app_id,
        code_hash=code_hash(code),
        state_hash=state_hash(state),
        resent=resent,
        arrival=timezone.now(),
        fingerprint=fingerprint,
        budget=budget,
    )


def _guarded(call: Callable[[], TokenResult], claim: Claim, using: str | None) -> Exchange:
    front = cache_front()
    if front is None:
        return DatabaseGuard(using).exchange(call, claim)
    return _exchange_through_front(front, call, claim, using)


def _exchange_wecom(client: WeComClient, code: str, claim: Claim, using: str | None) -> Exchange:
    """A WeCom code, spent with the app's access token, read before the claim (a refresh then
    runs outside the claim's transaction). Inside the claim the holder uses the token this
    process holds by then (a thread before it may have replaced a stale one); a token WeCom
    refuses as stale is replaced there and the code asked for once more (see
    :meth:`WeComClient.exchange_code`), so duplicates waiting on the claim never see it
    released for a stale token."""
    fetched = client.access_token()
    return _guarded(
        lambda: client.exchange_code(code, access_token=client.tokens.peek() or fetched, retry_stale=True),
        claim,
        using,
    )


def _exchange_through_front(
    front: CacheFront, call: Callable[[], TokenResult], claim: Claim, using: str | None
) -> Exchange:
    """Redis answers what it can; whatever it cannot goes to the database guard unchanged."""
    keys = front.keys(claim.app_id, claim.code_hash)
    entry = front.enter(keys, arrival=claim.arrival, resent=claim.resent)
    if entry.kind == REPLAY and entry.outcome is not None:
        return answer_duplicate(entry.outcome, claim, waited=False, source="cache")
    if entry.kind == IN_FLIGHT:
        up_to = min(app_settings.wait_timeout, entry.flight_ttl_ms / 1000 + WAIT_MARGIN)
        outcome = front.wait(keys, arrival=claim.arrival, resent=claim.resent, up_to=up_to)
        if outcome is not None:
            return answer_duplicate(outcome, claim, waited=True, source="cache")
    published: list[StoredOutcome] = []

    def publish(outcome: StoredOutcome) -> None:
        front.publish(keys, outcome)
        published.append(outcome)

    try:
        return DatabaseGuard(using, on_outcome=publish).exchange(call, claim)
    finally:
        if entry.kind == CLAIMED and not published:
            front.release(keys)  # nothing committed: send the waiters to the database
