"""The database guard: one OAuthCodeUse row per code, and the transaction that holds it.

How one code is exchanged exactly once
--------------------------------------
Open a transaction and INSERT the row with status ``in_flight``. The unique constraint on
(app_id, code_hash) is the fence:

* the first INSERT succeeds, and its transaction stays open while it calls WeChat, so the row
  stays uncommitted and, in effect, locked;
* a twin INSERT *waits inside the database* for that transaction, then fails with an
  IntegrityError when the holder commits (PostgreSQL wakes it within ~1 ms; SQLite's busy
  handler retries the lock with short sleeps); the twin then reads the committed row, counts
  itself as a duplicate and replays the stored outcome. A twin that arrives after the commit
  fails at once and does the same;
* if the holder's transaction ends without committing (its process died, its connection
  broke, or PostgreSQL ended it for holding on too long) the twin INSERT succeeds instead and
  that request becomes the holder.

So a second upstream call for a code can only happen after the first caller's transaction is
gone, i.e. once it can no longer deliver its answer: never two live exchanges of a code.

The INSERT comes first, without a read before it, because the first request for a code is the
common case: on PostgreSQL it pays 4 statements (BEGIN, INSERT, UPDATE, COMMIT), a duplicate 5
(see the query table in docs/04-exactly-once.rst).

Which upstream outcomes are final for a code
--------------------------------------------
Final (stored, and replayed to every duplicate without a new call):

* success;
* every errcode answer: 40029/40163/42003 say the code is spent; credential errors
  (40001/40013/40125) would fail the same way again; -1 ("busy") is final too, because WeChat
  may have consumed the code before failing and a retry would then get 40163 at best;
* a timeout after the request was sent, HTTP errors and malformed bodies: WeChat may have
  consumed the code, and a second call could only end in 40163 or in revoked tokens
  (RFC 6749 §4.1.2 lets a server revoke tokens issued from a reused code).

Not final: a failure that provably happened before the request left this host (DNS failure,
connection refused, connect timeout: ``UpstreamUnavailable.request_sent`` is False). WeChat has
not seen the code, so the claim is rolled back and the next duplicate may try. The same holds
for a WeCom app token refused twice (40014/42001, ``AppTokenRejected``): WeCom checks the
token before it reads the code. Both are ``WeChatOAuthError.code_untouched``.

Bounds
------
On PostgreSQL the claim transaction sets ``lock_timeout`` (how long a twin waits: WAIT_TIMEOUT)
and ``idle_in_transaction_session_timeout`` (how long the holder may sit in the transaction
while WeChat answers: the client timeout plus EXCHANGE_MARGIN), both local to the transaction,
in its INSERT (:class:`AfterWaitBounds`: no round trip of their own).
On MariaDB/MySQL the same two bounds are ``innodb_lock_wait_timeout`` and ``wait_timeout``
(whole seconds, rounded up), which exist only per session: the claim sets them and puts the
connection's own values back when its transaction has ended. On SQLite the wait is bounded by
the database's ``timeout`` option. A twin that waits too long gets
:class:`~wechat_oauth.exceptions.ExchangeWaitTimeout`.

InnoDB and deadlocks
--------------------
With two or more twins waiting on a holder whose transaction rolls back, InnoDB lets one
INSERT through and ends the others' transactions with a deadlock (1213: a duplicate-key error
takes a shared lock). Such a twin claims again (at most :data:`DEADLOCK_RETRIES` times): it
then waits for the new holder, or finds its row committed, and replays the outcome.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from itertools import chain
from typing import TYPE_CHECKING, Any

from django.db import (
    DatabaseError,
    IntegrityError,
    OperationalError,
    connections,
    router,
    transaction,
)
from django.db.models import CharField, Expression, F
from django.db.models.functions import Greatest
from django.utils import timezone

from ..conf import app_settings
from ..exceptions import (
    ConfigurationError,
    ExchangeWaitTimeout,
    TooManyCodes,
    WeChatOAuthError,
)
from ..models import OAuthCodeUse
from ..outcome import StoredOutcome
from ..signals import code_exchanged, exchange_failed
from ..transactions import is_deadlock, mysql_errno
from .duplicates import Claim, Exchange, answer_duplicate, gap_ms

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler

    from ..results import TokenResult

logger = logging.getLogger("wechat_oauth.exchange")

#: SQLSTATE of PostgreSQL's "lock_not_available" (lock_timeout expired).
LOCK_NOT_AVAILABLE = "55P03"
#: MariaDB/MySQL error number: lock wait timeout exceeded.
MYSQL_LOCK_WAIT_TIMEOUT = 1205
#: How many times a twin whose claim ended in a deadlock claims again.
DEADLOCK_RETRIES = 3


class _LostRace(Exception):
    """Another request committed this code's row first."""


class _Deadlocked(Exception):
    """The database ended this twin's claim to break a deadlock: claim again."""


class _ReleaseClaim(Exception):
    """Roll the claim back: the exchange failed before WeChat could have seen the code."""

    def __init__(self, error: WeChatOAuthError) -> None:
        self.error = error


OutcomeListener = Callable[[StoredOutcome], None]

#: PostgreSQL settings local to the claim's transaction: (name, value) pairs.
WaitBounds = Sequence[tuple[str, str]]


class AfterWaitBounds(Expression):
    """``value`` as the claim's INSERT writes it on PostgreSQL: once the statement has set
    the transaction's wait ``bounds`` (``set_config(name, value, true)``, local to it).

    So the bounds and the fence take one round trip instead of two, and they are in force
    before the INSERT can wait: the row's values are computed before it goes into the unique
    index, where a twin's INSERT waits on the holder. (``set_config`` returns the value it
    set, never NULL: every condition is evaluated and true.)"""

    def __init__(self, value: str, bounds: WaitBounds) -> None:
        super().__init__(output_field=CharField())
        self.value, self.bounds = value, tuple(bounds)

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, tuple[str | int, ...]]:
        conditions = " AND ".join("set_config(%s, %s, true) IS NOT NULL" for _ in self.bounds)
        return f"CASE WHEN {conditions} THEN %s END", (*chain.from_iterable(self.bounds), self.value)


@contextmanager
def _session_bounds(connection: BaseDatabaseWrapper, lock_wait: float | None = None) -> Iterator[None]:
    """MariaDB/MySQL: the claim's wait bounds, set on the session for the claim's transaction
    and put back afterwards (the next, unrelated transaction on this connection must run with
    the connection's own values). Other databases: nothing (PostgreSQL sets them inside the
    transaction, locally). ``lock_wait``: seconds a twin's INSERT waits (default WAIT_TIMEOUT;
    the async guard's 0: MariaDB then fails at once, MySQL after its minimum, 1 s)."""
    if lock_wait is None:
        lock_wait = app_settings.wait_timeout
    if connection.vendor != "mysql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SET @wechat_oauth_lock_wait = @@SESSION.innodb_lock_wait_timeout,"
            " @wechat_oauth_idle = @@SESSION.wait_timeout,"
            " SESSION innodb_lock_wait_timeout = %s, SESSION wait_timeout = %s",
            [math.ceil(lock_wait), math.ceil(app_settings.hold_timeout)],
        )
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SET SESSION innodb_lock_wait_timeout = @wechat_oauth_lock_wait,"
                    " SESSION wait_timeout = @wechat_oauth_idle"
                )
        except DatabaseError:  # the connection is gone (cut off as a stuck holder): no session
            logger.debug("wait bounds not restored: the connection is gone")


def final_error(error: WeChatOAuthError) -> WeChatOAuthError:
    """``error`` as the code's final outcome, or _ReleaseClaim when WeChat cannot have spent
    the code (not sent, or refused before the code was read): then the claim is rolled back."""
    if error.code_untouched:
        raise _ReleaseClaim(error) from None
    return error


def record_outcome(
    row: OAuthCodeUse, started: float, token: TokenResult | None, error: WeChatOAuthError | None
) -> None:
    """Write the upstream call's outcome (and its duration since ``started``) into ``row``."""
    row.exchange_ms = round((time.monotonic() - started) * 1000)
    row.completed_at = timezone.now()
    if token is not None:
        row.record_success(token)
    else:
        assert error is not None
        row.record_failure(error)


class DatabaseGuard:
    """``on_outcome`` is told every committed outcome this guard sees (the cache front
    publishes them): the holder's from ``transaction.on_commit``, a duplicate's at once."""

    def __init__(self, using: str | None = None, on_outcome: OutcomeListener | None = None) -> None:
        self.using = using or router.db_for_write(OAuthCodeUse)
        self.on_outcome = on_outcome

    def exchange(self, call: Callable[[], TokenResult], claim: Claim) -> Exchange:
        for attempt in range(DEADLOCK_RETRIES + 1):
            try:
                return self._claim_and_exchange(call, claim)
            except _LostRace:
                break
            except _Deadlocked:
                logger.info(
                    "claim of code %s ended in a deadlock (attempt %d): claiming again",
                    claim.code_hash[:12],
                    attempt + 1,
                )
        else:
            raise ExchangeWaitTimeout("The claim kept ending in deadlocks") from None
        row = OAuthCodeUse.objects.using(self.using).get(app_id=claim.app_id, code_hash=claim.code_hash)
        return self._absorb_duplicate(row, claim)

    # -- the holder ------------------------------------------------------------------------

    def _claim_and_exchange(self, call: Callable[[], TokenResult], claim: Claim) -> Exchange:
        code_hash = claim.code_hash
        try:
            with _session_bounds(connections[self.using]), transaction.atomic(using=self.using, durable=True):
                try:
                    row = self._insert_claim(claim, bounds=self._wait_bounds(app_settings.wait_timeout))
                except IntegrityError:
                    raise _LostRace from None
                except OperationalError as exc:
                    if is_deadlock(exc):
                        raise _Deadlocked from None
                    raise
                # This transaction now holds the code: twins wait until it ends.
                self._admit(claim)
                token, error = self._call_upstream(call, row)
                row.save(using=self.using, update_fields=OAuthCodeUse.OUTCOME_FIELDS)
                if self.on_outcome is not None:
                    transaction.on_commit(partial(self.on_outcome, row.outcome), using=self.using)
        except _ReleaseClaim as release:
            logger.warning(
                "exchange of code %s not sent (%s): claim released for a retry", code_hash[:12], release.error
            )
            raise release.error from None
        except OperationalError as exc:
            if self._is_lock_wait_timeout(exc):
                # Measured, not WAIT_TIMEOUT: SQLite's bound is its own ``timeout`` option, and
                # MariaDB's is WAIT_TIMEOUT rounded up to whole seconds.
                waited = (timezone.now() - claim.arrival).total_seconds()
                logger.warning("duplicate of code %s gave up after waiting %.1f s", code_hash[:12], waited)
                raise ExchangeWaitTimeout(
                    f"An earlier request is still exchanging this code (waited {waited:.1f} s)"
                ) from None
            raise

        return self._report(row, token, error, claim)

    @staticmethod
    def _report(
        row: OAuthCodeUse, token: TokenResult | None, error: WeChatOAuthError | None, claim: Claim
    ) -> Exchange:
        """After the commit: charge the budget, log and signal; the holder's outcome."""
        if error is not None:
            if claim.budget is not None:
                claim.budget.charge(error)
            level = logging.ERROR if isinstance(error, ConfigurationError) else logging.WARNING
            logger.log(level, "exchange of code %s failed: %s", claim.code_hash[:12], error)
            exchange_failed.send(sender=OAuthCodeUse, code_use=row, error=error)
            raise error
        assert token is not None
        logger.info(
            "code %s exchanged for openid %s in %d ms", claim.code_hash[:12], token.openid, row.exchange_ms
        )
        code_exchanged.send(sender=OAuthCodeUse, code_use=row, token=token)
        return Exchange(token=token, duplicate=False, code_use_id=row.pk)

    def _insert_claim(self, claim: Claim, bounds: WaitBounds = ()) -> OAuthCodeUse:
        """The row that fences the code (in flight until the holder saves its outcome); on
        PostgreSQL the same statement first sets the transaction's ``bounds`` (see
        :class:`AfterWaitBounds`)."""
        row = OAuthCodeUse.objects.using(self.using).create(
            app_id=claim.app_id,
            code_hash=AfterWaitBounds(claim.code_hash, bounds) if bounds else claim.code_hash,
            state_hash=claim.state_hash,
            fingerprint=claim.fingerprint,
            resent_variant_seen=claim.resent,
            first_seen_at=claim.arrival,
            last_seen_at=claim.arrival,
        )
        row.code_hash = claim.code_hash
        return row

    @staticmethod
    def _admit(claim: Claim) -> None:
        """A new code: within its login attempt's and its client's budget, or released."""
        if claim.budget is None:
            return
        try:
            claim.budget.admit()
        except TooManyCodes as refused:
            raise _ReleaseClaim(refused) from None

    def _call_upstream(
        self, call: Callable[[], TokenResult], row: OAuthCodeUse
    ) -> tuple[TokenResult | None, WeChatOAuthError | None]:
        started = time.monotonic()
        try:
            token: TokenResult | None = call()
            error: WeChatOAuthError | None = None
        except WeChatOAuthError as exc:
            token, error = None, final_error(exc)
        record_outcome(row, started, token, error)
        return token, error

    def _wait_bounds(self, lock_wait: float) -> WaitBounds:
        """PostgreSQL: the claim transaction's bounds, set by its INSERT: how long it waits
        for a twin's row (``lock_wait`` seconds), how long it may then sit idle while WeChat
        answers (the hold timeout). Elsewhere none (MariaDB's are :func:`_session_bounds`)."""
        if connections[self.using].vendor != "postgresql":
            return ()
        return (
            ("lock_timeout", f"{round(lock_wait * 1000)}ms"),
            ("idle_in_transaction_session_timeout", f"{round(app_settings.hold_timeout * 1000)}ms"),
        )

    def _is_lock_wait_timeout(self, exc: OperationalError) -> bool:
        cause = exc.__cause__
        if getattr(cause, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            return True
        vendor = connections[self.using].vendor
        if vendor == "mysql":
            return mysql_errno(exc) == MYSQL_LOCK_WAIT_TIMEOUT
        return vendor == "sqlite" and "locked" in str(exc)

    # -- duplicates ------------------------------------------------------------------------

    def _absorb_duplicate(self, row: OAuthCodeUse, claim: Claim) -> Exchange:
        outcome, arrival, resent = row.outcome, claim.arrival, claim.resent
        changes: dict[str, Any] = {
            "duplicates": F("duplicates") + 1,
            "last_seen_at": Greatest(F("last_seen_at"), arrival),
            "max_gap_ms": Greatest(F("max_gap_ms"), gap_ms(outcome, arrival)),
        }
        if resent:
            changes["resent_variant_seen"] = True
        try:
            OAuthCodeUse.objects.using(self.using).filter(pk=row.pk).update(**changes)
        except DatabaseError:
            # Bookkeeping only: the user must still get the stored outcome.
            logger.exception("could not count a duplicate of code %s", row.code_hash[:12])
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        waited = row.completed_at is not None and arrival < row.completed_at
        return answer_duplicate(outcome, claim, waited=waited, source="database", code_use=row)
