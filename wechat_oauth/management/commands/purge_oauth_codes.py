"""``manage.py purge_oauth_codes``: the retention pass over OAuthCodeUse (see wechat_oauth.purge).

Exit status: 0 done (also when there was nothing to do), 2 bad arguments, 1 database error
(one line on stderr, no traceback).
"""

from __future__ import annotations

import json
import re
import time
from argparse import RawDescriptionHelpFormatter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.db import DatabaseError, connections

from wechat_oauth import purge as purging
from wechat_oauth.conf import app_settings

#: Seconds between two updates of the live counter.
PROGRESS_PERIOD = 0.2


class _HelpFormatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    """Django's option order, with the description's line breaks kept (the examples)."""


class Command(BaseCommand):
    help = """\
Delete OAuthCodeUse rows first seen longer ago than the retention (WECHAT_OAUTH["RETENTION"],
default 7 days), codes WeChat rejected (invalid or used, never sent again) first seen longer
ago than GARBAGE_RETENTION (default 1 hour), and blank the tokens and profile of rows past
DEDUPE_WINDOW. Rows of an exchange in flight are never touched. Works in batches of short
transactions, without loading rows, so it can run every few minutes beside live traffic. With
CACHE_ALIAS set, the duplicate counters kept in Redis are folded into the rows first.

Durations: 90s, 10m, 12h, 7d, 2w or plain seconds.
Exit status: 0 done (also when nothing was to do), 2 bad arguments, 1 database error.

cron, every 5 minutes (flock skips a run while the previous one still runs; cron mails the
summary line, or append >> /var/log/purge_oauth_codes.log 2>&1):
  */5 * * * * cd /srv/site && flock -n /tmp/purge_oauth_codes.lock venv/bin/python manage.py purge_oauth_codes

Celery beat:
  # tasks.py
  from celery import shared_task
  from django.core.management import call_command

  @shared_task(ignore_result=True)
  def purge_oauth_codes():
      call_command("purge_oauth_codes", "--no-progress")

  # settings.py (app.config_from_object("django.conf:settings", namespace="CELERY"))
  from celery.schedules import crontab
  CELERY_BEAT_SCHEDULE = {
      "purge-oauth-codes": {"task": "mysite.tasks.purge_oauth_codes",
                            "schedule": crontab(minute="*/5")},
  }
"""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> Any:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parse_error = parser.error

        def error(message: str) -> Any:
            # argparse exits 2 on the command line; through call_command Django raises a
            # CommandError with returncode 1: make that 2 as well.
            try:
                return parse_error(message)
            except CommandError as usage:
                raise CommandError(str(usage), returncode=2) from None

        parser.error = error  # type: ignore[method-assign]  # this parser's own, on purpose
        return parser

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--older-than",
            metavar="DURATION",
            help="Delete rows first seen longer ago than this (default: the RETENTION setting).",
        )
        parser.add_argument(
            "--batch-size",
            metavar="N",
            default=purging.DEFAULT_BATCH_SIZE,
            help=f"Rows per transaction (default {purging.DEFAULT_BATCH_SIZE:,}).",
        )
        parser.add_argument(
            "--sleep",
            metavar="SECONDS",
            default=0.0,
            help="Pause between two batches, e.g. 0.05 (default 0).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Only count what would be deleted (rejected codes too) and scrubbed; change nothing.",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print only a JSON object (deleted, garbage_deleted, scrubbed, folded, seconds, "
            "rows_per_second, dry_run, older_than_seconds, garbage_older_than_seconds, "
            "batches, app).",
        )
        parser.add_argument(
            "--no-progress",
            action="store_true",
            help="No live counter (it is shown only when stdout is a terminal anyway).",
        )
        parser.add_argument(
            "--database",
            metavar="ALIAS",
            help="Database alias (default: the router's choice for OAuthCodeUse).",
        )
        parser.add_argument(
            "--app",
            metavar="NAME",
            help="Only this configured app's rows (a name of WECHAT_OAUTH['APPS']); the report "
            "is that app's.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        older_than, batch_size, sleep, using = self._validated(options)
        show_progress = not options["json"] and not options["no_progress"] and self.stdout.isatty()
        progress = _Progress(self.stdout) if show_progress else None
        try:
            report = purging.purge(
                older_than,
                batch_size=batch_size,
                sleep=sleep,
                dry_run=options["dry_run"],
                on_batch=progress.update if progress else None,
                using=using,
                app=options["app"],
            )
        except DatabaseError as error:
            if progress:
                progress.clear()
            raise CommandError(f"database error: {_one_line(error)}", returncode=1) from None
        except ValueError as error:  # RETENTION or GARBAGE_RETENTION too short, an unknown app
            raise CommandError(f"WECHAT_OAUTH settings: {error}", returncode=2) from None
        if progress:
            progress.clear()
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
        else:
            self.stdout.write(summary(report, cache=bool(app_settings.CACHE_ALIAS)))

    def _validated(self, options: dict[str, Any]) -> tuple[Any, int, float, str | None]:
        def usage(message: str) -> CommandError:
            return CommandError(f"{message} (see --help)", returncode=2)

        older_than = None
        if options["older_than"] is not None:
            try:
                older_than = purging.parse_duration(options["older_than"])
            except ValueError as error:
                raise usage(f"--older-than: {error}") from None
            if older_than.total_seconds() < app_settings.DEDUPE_WINDOW:
                raise usage(
                    f"--older-than {purging.format_duration(older_than)} is shorter than "
                    f"DEDUPE_WINDOW ({app_settings.DEDUPE_WINDOW} s): rows must outlive "
                    f"the window in which duplicates replay them"
                )
        batch_size = _positive_int(options["batch_size"])
        if batch_size is None:
            raise usage(f"--batch-size: {options['batch_size']!r} is not a positive integer")
        try:
            sleep = float(options["sleep"])
        except (TypeError, ValueError):
            sleep = -1.0
        if not 0 <= sleep < float("inf"):
            raise usage(f"--sleep: {options['sleep']!r} is not a number of seconds >= 0")
        using = options["database"]
        if using is not None and using not in connections.settings:
            raise usage(f"--database: no database {using!r} in DATABASES")
        return older_than, batch_size, sleep, using


def summary(report: purging.PurgeReport, *, cache: bool = False) -> str:
    """The one-line summary printed at the end of a run."""
    purged = f"{_codes(report.deleted)} older than {purging.format_duration(report.older_than)}"
    if report.garbage_older_than is not None:
        purged += (
            f" and {_codes(report.garbage_deleted, 'rejected code')} older than "
            f"{purging.format_duration(report.garbage_older_than)}"
        )
    if report.dry_run:
        comma = "," if report.garbage_older_than is not None else ""
        return (
            f"dry run: would purge {purged}{comma} and scrub tokens of "
            f"{_codes(report.scrubbed)} (nothing changed)"
        )
    folded = f", folded {report.folded:,} cache counters" if cache or report.folded else ""
    return (
        f"purged {purged}, scrubbed tokens of {_codes(report.scrubbed)}{folded} in "
        f"{report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s)"
    )


def _positive_int(value: Any) -> int | None:
    """An int, or digits (``10000``, ``10_000``, ``10,000``), above zero; else None."""
    if isinstance(value, str) and re.fullmatch(r"\s*\d[\d_,]*\s*", value):
        value = int(value.replace(",", "").replace("_", ""))
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _codes(count: int, noun: str = "code") -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


class _Progress:
    """The live counter: one line rewritten with ``\\r``, at most every PROGRESS_PERIOD."""

    def __init__(self, out: Any) -> None:
        self.out, self.width, self.last = out, 0, 0.0

    def update(self, report: purging.PurgeReport) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_PERIOD and self.width:
            return
        self.last = now
        deleted = report.deleted + report.garbage_deleted
        text = (
            f"deleted {deleted:,} codes ({report.rows_per_second:,.0f} rows/s), scrubbed {report.scrubbed:,}"
        )
        self.out.write("\r" + text.ljust(self.width), ending="")
        self.out.flush()
        self.width = len(text)

    def clear(self) -> None:
        if self.width:
            self.out.write("\r" + " " * self.width + "\r", ending="")
            self.out.flush()
