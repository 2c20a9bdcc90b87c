"""What the guard returns, and how any duplicate (database or cache path) is answered."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..client import TokenResult
from ..signals import duplicate_absorbed

if TYPE_CHECKING:
    from ..models import OAuthCodeUse
    from ..outcome import StoredOutcome

logger = logging.getLogger("wechat_oauth.exchange")


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


def answer_duplicate(outcome: StoredOutcome, *, code_hash: str, arrival: datetime, waited: bool,
                     source: str, code_use: OAuthCodeUse | None = None) -> Exchange:
    """Log and signal one absorbed duplicate, then replay the stored outcome to it."""
    gap = gap_ms(outcome, arrival)
    logger.info("duplicate of code %s (openid %s) absorbed from the %s, gap %d ms%s",
                code_hash[:12], outcome.openid or "-", source, gap,
                ", waited for the exchange" if waited else "")
    from ..models import OAuthCodeUse

    duplicate_absorbed.send(sender=OAuthCodeUse, code_use=code_use, code_use_id=outcome.code_use_id,
                            gap_ms=gap, waited=waited, source=source)
    return Exchange(token=outcome.replay(), duplicate=True, code_use_id=outcome.code_use_id,
                    gap_ms=gap)
