"""What one request claims, what the guard returns, and how any duplicate (database or cache
path) is answered: only when it belongs to the same login as the first request."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.utils.crypto import constant_time_compare

from ..exceptions import ReplayRefused
from ..results import TokenResult
from ..signals import duplicate_absorbed

if TYPE_CHECKING:
    from ..budget import CodeBudget
    from ..models import OAuthCodeUse
    from ..outcome import StoredOutcome

logger = logging.getLogger("wechat_oauth.exchange")


@dataclass(frozen=True)
class Claim:
    """One request's claim on a code: what the row records about its arrival, and what a
    duplicate must share with the first request to be given its outcome."""

    app_id: str
    code_hash: str
    state_hash: str
    resent: bool
    arrival: datetime
    #: Keyed hash of the browser (binding cookie and User-Agent, see binding.py); "" for none.
    fingerprint: str = ""
    #: Charged when this request turns out to hold a new code (see budget.py).
    budget: CodeBudget | None = None


@dataclass(frozen=True)
class Exchange:
    """The outcome of :func:`~wechat_oauth.guard.exchange_once` for one request."""

    token: TokenResult
    #: True when this request reused an exchange made for an earlier request with the same code.
    duplicate: bool
    #: Primary key of the OAuthCodeUse row.
    code_use_id: int
    #: For a duplicate: milliseconds since the code was first seen.
    gap_ms: int | None = None


def gap_ms(outcome: StoredOutcome, arrival: datetime) -> int:
    return max(0, round((arrival - outcome.first_seen_at).total_seconds() * 1000))


def same_login(outcome: StoredOutcome, claim: Claim) -> bool:
    """Whether ``claim`` comes from the login attempt (state) and browser (fingerprint) that
    first brought the code. A leaked callback URL opened elsewhere, or the code spliced onto a
    fresh state, is not: it must not be given the victim's login."""
    return constant_time_compare(outcome.state_hash, claim.state_hash) and constant_time_compare(
        outcome.fingerprint, claim.fingerprint
    )


def answer_duplicate(
    outcome: StoredOutcome, claim: Claim, *, waited: bool, source: str, code_use: OAuthCodeUse | None = None
) -> Exchange:
    """Log and signal one absorbed duplicate, then replay the stored outcome to it; a duplicate
    of another login attempt or browser gets :class:`ReplayRefused` (a spent code) instead."""
    code_hash, arrival = claim.code_hash, claim.arrival
    gap = gap_ms(outcome, arrival)
    if not same_login(outcome, claim):
        logger.warning(
            "duplicate of code %s refused from the %s, gap %d ms: another %s",
            code_hash[:12],
            source,
            gap,
            "login attempt" if outcome.state_hash != claim.state_hash else "browser",
        )
        raise ReplayRefused()
    logger.info(
        "duplicate of code %s (openid %s) absorbed from the %s, gap %d ms%s",
        code_hash[:12],
        outcome.openid or "-",
        source,
        gap,
        ", waited for the exchange" if waited else "",
    )
    from ..models import OAuthCodeUse

    duplicate_absorbed.send(
        sender=OAuthCodeUse,
        code_use=code_use,
        code_use_id=outcome.code_use_id,
        gap_ms=gap,
        waited=waited,
        source=source,
    )
    return Exchange(token=outcome.replay(), duplicate=True, code_use_id=outcome.code_use_id, gap_ms=gap)
