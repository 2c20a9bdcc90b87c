"""purge_oauth_codes on PostgreSQL: rows deleted per second and the purge process's peak RSS.

Two separate loads, ``rows // 10`` and ``rows`` expired rows (first seen 8 days ago, tokens
long scrubbed) below ``live`` recent rows (the last 6 days; 100 of them past the dedupe window
still holding tokens, 100 within it). Each purge runs as its own child process,
``python -m django purge_oauth_codes --json`` with ``DJANGO_SETTINGS_MODULE=bench.settings``;
its peak RSS comes from ``os.wait4``. Afterwards exactly the live rows must remain, the 100
past the window scrubbed and the 100 within it untouched. The fake WeChat is not used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
#: Live rows holding tokens: this many past the dedupe window (to scrub), as many within it.
WITH_TOKENS = 100

# Every NOT NULL column of OAuthCodeUse (Django sets no database defaults), then the times.
INSERT = """
INSERT INTO {table} (app_id, code_hash, state_hash, status, openid, unionid, scope,
    is_snapshot_user, access_token, refresh_token, profile, error, errmsg, request_id,
    duplicates, resent_variant_seen, max_gap_ms, exchange_ms,
    first_seen_at, last_seen_at, completed_at, access_token_expires_at, refresh_token_expires_at,
    fingerprint, session_key)
SELECT 'wxbench', %(prefix)s || lpad(g::text, 63, '0'), '', 'exchanged', 'o_bench_' || g, '',
    'snsapi_base', false, {token}, {token}, {profile}, '', '', '', 0, false, 0, 120,
    t, t, t + interval '120 milliseconds', t + interval '2 hours', t + interval '30 days',
    md5('bench-browser'), ''
FROM generate_series(1, %(count)s) AS g,
    LATERAL (SELECT %(newest)s::timestamptz - (%(count)s - g) * %(step)s::interval AS t) AS at
"""


def run(fake: Any = None, rows: int = 1_000_000, live: int = 10_000, **_: Any) -> dict[str, Any]:
    from django.db import connection

    from wechat_oauth.models import OAuthCodeUse

    assert connection.vendor == "postgresql", "the purge bench needs PostgreSQL"
    assert live >= 2 * WITH_TOKENS
    table = connection.ops.quote_name(OAuthCodeUse._meta.db_table)
    runs = {}
    for expired in (rows // 10, rows):
        load_seconds = load(table, expired, live)
        runs[f"{expired}_expired"] = {
            "load_seconds": load_seconds,
            **purge_in_child(),
            **check_survivors(table, live),
        }
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table} RESTART IDENTITY")
    baseline = purge_in_child()["peak_rss_mb"]  # an empty table: Python, Django, psycopg

    small, large = runs[f"{rows // 10}_expired"], runs[f"{rows}_expired"]
    rss_growth = round(large["peak_rss_mb"] / small["peak_rss_mb"], 3)
    slowest = min(small["rows_per_second"], large["rows_per_second"])
    met = (
        slowest >= 100_000
        and large["peak_rss_mb"] < 150
        and rss_growth <= 1.1
        and small["live_rows_intact"]
        and large["live_rows_intact"]
    )
    return {
        "database": "postgresql",
        "live_rows": live,
        "batch_size": 10_000,
        "peak_rss_mb_nothing_to_purge": baseline,
        "runs": runs,
        "peak_rss_growth_10x_rows": rss_growth,
        "targets": {
            "rows_per_second_min": 100_000,
            "peak_rss_mb_max": 150,
            "peak_rss_growth_10x_rows_max": 1.1,
        },
        "targets_met": met,
    }


def load(table: str, expired: int, live: int) -> float:
    """An emptied table, then ``expired`` rows (8 days old, lowest ids) and ``live`` rows.
    Returns the seconds it took."""
    from django.db import connection
    from django.utils import timezone

    plain = {"token": "''", "profile": "NULL"}
    held = {"token": "'bench-token'", "profile": """'{"nickname": "bench"}'::jsonb"""}
    spread_ms = 6 * 24 * 3600 * 1000 // (live - 2 * WITH_TOKENS)
    batches = [
        # (columns, code_hash prefix, count, age of the newest row, step between rows)
        (plain, "e", expired, timedelta(days=8), "1 millisecond"),
        (plain, "l", live - 2 * WITH_TOKENS, timedelta(minutes=2), f"{spread_ms} milliseconds"),
        (held, "s", WITH_TOKENS, timedelta(seconds=70), "100 milliseconds"),  # to scrub
        (held, "w", WITH_TOKENS, timedelta(seconds=1), "200 milliseconds"),  # within the window
    ]
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table} RESTART IDENTITY")
        for columns, prefix, count, age, step in batches:
            cursor.execute(
                INSERT.format(table=table, **columns),
                {"prefix": prefix, "count": count, "newest": timezone.now() - age, "step": step},
            )
        cursor.execute(f"VACUUM ANALYZE {table}")  # as autovacuum would have, long ago
        cursor.execute("CHECKPOINT")
    return round(time.monotonic() - started, 1)


def purge_in_child() -> dict[str, Any]:
    """Run the command in a child process: its JSON report, wall time and peak RSS.
    (--skip-checks: bench.settings is no complete site, see ``manage.py check``.)"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    command = [
        sys.executable,
        "-m",
        "django",
        "purge_oauth_codes",
        "--json",
        "--no-progress",
        "--skip-checks",
    ]
    report, wall, rss_mb = _child(command, env)
    return {
        "deleted": report["deleted"],
        "scrubbed": report["scrubbed"],
        "batches": report["batches"],
        "seconds": report["seconds"],
        "rows_per_second": report["rows_per_second"],
        "child_wall_seconds": wall,
        "peak_rss_mb": rss_mb,
    }


def _child(command: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float, float]:
    with tempfile.TemporaryFile() as errors:
        started = time.monotonic()
        child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=errors)
        assert child.stdout is not None
        out = child.stdout.read()
        # wait4 reports this child's own peak RSS (RUSAGE_CHILDREN would be the max so far).
        _, status, usage = os.wait4(child.pid, 0)
        wall = round(time.monotonic() - started, 2)
        child.returncode = os.waitstatus_to_exitcode(status)
        child.stdout.close()
        if child.returncode != 0:
            errors.seek(0)
            raise RuntimeError(
                f"{' '.join(command[2:])} exited {child.returncode}: "
                f"{errors.read().decode(errors='replace').strip()}"
            )
    return json.loads(out), wall, round(usage.ru_maxrss / 1024, 1)  # Linux: ru_maxrss is in KiB


def check_survivors(table: str, live: int) -> dict[str, Any]:
    """Exactly the live rows remain; the right ones had their tokens scrubbed."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), count(*) FILTER (WHERE left(code_hash, 1) = 'e'),"
            f" count(*) FILTER (WHERE access_token <> '' AND left(code_hash, 1) = 'w'),"
            f" count(*) FILTER (WHERE access_token <> '' OR refresh_token <> ''"
            f" OR profile IS NOT NULL) FROM {table}"
        )
        total, expired_left, fresh_with_tokens, with_tokens = cursor.fetchone()
    intact = (
        total == live
        and expired_left == 0
        and fresh_with_tokens == WITH_TOKENS
        and with_tokens == WITH_TOKENS
    )
    assert intact, (total, expired_left, fresh_with_tokens, with_tokens)
    return {"rows_left": total, "live_rows_intact": intact}
