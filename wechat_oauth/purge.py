"""Retention of ``OAuthCodeUse`` rows: delete old ones and rejected codes, blank tokens past
the dedupe window.

The ``purge_oauth_codes`` management command and the admin call this module. Its API:

:func:`purge`
    One full pass: fold the cache front's duplicate counters into the rows (when CACHE_ALIAS
    names a django-redis cache), scrub the tokens of rows past DEDUPE_WINDOW but within the
    retention, delete the rows older than the retention, then the rejected codes older than
    GARBAGE_RETENTION. Returns a :class:`PurgeReport`.
:func:`scrub_tokens`
    The scrub alone: blank ``access_token``, ``refresh_token`` and ``profile`` of rows first
    seen more than ``older_than`` ago (default DEDUPE_WINDOW). Returns how many rows.
:func:`garbage_retention`
    The GARBAGE_RETENTION setting as a timedelta; ValueError when shorter than DEDUPE_WINDOW.
:func:`parse_duration` / :func:`format_duration`
    ``"90s"``, ``"10m"``, ``"12h"``, ``"7d"``, ``"2w"`` or plain seconds, to and from
    :class:`~datetime.timedelta`.

How it stays cheap beside live traffic
--------------------------------------
No row is loaded into Python. Each batch is one SQL statement run in autocommit, so one short
transaction of at most ``batch_size`` rows; ``sleep`` seconds pass between batches. Called
inside ``transaction.atomic()`` all batches share the caller's transaction instead.

Deleting: one query on the ``first_seen_at`` index gives the id ``hi`` of the most recent
expired row (``MAX(id) WHERE first_seen_at = (SELECT MAX(first_seen_at) WHERE first_seen_at <
cutoff)``: two index lookups, whatever the table's size). From the smallest id up to ``hi``
the pass then walks windows of ``batch_size`` ids: ``SELECT MIN(id) WHERE id >= next``
(primary key index; skips gaps left by earlier purges and rolled-back inserts), then
``DELETE WHERE id >= lo AND id < lo + batch_size AND first_seen_at < cutoff AND status <>
'in_flight'``.

Clock skew: ids follow commit order, ``first_seen_at`` each web server's clock. A row whose id
is above ``hi`` although it is older than the cutoff (written by a server whose clock is
behind) is left for a later run: it is deleted once a row with a higher id has expired too.
Rows within the id range that are not yet expired (a server clock ahead) are kept by the
``first_seen_at`` condition of every DELETE.

Rejected codes: anyone can send the callback made-up codes, and each leaves a row (status
``failed``, error ``spent``: WeChat said invalid or already used). Such a row with no duplicate
only has to outlive DEDUPE_WINDOW, so rows first seen between the retention's cutoff and
GARBAGE_RETENTION ago go early. The same walk of id windows up to the newest row older than
GARBAGE_RETENTION (again two index lookups), except that each window starts at the next
rejected row (``SELECT MIN(id) WHERE id >= next AND <the rule>``: a read on the primary key,
no row loaded or locked), so a window without garbage costs no DELETE; each ``DELETE WHERE id
>= lo AND id < lo + batch_size`` repeats the whole rule (failed, spent, no duplicate, not in
flight, first seen in the range). Older rejected rows are the retention's.

Scrubbing: ``UPDATE ... WHERE id IN (SELECT id ... LIMIT batch_size)`` (MariaDB/MySQL, which
refuse that: ``UPDATE ... WHERE ... ORDER BY id LIMIT batch_size``) on the rows that still
hold an access token (the partial index ``wechat_oauth_code_has_tokens`` covers exactly
those), repeated until a batch comes back short.

Rows whose status is ``in_flight`` are never touched. Other connections cannot see such a row
anyway (the holder's INSERT stays uncommitted until its exchange ends, see
``guard/database.py``), but the condition is spelled out in every statement.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, router
from django.utils import timezone

from .conf import app_settings
from .exceptions import CodeSpent
from .models import OAuthCodeUse

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "PurgeReport",
    "format_duration",
    "garbage_retention",
    "parse_duration",
    "purge",
    "scrub_tokens",
]

DEFAULT_BATCH_SIZE = 10_000

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"\s*(\d+)\s*([smhdw]?)\s*", re.IGNORECASE)
_IN_FLIGHT = OAuthCodeUse.Status.IN_FLIGHT.value
_FAILED = OAuthCodeUse.Status.FAILED.value


def parse_duration(value: str | float | timedelta) -> timedelta:
    """``"90s"``, ``"10m"``, ``"12h"``, ``"7d"``, ``"2w"`` or a number of seconds, as a
    timedelta. Zero, negative and anything else raise ValueError."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value
    else:
        match = _DURATION.fullmatch(str(value))
        if match is None:
            raise ValueError(f"{value!r} is not a duration (examples: 90s, 10m, 12h, 7d, 2w, 3600)")
        seconds = int(match[1]) * _UNITS[(match[2] or "s").lower()]
    if seconds <= 0:
        raise ValueError(f"{value!r} is not a positive duration")
    return timedelta(seconds=seconds)


def format_duration(duration: timedelta) -> str:
    """The shortest of ``7d``, ``12h``, ``10m``, ``90s`` that is exact."""
    seconds = duration.total_seconds()
    for unit in "dhm":
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


@dataclass
class PurgeReport:
    """What one :func:`purge` did (with ``dry_run``: would do). ``seconds`` grows while it runs."""

    older_than: timedelta
    dry_run: bool = False
    #: GARBAGE_RETENTION: rejected codes first seen longer ago go early. None: no such pass.
    garbage_older_than: timedelta | None = None
    #: The configured app the pass was restricted to (``purge(app=...)``); None: every app.
    app: str | None = None
    #: Rows deleted (dry run: rows that would be).
    deleted: int = 0
    #: Rejected codes deleted before the retention (dry run: would be); not in ``deleted``.
    garbage_deleted: int = 0
    #: Rows whose tokens were blanked (dry run: would be).
    scrubbed: int = 0
    #: Rows that received duplicate counts from the cache front.
    folded: int = 0
    #: DELETE and UPDATE statements run.
    batches: int = 0
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        """Deleted rows (rejected codes included) per second of the whole pass."""
        return (self.deleted + self.garbage_deleted) / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: what ``purge_oauth_codes --json`` prints."""
        garbage_age = self.garbage_older_than
        return {
            "deleted": self.deleted,
            "garbage_deleted": self.garbage_deleted,
            "scrubbed": self.scrubbed,
            "folded": self.folded,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second),
            "dry_run": self.dry_run,
            "older_than_seconds": round(self.older_than.total_seconds()),
            "garbage_older_than_seconds": (
                None if garbage_age is None else round(garbage_age.total_seconds())
            ),
            "batches": self.batches,
            "app": self.app,
        }


BatchListener = Callable[[PurgeReport], None]


def purge(
    older_than: timedelta | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sleep: float = 0.0,
    dry_run: bool = False,
    on_batch: BatchListener | None = None,
    using: str | None = None,
    app: str | None = None,
) -> PurgeReport:
    """Fold cache counters, scrub tokens past DEDUPE_WINDOW, delete rows older than
    ``older_than`` (default: the RETENTION setting) and rejected codes older than
    GARBAGE_RETENTION, in batches of ``batch_size`` rows.

    ``sleep``: seconds between two batches. ``dry_run``: only count (COUNT queries), change
    nothing, fold nothing. ``on_batch(report)`` is called after every batch. ``using``: the
    database alias (default: the router's choice for writing OAuthCodeUse); the counters are
    folded through the default routing, as the cache front writes them. ``app``: a configured
    app's name (WECHAT_OAUTH["APPS"]): only its rows are scrubbed and deleted, and the report
    is that app's (the counters of every app are folded all the same).

    Raises ValueError for a bad argument, including an ``older_than`` or a GARBAGE_RETENTION
    shorter than DEDUPE_WINDOW (rows must outlive the window in which duplicates replay them), and
    django.db.DatabaseError when the database fails (batches done so far stay done).
    """
    older_than = parse_duration(app_settings.RETENTION if older_than is None else older_than)
    window = _dedupe_window(at_most=older_than)
    garbage_age = garbage_retention()
    app_id = _app_id(app)
    report = PurgeReport(older_than=older_than, garbage_older_than=garbage_age, dry_run=dry_run, app=app)
    run = _Run(report, using, batch_size, sleep, on_batch, app_id=app_id)
    if not dry_run:
        report.folded = _fold_counters()  # first: a rejected code's duplicates may be in Redis
        run.tick()
    now = timezone.now()
    run.scrub(before=now - window, not_before=now - older_than)
    run.delete(before=now - older_than)
    run.delete_garbage(before=now - garbage_age, not_before=now - older_than)
    run.tick()
    return report


def _app_id(app: str | None) -> str | None:
    """The APP_ID of configured app ``app``; ValueError if there is no such app."""
    if app is None:
        return None
    from .registry import UnknownApp, get_app

    try:
        return get_app(app).app_id
    except UnknownApp:
        raise ValueError(f"no WeChat app named {app!r} in WECHAT_OAUTH") from None


def scrub_tokens(
    older_than: timedelta | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sleep: float = 0.0,
    dry_run: bool = False,
    using: str | None = None,
) -> int:
    """Blank the tokens and profile of every row first seen more than ``older_than`` ago
    (default and minimum: DEDUPE_WINDOW; 0 is allowed when DEDUPE_WINDOW is 0). Returns how
    many rows were (dry run: would be) scrubbed."""
    window = _dedupe_window(at_most=older_than)
    age = window if older_than is None else older_than
    report = PurgeReport(older_than=age, dry_run=dry_run)
    _Run(report, using, batch_size, sleep, None).scrub(before=timezone.now() - age, not_before=None)
    return report.scrubbed


def _dedupe_window(*, at_most: timedelta | None) -> timedelta:
    """DEDUPE_WINDOW, after checking that ``at_most`` (an age to purge or scrub) is not shorter:
    a row must outlive the window in which duplicates replay it."""
    window = timedelta(seconds=app_settings.DEDUPE_WINDOW)
    if at_most is not None and at_most < window:
        raise ValueError(
            f"older_than ({format_duration(at_most)}) is shorter than "
            f"DEDUPE_WINDOW ({format_duration(window)})"
        )
    return window


def garbage_retention() -> timedelta:
    """GARBAGE_RETENTION, after checking that it is not shorter than DEDUPE_WINDOW: a duplicate
    of a rejected code within the window must still find its row (and replay the failure).
    Raises ValueError (the check wechat_oauth.E010 reports the same)."""
    window = timedelta(seconds=app_settings.DEDUPE_WINDOW)
    try:
        age = parse_duration(app_settings.GARBAGE_RETENTION)
    except ValueError as error:
        raise ValueError(f"GARBAGE_RETENTION: {error}") from None
    if age < window:
        raise ValueError(
            f"GARBAGE_RETENTION ({format_duration(age)}) is shorter than "
            f"DEDUPE_WINDOW ({format_duration(window)})"
        )
    return age


def _fold_counters() -> int:
    from .guard.cache import fold_counters  # looked up at call time (tests watch the order)

    return fold_counters()


SQL_EMPTY_STRING = "''"


class _Run:
    """The SQL of one pass. Every statement is a single autocommit transaction."""

    def __init__(
        self,
        report: PurgeReport,
        using: str | None,
        batch_size: int,
        sleep: float,
        on_batch: BatchListener | None,
        *,
        app_id: str | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
        if not sleep >= 0:
            raise ValueError(f"sleep must be zero or more seconds, not {sleep!r}")
        self.report, self.batch_size, self.sleep, self.on_batch = report, batch_size, sleep, on_batch
        self.connection = connections[using or router.db_for_write(OAuthCodeUse)]
        quote, meta = self.connection.ops.quote_name, OAuthCodeUse._meta
        self.table = quote(meta.db_table)
        (
            self.id,
            self.seen,
            self.status,
            self.access,
            self.error,
            self.duplicates,
            app_column,
            session_key,
            profile,
        ) = (
            # Concrete fields of OAuthCodeUse, each with its column (no relation among them).
            quote(meta.get_field(name).column)  # type: ignore[union-attr, arg-type]
            for name in (
                "id",
                "first_seen_at",
                "status",
                "access_token",
                "error",
                "duplicates",
                "app_id",
                "session_key",
                "profile",
            )
        )
        # models.HOLDS_SECRETS, as Django writes it in the index.
        self.holds_secrets = f"NOT ({self.access} = '') OR NOT ({session_key} = '') OR {profile} IS NOT NULL"
        # One app's rows only (purge(app=...)): a condition and its parameter, or nothing.
        self.of_app = f" AND {app_column} = %s" if app_id is not None else ""
        self.app_params: list[Any] = [app_id] if app_id is not None else []
        # Blank every token field: NULL where the column allows it, else the empty string.
        self.blank_tokens = ", ".join(
            f"{quote(field.column)} = {'NULL' if field.null else SQL_EMPTY_STRING}"  # type: ignore[union-attr, arg-type]
            for field in map(meta.get_field, OAuthCodeUse.TOKEN_FIELDS)
        )
        self.started = time.monotonic()
        self.batches_started = 0

    # -- deleting ------------------------------------------------------------------------

    def delete(self, *, before: datetime) -> None:
        t, id_, seen = self.table, self.id, self.seen
        hi = self._newest_before(before)
        if hi is None:
            return
        if self.report.dry_run:
            self.report.deleted = self._value(
                f"SELECT COUNT(*) FROM {t} WHERE {seen} < %s AND {self.status} <> %s AND {id_} <= %s"
                + self.of_app,
                [self._when(before), _IN_FLIGHT, hi, *self.app_params],
            )
            return
        delete = (
            f"DELETE FROM {t} WHERE {id_} >= %s AND {id_} < %s"
            f" AND {seen} < %s AND {self.status} <> %s" + self.of_app
        )
        lo = self._value(f"SELECT MIN({id_}) FROM {t} WHERE {id_} <= %s", [hi])
        while lo is not None:
            self._pause()
            end = min(lo + self.batch_size, hi + 1)
            self.report.deleted += self._rowcount(
                delete, [lo, end, self._when(before), _IN_FLIGHT, *self.app_params]
            )
            self._batch_done()
            if end > hi:
                break
            lo = self._value(f"SELECT MIN({id_}) FROM {t} WHERE {id_} >= %s AND {id_} <= %s", [end, hi])

    def delete_garbage(self, *, before: datetime, not_before: datetime) -> None:
        """Delete the rejected codes first seen in [``not_before``, ``before``)."""
        if before <= not_before:  # GARBAGE_RETENTION >= the retention: nothing of its own
            return
        hi = self._newest_before(before)
        if hi is None:
            return
        t, id_ = self.table, self.id
        rule = (
            f"{self.seen} < %s AND {self.seen} >= %s AND {self.status} = %s"
            f" AND {self.error} = %s AND {self.duplicates} = 0 AND {self.status} <> %s" + self.of_app
        )
        params = [
            self._when(before),
            self._when(not_before),
            _FAILED,
            CodeSpent.key,
            _IN_FLIGHT,
            *self.app_params,
        ]
        if self.report.dry_run:
            self.report.garbage_deleted = self._value(
                f"SELECT COUNT(*) FROM {t} WHERE {id_} <= %s AND {rule}", [hi, *params]
            )
            return
        delete = f"DELETE FROM {t} WHERE {id_} >= %s AND {id_} < %s AND {rule}"
        lo = self._value(f"SELECT MIN({id_}) FROM {t} WHERE {id_} <= %s AND {rule}", [hi, *params])
        while lo is not None:
            self._pause()
            end = min(lo + self.batch_size, hi + 1)
            self.report.garbage_deleted += self._rowcount(delete, [lo, end, *params])
            self._batch_done()
            if end > hi:
                break
            lo = self._value(
                f"SELECT MIN({id_}) FROM {t} WHERE {id_} >= %s AND {id_} <= %s AND {rule}", [end, hi, *params]
            )

    def _newest_before(self, before: datetime) -> Any:
        """The id of the most recent row first seen before ``before``: two index lookups."""
        t, id_, seen = self.table, self.id, self.seen
        return self._value(
            f"SELECT MAX({id_}) FROM {t} WHERE {seen} = (SELECT MAX({seen}) FROM {t} WHERE {seen} < %s)",
            [self._when(before)],
        )

    # -- scrubbing -----------------------------------------------------------------------

    def scrub(self, *, before: datetime, not_before: datetime | None) -> None:
        # The first condition is written as in the partial index, so SQLite uses it too.
        where = f"({self.holds_secrets}) AND {self.seen} < %s AND {self.status} <> %s" + self.of_app
        params: list[Any] = [self._when(before), _IN_FLIGHT, *self.app_params]
        if not_before is not None:
            where += f" AND {self.seen} >= %s"
            params.append(self._when(not_before))
        if self.report.dry_run:
            self.report.scrubbed = self._value(f"SELECT COUNT(*) FROM {self.table} WHERE {where}", params)
            return
        update = self._batched_update(where)
        while True:
            self._pause()
            count = self._rowcount(update, [*params, self.batch_size])
            self.report.scrubbed += count
            self._batch_done()
            if count < self.batch_size:
                break

    def _batched_update(self, where: str) -> str:
        """One batch of the scrub: at most ``batch_size`` rows matching ``where``."""
        if self.connection.vendor == "mysql":
            # MariaDB/MySQL refuse LIMIT inside an IN subquery (1235) and a subquery on the
            # table being updated (1093); a single-table UPDATE takes LIMIT itself.
            return f"UPDATE {self.table} SET {self.blank_tokens} WHERE {where} ORDER BY {self.id} LIMIT %s"
        return (
            f"UPDATE {self.table} SET {self.blank_tokens} WHERE {self.id} IN"
            f" (SELECT {self.id} FROM {self.table} WHERE {where} LIMIT %s)"
        )

    # -- helpers -------------------------------------------------------------------------

    def _when(self, moment: datetime) -> Any:
        return self.connection.ops.adapt_datetimefield_value(moment)

    def _value(self, sql: str, params: Sequence[Any]) -> Any:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return None if row is None else row[0]

    def _rowcount(self, sql: str, params: Sequence[Any]) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            rowcount: int = cursor.rowcount
            return max(rowcount, 0)

    def _pause(self) -> None:
        if self.batches_started and self.sleep:
            time.sleep(self.sleep)
        self.batches_started += 1

    def _batch_done(self) -> None:
        self.report.batches += 1
        self.tick()
        if self.on_batch is not None:
            self.on_batch(self.report)

    def tick(self) -> None:
        self.report.seconds = time.monotonic() - self.started
