"""purge_oauth_codes and wechat_oauth.purge: retention, token scrub, batches, output, exit codes.

Runs on the default database of the run (SQLite, or PostgreSQL with WECHAT_OAUTH_TEST_DB=postgres);
the test beside an exchange in flight runs on both.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.cache import caches
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests import services
from tests.concurrency import start_thread, wait_until
from wechat_oauth import purge as purging
from wechat_oauth.guard import exchange_once
from wechat_oauth.management.commands.purge_oauth_codes import summary
from wechat_oauth.models import OAuthCodeUse

pytestmark = pytest.mark.django_db(transaction=True)

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
REPO = Path(__file__).resolve().parent.parent
JSON_KEYS = {
    "deleted",
    "garbage_deleted",
    "scrubbed",
    "folded",
    "seconds",
    "rows_per_second",
    "dry_run",
    "older_than_seconds",
    "garbage_older_than_seconds",
    "batches",
    "app",
}
_numbers = itertools.count()


def add_rows(
    count,
    age,
    *,
    tokens=False,
    status="exchanged",
    error="",
    duplicates=0,
    now=None,
    using="default",
    app_id="wxtestappid0000001",
):
    """``count`` rows first seen ``age`` before ``now``; their ids, in insertion order."""
    moment = (now or timezone.now()) - age
    rows = [
        OAuthCodeUse(
            app_id=app_id,
            code_hash=f"{next(_numbers):064x}",
            status=status,
            error=error,
            duplicates=duplicates,
            first_seen_at=moment,
            last_seen_at=moment,
            access_token="access-token" if tokens else "",
            refresh_token="refresh-token" if tokens else "",
            profile={"nickname": "Pat"} if tokens else None,
        )
        for _ in range(count)
    ]
    OAuthCodeUse.objects.using(using).bulk_create(rows)
    return list(
        OAuthCodeUse.objects.using(using)
        .filter(code_hash__in=[r.code_hash for r in rows])
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def purge_command(*args, stdout=None, **options):
    out = stdout if stdout is not None else io.StringIO()
    call_command("purge_oauth_codes", *args, stdout=out, **options)
    return out.getvalue()


def purge_json(*args, **options):
    return json.loads(purge_command("--json", *args, **options))


def holds_tokens(pk, using="default"):
    row = OAuthCodeUse.objects.using(using).get(pk=pk)
    held = (row.access_token, row.refresh_token, row.profile)
    assert held in (("access-token", "refresh-token", {"nickname": "Pat"}), ("", "", None)), held
    return row.access_token != ""


#: A made-up code sent to the callback: WeChat answered 40029 (invalid code), nobody came again.
rejected = partial(add_rows, status="failed", error="spent")


def remaining(using="default"):
    return set(OAuthCodeUse.objects.using(using).values_list("pk", flat=True))


class TTY(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def frozen_now(monkeypatch):
    """purge's clock stopped at a known instant (with microseconds, to test exact edges)."""
    now = datetime(2026, 3, 1, 12, 0, 0, 500000, tzinfo=dt_timezone.utc)
    monkeypatch.setattr(purging, "timezone", SimpleNamespace(now=lambda: now))
    return now


# -- retention ----------------------------------------------------------------------------


def test_default_retention_is_seven_days():
    old = add_rows(3, 8 * DAY)
    kept = add_rows(2, 6 * DAY)

    report = purge_json()

    assert remaining() == set(kept)
    assert not remaining() & set(old)
    assert (report["deleted"], report["older_than_seconds"]) == (3, 7 * 86400)


def test_retention_comes_from_the_setting(settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "RETENTION": 3600}
    add_rows(2, timedelta(hours=2))
    kept = add_rows(1, timedelta(minutes=30))

    report = purge_json()

    assert remaining() == set(kept)
    assert (report["deleted"], report["older_than_seconds"]) == (2, 3600)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("12h", 43200),
        ("7d", 604800),
        ("2w", 1209600),
        ("3600", 3600),
        (" 5M ", 300),
    ],
)
def test_older_than_accepts_each_unit(text, seconds):
    add_rows(2, timedelta(seconds=seconds * 1.1 + 1))
    kept = add_rows(1, timedelta(seconds=seconds * 0.9))

    report = purge_json("--older-than", text)

    assert report["older_than_seconds"] == seconds
    assert report["deleted"] == 2
    assert remaining() == set(kept)


@pytest.mark.parametrize("text", ["", "abc", "5x", "-5m", "0", "0s", "1.5h", "7 days", "d7", "20s"])
def test_bad_older_than_is_a_usage_error(text):
    """20s is a valid duration but shorter than DEDUPE_WINDOW (30 s): refused as well."""
    add_rows(1, 8 * DAY)

    with pytest.raises(CommandError) as raised:
        purge_command("--older-than", text)

    assert raised.value.returncode == 2
    assert "--older-than" in str(raised.value)
    assert OAuthCodeUse.objects.count() == 1


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--batch-size", "0"),
        ("--batch-size", "-3"),
        ("--batch-size", "ten"),
        ("--batch-size", "1.5"),
        ("--sleep", "-1"),
        ("--sleep", "soon"),
        ("--sleep", "inf"),
        ("--database", "nowhere"),
    ],
)
def test_bad_option_values_are_usage_errors(option, value):
    with pytest.raises(CommandError) as raised:
        purge_command(option, value)

    assert raised.value.returncode == 2
    assert option in str(raised.value)


def test_retention_setting_shorter_than_the_dedupe_window_is_refused(settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "RETENTION": 20}
    add_rows(1, timedelta(minutes=5))

    with pytest.raises(CommandError) as raised:
        purge_command()

    assert raised.value.returncode == 2
    assert "DEDUPE_WINDOW" in str(raised.value)
    assert OAuthCodeUse.objects.count() == 1


def _run_subprocess(*args):
    """The real command line, against a PostgreSQL nobody listens on (nothing is created)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "WECHAT_OAUTH_TEST_DB": "postgres",
        "WECHAT_OAUTH_TEST_PG_PORT": str(services.free_port()),
    }
    return subprocess.run(
        [sys.executable, "-m", "django", "purge_oauth_codes", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_exit_status_of_the_real_command_line():
    bad_argument = _run_subprocess("--older-than", "5x")
    unreachable = _run_subprocess("--json")

    assert bad_argument.returncode == 2
    assert bad_argument.stdout == ""
    assert bad_argument.stderr.splitlines() == [
        "CommandError: --older-than: '5x' is not a duration "
        "(examples: 90s, 10m, 12h, 7d, 2w, 3600) (see --help)"
    ]
    assert unreachable.returncode == 1
    assert unreachable.stdout == ""
    lines = unreachable.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("CommandError: database error: "), lines
    assert "Traceback" not in unreachable.stderr


def test_rows_at_the_cutoff_are_kept_and_older_ones_deleted(frozen_now):
    cutoff = frozen_now - WEEK
    at_cutoff = add_rows(1, timedelta(0), now=cutoff)
    just_older = add_rows(1, timedelta(microseconds=1), now=cutoff)
    just_newer = add_rows(1, timedelta(microseconds=-1), now=cutoff)

    report = purge_json()

    assert report["deleted"] == 1
    assert remaining() == set(at_cutoff + just_newer)
    assert not remaining() & set(just_older)


# -- token scrub --------------------------------------------------------------------------


def test_tokens_are_scrubbed_past_the_window_and_kept_within_it(frozen_now):
    window_end = frozen_now - timedelta(seconds=30)  # DEDUPE_WINDOW
    within = add_rows(2, timedelta(seconds=15), tokens=True, now=frozen_now)
    at_window_end = add_rows(1, timedelta(0), tokens=True, now=window_end)
    past = add_rows(3, timedelta(microseconds=1), tokens=True, now=window_end)
    days_old = add_rows(2, 3 * DAY, tokens=True, now=frozen_now)
    at_retention_edge = add_rows(1, WEEK, tokens=True, now=frozen_now)
    expired = add_rows(2, 8 * DAY, tokens=True, now=frozen_now)

    report = purge_json()

    assert (report["scrubbed"], report["deleted"]) == (6, 2)
    assert all(holds_tokens(pk) for pk in within + at_window_end)
    assert not any(holds_tokens(pk) for pk in past + days_old + at_retention_edge)
    assert not remaining() & set(expired)
    again = purge_json()
    assert (again["scrubbed"], again["deleted"]) == (0, 0)


def test_a_mini_programs_session_key_and_a_wecom_profile_are_scrubbed_too():
    """Rows of logins without an access token (a Mini Program's session_key, a WeCom
    member's details) hold secrets all the same: scrubbed past the window like tokens."""
    moment = timezone.now() - timedelta(minutes=5)
    OAuthCodeUse.objects.bulk_create(
        [
            OAuthCodeUse(
                app_id="wxmini",
                code_hash="a" * 64,
                status="exchanged",
                first_seen_at=moment,
                last_seen_at=moment,
                session_key="c2Vzc2lvbiBrZXk=",
            ),
            OAuthCodeUse(
                app_id="wwcorp",
                code_hash="b" * 64,
                status="exchanged",
                first_seen_at=moment,
                last_seen_at=moment,
                profile={"openid": "zhangsan", "mobile": "13800000000"},
            ),
        ]
    )

    report = purge_json()

    assert report["scrubbed"] == 2
    assert list(OAuthCodeUse.objects.values_list("session_key", "profile")) == [("", None)] * 2


def test_scrub_follows_the_dedupe_window_setting(settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "DEDUPE_WINDOW": 600}
    within = add_rows(1, timedelta(minutes=5), tokens=True)
    past = add_rows(1, timedelta(minutes=15), tokens=True)

    assert purge_json()["scrubbed"] == 1
    assert holds_tokens(within[0]) and not holds_tokens(past[0])


def test_in_flight_rows_are_never_touched():
    """A committed in_flight row cannot happen in practice (the holder's row is uncommitted
    until it is finished), so it is made directly: neither deleted nor scrubbed."""
    old_in_flight = add_rows(1, 30 * DAY, tokens=True, status="in_flight")
    recent_in_flight = add_rows(1, timedelta(minutes=5), tokens=True, status="in_flight")
    add_rows(2, 30 * DAY)
    scrub_me = add_rows(1, timedelta(minutes=5), tokens=True)

    dry = purge_json("--dry-run")
    report = purge_json("--older-than", "1h")

    assert (dry["deleted"], dry["scrubbed"]) == (2, 1)
    assert (report["deleted"], report["scrubbed"]) == (2, 1)
    assert remaining() == set(old_in_flight + recent_in_flight + scrub_me)
    assert holds_tokens(old_in_flight[0]) and holds_tokens(recent_in_flight[0])
    assert OAuthCodeUse.objects.filter(status="in_flight").count() == 2


def test_rows_older_but_above_the_id_range_wait_for_a_later_run(frozen_now):
    """Clock skew: a row written later (higher id) by a server whose clock is behind."""
    add_rows(1, 9 * DAY, now=frozen_now)
    recent = add_rows(1, 6 * DAY, now=frozen_now)
    skewed = add_rows(1, 10 * DAY, now=frozen_now)
    newest = add_rows(1, DAY, now=frozen_now)

    assert purge_json()["deleted"] == 1
    assert remaining() == set(recent + skewed + newest)
    # Once a row with a higher id expires too, the skewed row goes with it.
    assert purge_json("--older-than", "12h")["deleted"] == 3
    assert remaining() == set()


# -- rejected codes (garbage) -------------------------------------------------------------
#
# Anyone can send the callback made-up codes; each becomes a failed row ("spent": WeChat said
# invalid or used). Such a row with no duplicate only has to outlive the dedupe window, so it
# goes after GARBAGE_RETENTION (default 1 h) instead of RETENTION.


def test_rejected_codes_are_deleted_after_an_hour_and_everything_else_kept(frozen_now):
    cutoff = frozen_now - timedelta(hours=1)
    garbage = rejected(3, timedelta(hours=2), now=frozen_now)
    just_older = rejected(1, timedelta(microseconds=1), now=cutoff)
    at_cutoff = rejected(1, timedelta(0), now=cutoff)
    young = rejected(2, timedelta(minutes=30), now=frozen_now)
    with_duplicates = rejected(1, timedelta(hours=2), duplicates=1, now=frozen_now)
    other_errors = [
        pk
        for key in ("expired", "upstream", "unavailable", "credentials")
        for pk in add_rows(1, timedelta(hours=2), status="failed", error=key, now=frozen_now)
    ]
    exchanged = add_rows(2, timedelta(hours=2), now=frozen_now)

    report = purge_json()

    assert (report["garbage_deleted"], report["deleted"]) == (4, 0)
    assert report["garbage_older_than_seconds"] == 3600
    assert not remaining() & set(garbage + just_older)
    assert remaining() == set(at_cutoff + young + with_duplicates + other_errors + exchanged)
    assert purge_json()["garbage_deleted"] == 0


def test_rejected_codes_past_the_retention_count_as_deleted_once():
    rejected(2, 8 * DAY)
    rejected(3, timedelta(hours=3))

    dry = purge_json("--dry-run")
    report = purge_json()

    assert (dry["deleted"], dry["garbage_deleted"]) == (2, 3)
    assert (report["deleted"], report["garbage_deleted"]) == (2, 3)
    assert remaining() == set()


def test_garbage_retention_comes_from_the_setting(settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "GARBAGE_RETENTION": 600}
    rejected(2, timedelta(minutes=15))
    kept = rejected(1, timedelta(minutes=5))

    report = purge_json()

    assert (report["garbage_deleted"], report["garbage_older_than_seconds"]) == (2, 600)
    assert remaining() == set(kept)


@pytest.mark.parametrize("value", [20, "20s", 0])
def test_garbage_retention_shorter_than_the_dedupe_window_is_refused(settings, value):
    """A duplicate arriving within the window must still find the failed row."""
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "GARBAGE_RETENTION": value}
    rejected(1, timedelta(minutes=5))

    with pytest.raises(CommandError) as raised:
        purge_command()
    with pytest.raises(ValueError, match="GARBAGE_RETENTION"):
        purging.purge()

    assert raised.value.returncode == 2
    assert "GARBAGE_RETENTION" in str(raised.value)
    assert OAuthCodeUse.objects.count() == 1


@pytest.mark.django_db(databases="__all__")  # Django 6.1 runs every alias's database checks
def test_garbage_retention_shorter_than_the_dedupe_window_fails_the_system_check(settings):
    from django.core import checks

    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "GARBAGE_RETENTION": 20}

    ids = {
        m.id for m in checks.run_checks() if m.id.startswith("wechat_oauth.") and m.level > checks.INFO
    }  # not advice

    assert ids == {"wechat_oauth.E010"}


def test_dry_run_counts_rejected_codes_and_deletes_nothing():
    rejected(3, timedelta(hours=2))
    rejected(1, timedelta(minutes=10))
    before = remaining()

    text = purge_command("--dry-run")
    report = purge_json("--dry-run", "--batch-size", "1")

    assert text == (
        "dry run: would purge 0 codes older than 7d and 3 rejected codes older than "
        "1h, and scrub tokens of 0 codes (nothing changed)\n"
    )
    assert (report["garbage_deleted"], report["deleted"], report["batches"]) == (3, 0, 0)
    assert remaining() == before


def test_summary_line_names_the_rejected_codes():
    add_rows(2, 8 * DAY)
    rejected(1, timedelta(hours=2))

    out = purge_command()

    assert re.fullmatch(
        r"purged 2 codes older than 7d and 1 rejected code older than 1h, "
        r"scrubbed tokens of 0 codes in \d+\.\d s \([\d,]+ rows/s\)\n",
        out,
    ), out


def test_rejected_codes_go_in_batches_with_queries_per_batch_not_per_row():
    """Rejected rows among rows that stay: only windows holding garbage cost a DELETE, and
    twice the rows in twice as large batches take the same queries."""

    def run(count, batch_size):
        OAuthCodeUse.objects.all().delete()
        for _ in range(count):
            add_rows(1, timedelta(hours=3))
            rejected(1, timedelta(hours=2))
        add_rows(count, timedelta(minutes=90))
        with CaptureQueriesContext(connection) as queries:
            report = purge_json("--batch-size", str(batch_size))
        assert OAuthCodeUse.objects.filter(error="spent").count() == 0
        assert OAuthCodeUse.objects.count() == 2 * count
        return report, [query["sql"] for query in queries]

    report_25, queries_25 = run(25, 10)
    report_50, queries_50 = run(50, 20)

    # 25 garbage rows between 25 kept ones: ids span 50, windows of 10 ids: 5 DELETEs.
    assert (report_25["garbage_deleted"], report_25["batches"]) == (25, 6)  # + the scrub
    assert (report_50["garbage_deleted"], report_50["batches"]) == (50, 6)
    assert len(queries_25) == len(queries_50) <= 2 * 5 + 5
    assert sum(sql.lstrip().upper().startswith("DELETE") for sql in queries_25) == 5
    quote = connection.ops.quote_name
    for sql in queries_25:
        if sql.lstrip().upper().startswith("SELECT"):
            assert re.match(rf"SELECT (MIN|MAX|COUNT)\((\*|{re.escape(quote('id'))})\) FROM", sql), sql


@pytest.mark.django_db(databases="__all__")
def test_rejected_codes_go_batch_by_batch_and_in_flight_rows_stay(alias):
    """Batches of 2 ids over rejected rows interleaved with rows that stay, on each database:
    every DELETE spells out the rule (failed, spent, no duplicate, not in flight)."""
    garbage, kept = [], []
    for _ in range(3):
        garbage += rejected(2, timedelta(hours=2), using=alias)
        kept += add_rows(1, timedelta(hours=2), status="in_flight", error="spent", using=alias)
        kept += rejected(1, timedelta(hours=2), duplicates=2, using=alias)
        kept += add_rows(1, timedelta(hours=2), status="failed", error="upstream", using=alias)
        kept += rejected(1, timedelta(minutes=20), using=alias)
    seen = []

    dry = purging.purge(using=alias, batch_size=2, dry_run=True)
    report = purging.purge(using=alias, batch_size=2, on_batch=lambda r: seen.append(r.garbage_deleted))

    assert (dry.garbage_deleted, report.garbage_deleted, report.deleted) == (6, 6, 0)
    assert seen == [0, 2, 4, 6]  # the scrub, then one DELETE per window holding garbage
    assert remaining(alias) == set(kept)
    assert OAuthCodeUse.objects.using(alias).filter(status="in_flight").count() == 3


# -- batches ------------------------------------------------------------------------------


def _captured_purge(rows, batch_size):
    add_rows(rows, 8 * DAY)
    with CaptureQueriesContext(connection) as queries:
        report = purge_json("--batch-size", str(batch_size))
    assert OAuthCodeUse.objects.count() == 0
    return report, [query["sql"] for query in queries]


def test_batches_cover_every_row_with_queries_per_batch_not_per_row(django_assert_max_num_queries):
    add_rows(50, 8 * DAY)
    with django_assert_max_num_queries(2 * 8 + 3):  # 8 windows: a MIN and a DELETE each, + 3
        small = purge_json("--batch-size", "7")

    report_50, queries_50 = _captured_purge(50, 7)
    report_100, queries_100 = _captured_purge(100, 14)

    # ceil(50 / 7) = 8 DELETE windows, plus the one scrub UPDATE (nothing to scrub).
    assert (small["deleted"], small["batches"]) == (50, 9)
    assert (report_50["deleted"], report_50["batches"]) == (50, 9)
    assert (report_100["deleted"], report_100["batches"]) == (100, 9)
    assert len(queries_100) == len(queries_50)  # twice the rows, same batches: same queries
    assert sum(sql.lstrip().upper().startswith("DELETE") for sql in queries_50) == 8
    # No row is ever read into Python: every SELECT returns one aggregate of ids.
    quote = connection.ops.quote_name
    for sql in queries_50:
        if sql.lstrip().upper().startswith("SELECT"):
            assert re.match(rf"SELECT (MIN|MAX|COUNT)\((\*|{re.escape(quote('id'))})\) FROM", sql), sql


def test_scrub_runs_in_batches_too():
    add_rows(25, timedelta(hours=1), tokens=True)

    report = purge_json("--batch-size", "10")

    # 10 + 10 + 5 scrubbed (the short batch ends it); nothing expired: no DELETE at all.
    assert (report["scrubbed"], report["batches"], report["deleted"]) == (25, 3, 0)
    assert not OAuthCodeUse.objects.exclude(access_token="").exists()


def test_sleep_between_batches(monkeypatch):
    slept = []
    monkeypatch.setattr(purging.time, "sleep", slept.append)
    add_rows(50, 8 * DAY)

    report = purge_json("--batch-size", "7", "--sleep", "0.25")

    assert report["batches"] == 9
    assert slept == [0.25] * 8  # between batches: not before the first nor after the last


def test_no_sleep_by_default(monkeypatch):
    slept = []
    monkeypatch.setattr(purging.time, "sleep", slept.append)
    add_rows(20, 8 * DAY)

    assert purge_json("--batch-size", "5")["deleted"] == 20
    assert slept == []


# -- dry run and output -------------------------------------------------------------------


def test_dry_run_counts_and_changes_nothing():
    old = add_rows(4, 8 * DAY, tokens=True)
    past_window = add_rows(3, timedelta(hours=1), tokens=True)
    add_rows(2, timedelta(hours=1))
    within = add_rows(1, timedelta(seconds=5), tokens=True)
    before = remaining()

    text = purge_command("--dry-run")
    report = purge_json("--dry-run", "--batch-size", "2")

    assert text == (
        "dry run: would purge 4 codes older than 7d and 0 rejected codes older than "
        "1h, and scrub tokens of 3 codes (nothing changed)\n"
    )
    assert report["dry_run"] is True
    assert (report["deleted"], report["scrubbed"], report["folded"], report["batches"]) == (4, 3, 0, 0)
    assert remaining() == before
    assert all(holds_tokens(pk) for pk in old + past_window + within)


def test_json_output_is_one_object_matching_what_was_done():
    add_rows(3, 8 * DAY)
    add_rows(2, timedelta(hours=2), tokens=True)
    add_rows(1, timedelta(hours=2))

    out = purge_command("--json")

    assert out.count("\n") == 1
    report = json.loads(out)
    assert set(report) == JSON_KEYS
    assert (report["deleted"], report["scrubbed"], report["folded"]) == (3, 2, 0)
    assert (report["dry_run"], report["older_than_seconds"], report["batches"]) == (False, 604800, 2)
    assert (report["garbage_deleted"], report["garbage_older_than_seconds"]) == (0, 3600)
    assert isinstance(report["seconds"], float) and report["seconds"] >= 0
    assert isinstance(report["rows_per_second"], int) and report["rows_per_second"] > 0
    assert OAuthCodeUse.objects.count() == 3


def test_summary_line():
    add_rows(3, 8 * DAY)
    add_rows(1, timedelta(hours=2), tokens=True)

    out = purge_command()

    assert re.fullmatch(
        r"purged 3 codes older than 7d and 0 rejected codes older than 1h, "
        r"scrubbed tokens of 1 code in \d+\.\d s \([\d,]+ rows/s\)\n",
        out,
    ), out


def test_summary_line_format_with_cache_counters():
    report = purging.PurgeReport(older_than=WEEK, deleted=1_000_000, scrubbed=12, folded=3, seconds=8.2)
    assert summary(report, cache=True) == (
        "purged 1,000,000 codes older than 7d, scrubbed tokens of 12 codes, "
        "folded 3 cache counters in 8.2 s (121,951 rows/s)"
    )
    nothing = purging.PurgeReport(older_than=timedelta(hours=36))
    assert summary(nothing) == (
        "purged 0 codes older than 36h, scrubbed tokens of 0 codes in 0.0 s (0 rows/s)"
    )
    garbage = purging.PurgeReport(
        older_than=WEEK, garbage_older_than=timedelta(hours=2), deleted=5, garbage_deleted=1, seconds=2.0
    )
    assert summary(garbage) == (
        "purged 5 codes older than 7d and 1 rejected code older than 2h, "
        "scrubbed tokens of 0 codes in 2.0 s (3 rows/s)"
    )
    assert summary(dataclasses.replace(garbage, dry_run=True)) == (
        "dry run: would purge 5 codes older than 7d and 1 rejected code older than 2h, and "
        "scrub tokens of 0 codes (nothing changed)"
    )


def test_nothing_to_do_is_success():
    assert purge_command().startswith(
        "purged 0 codes older than 7d and 0 rejected codes older than 1h, scrubbed tokens of 0 codes"
    )
    assert purge_json()["batches"] == 1  # the one scrub UPDATE that found nothing


def test_progress_counter_only_on_a_terminal():
    add_rows(20, 8 * DAY)
    tty = TTY()
    purge_command("--batch-size", "5", stdout=tty)
    on_terminal = tty.getvalue()

    add_rows(20, 8 * DAY)
    piped = purge_command("--batch-size", "5")
    add_rows(20, 8 * DAY)
    no_progress = TTY()
    purge_command("--batch-size", "5", "--no-progress", stdout=no_progress)
    add_rows(20, 8 * DAY)
    as_json = TTY()
    purge_command("--batch-size", "5", "--json", stdout=as_json)

    assert re.search(r"\rdeleted \d+ codes \([\d,]+ rows/s\), scrubbed 0", on_terminal), on_terminal
    last_line = on_terminal.rsplit("\r", 1)[1]
    assert last_line.startswith("purged 20 codes older than 7d") and last_line.endswith("\n")
    for out in (piped, no_progress.getvalue()):
        assert "\r" not in out and out.startswith("purged 20 codes older than 7d")
    assert json.loads(as_json.getvalue())["deleted"] == 20


# -- the API the admin uses ---------------------------------------------------------------


def test_purge_api_reports_each_batch():
    add_rows(30, 8 * DAY)
    add_rows(4, timedelta(hours=3), tokens=True)
    seen = []

    report = purging.purge(batch_size=10, on_batch=lambda r: seen.append((r.deleted, r.scrubbed)))

    assert isinstance(report, purging.PurgeReport)
    assert (report.deleted, report.scrubbed, report.batches) == (30, 4, 4)
    assert seen == [(0, 4), (10, 4), (20, 4), (30, 4)]
    assert report.as_dict()["older_than_seconds"] == 604800


@pytest.mark.django_db(databases="__all__")
def test_purge_api_keeps_in_flight_rows_inside_every_batch(alias):
    """In-flight rows interleaved with expired ones, batches of 2: each DELETE and each scrub
    must spell out the in-flight rule, not only the command's first statement."""
    in_flight, expired = [], []
    for _ in range(3):
        expired += add_rows(2, 9 * DAY, using=alias)
        in_flight += add_rows(1, 9 * DAY, tokens=True, status="in_flight", using=alias)
    in_flight += add_rows(1, timedelta(hours=1), tokens=True, status="in_flight", using=alias)

    report = purging.purge(using=alias, batch_size=2)
    scrubbed = purging.scrub_tokens(timedelta(minutes=10), using=alias)

    assert (report.deleted, scrubbed) == (len(expired), 0)
    assert remaining(alias) == set(in_flight)
    assert all(holds_tokens(pk, using=alias) for pk in in_flight)


def test_purge_api_rejects_bad_arguments():
    with pytest.raises(ValueError, match="DEDUPE_WINDOW"):
        purging.purge(timedelta(seconds=20))
    with pytest.raises(ValueError, match="batch_size"):
        purging.purge(batch_size=0)
    with pytest.raises(ValueError, match="sleep"):
        purging.purge(sleep=-1)


def test_scrub_tokens_api():
    old = add_rows(2, 8 * DAY, tokens=True)
    hour = add_rows(2, timedelta(hours=1), tokens=True)
    recent = add_rows(1, timedelta(seconds=10), tokens=True)

    assert purging.scrub_tokens(dry_run=True) == 4
    assert purging.scrub_tokens(timedelta(hours=2)) == 2
    assert purging.scrub_tokens(batch_size=1) == 2

    assert not any(holds_tokens(pk) for pk in old + hour)
    assert holds_tokens(recent[0])
    assert OAuthCodeUse.objects.count() == 5  # nothing deleted
    with pytest.raises(ValueError):
        purging.scrub_tokens(timedelta(seconds=1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", "90s"),
        ("10m", "10m"),
        ("12h", "12h"),
        ("7d", "7d"),
        ("2w", "14d"),
        ("86400", "1d"),
        ("3601", "3601s"),
    ],
)
def test_duration_round_trip(text, expected):
    assert purging.format_duration(purging.parse_duration(text)) == expected


# -- beside live traffic ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_purge_beside_an_exchange_in_flight(fake_wechat, alias):
    """PostgreSQL: the holder's uncommitted row is invisible and the purge does not wait for
    it. SQLite: the holder has the database's write lock, so the purge's first write waits
    (busy timeout) until the exchange commits, then goes on. Either way the exchange is
    recorded untouched and the old rows are gone."""
    old = add_rows(20, 8 * DAY, tokens=True, using=alias)
    kept = add_rows(3, timedelta(hours=1), using=alias)
    fake_wechat.set_latency(0.5)
    code = fake_wechat.issue_code("o_in_flight")
    thread, outcomes = start_thread(partial(exchange_once, code, using=alias))
    wait_until(lambda: fake_wechat.exchange_calls(code) == 1)

    report = purge_json("--database", alias, "--batch-size", "6")
    purge_finished = timezone.now()
    thread.join(30)

    assert not thread.is_alive()
    assert [kind for kind, _ in outcomes] == ["ok"], outcomes
    assert report["deleted"] == len(old)
    row = OAuthCodeUse.objects.using(alias).get(pk=outcomes[0][1].code_use_id)
    assert row.status == "exchanged" and row.access_token  # within the window: tokens kept
    assert remaining(alias) == set(kept) | {row.pk}
    assert fake_wechat.exchange_calls(code) == 1
    if connections[alias].vendor == "postgresql":
        assert row.completed_at > purge_finished  # committed after the purge had finished


# -- the cache front and failures ---------------------------------------------------------


@pytest.mark.redis
def test_cache_counters_are_folded_before_rows_are_deleted(settings, fake_wechat, redis_alias, monkeypatch):
    from wechat_oauth.guard import cache as cache_module

    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "CACHE_ALIAS": redis_alias}
    caches[redis_alias].delete_pattern("wechat_oauth:*")
    order = []
    fold = cache_module.fold_counters
    monkeypatch.setattr(cache_module, "fold_counters", lambda *a, **k: order.append("fold") or fold(*a, **k))
    delete = purging._Run.delete
    monkeypatch.setattr(purging._Run, "delete", lambda *a, **k: order.append("delete") or delete(*a, **k))
    try:
        expiring, staying = fake_wechat.issue_code("o_expiring"), fake_wechat.issue_code("o_staying")
        expiring_id = exchange_once(expiring).code_use_id
        staying_id = exchange_once(staying).code_use_id
        for resent in (False, True):
            exchange_once(expiring, resent=resent)
            exchange_once(staying, resent=resent)
        assert set(OAuthCodeUse.objects.values_list("duplicates", flat=True)) == {0}  # in Redis
        OAuthCodeUse.objects.filter(pk=expiring_id).update(
            first_seen_at=timezone.now() - 8 * DAY, last_seen_at=timezone.now() - 8 * DAY
        )

        dry = purge_json("--dry-run")
        report = purge_json()
    finally:
        caches[redis_alias].delete_pattern("wechat_oauth:*")

    assert (dry["folded"], dry["deleted"]) == (0, 1)  # a dry run folds nothing
    assert order == ["delete", "fold", "delete"]
    assert (report["folded"], report["deleted"]) == (2, 1)
    assert remaining() == {staying_id}
    row = OAuthCodeUse.objects.get()
    assert (row.duplicates, row.resent_variant_seen) == (2, True)


def test_database_error_exits_1_with_one_line(monkeypatch):
    def broken(self, **kwargs):
        raise OperationalError(
            "server closed the connection unexpectedly\n\t"
            "This probably means the server terminated abnormally"
        )

    monkeypatch.setattr(purging._Run, "delete", broken)
    add_rows(1, 8 * DAY)

    with pytest.raises(CommandError) as raised:
        purge_command()

    assert raised.value.returncode == 1
    assert str(raised.value) == (
        "database error: server closed the connection unexpectedly "
        "This probably means the server terminated abnormally"
    )


def test_purge_of_one_app_touches_only_its_rows_and_reports_them(settings):
    settings.WECHAT_OAUTH = {
        **settings.WECHAT_OAUTH,
        "APPS": {
            "mp": {"KIND": "mp", "APP_ID": "wxtestappid0000001", "APP_SECRET": "s1"},
            "web": {"KIND": "open", "APP_ID": "wxtestweb00000001", "APP_SECRET": "s2"},
        },
    }
    add_rows(4, 2 * WEEK)
    add_rows(3, 2 * WEEK, app_id="wxtestweb00000001")
    add_rows(2, 2 * DAY, tokens=True, app_id="wxtestweb00000001")
    add_rows(5, 2 * DAY, tokens=True)

    dry = purge_json("--app", "web", "--dry-run")
    report = purge_json("--app", "web")

    assert (dry["deleted"], dry["scrubbed"], dry["app"]) == (3, 2, "web")
    assert (report["deleted"], report["scrubbed"], report["app"]) == (3, 2, "web")
    assert OAuthCodeUse.objects.filter(app_id="wxtestappid0000001").count() == 9
    assert OAuthCodeUse.objects.filter(app_id="wxtestappid0000001").exclude(access_token="").count() == 5
    assert OAuthCodeUse.objects.filter(app_id="wxtestweb00000001").count() == 2


def test_purge_of_an_app_that_is_not_configured_is_refused(settings):
    with pytest.raises(CommandError, match="no WeChat app named 'shop'") as refused:
        purge_command("--app", "shop")
    assert refused.value.returncode == 2
