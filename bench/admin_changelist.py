"""The OAuthCodeUse admin change list at a million rows: SQL queries and render time per page.

PostgreSQL. A million rows loaded in one ``INSERT ... SELECT generate_series`` over the last
7 days (in time order, as a live table fills), ~5% with duplicates, ~1% failed (half with a
WeChat errcode, half timeouts), 200,000 distinct openids; then VACUUM ANALYZE, as autovacuum
would. A superuser renders, with the test Client, the first page, filtered pages, a search
and the date-hierarchy drill-down (month level, then day level). Each page is also rendered a
few times with the admin's large-table settings switched back to Django's defaults, to show
what they save.

The summary above the list is cached for a minute, so the timed renders (after two warm-up
renders) do not pay for it; ``summary_uncached`` is its one query alone, which a render pays
once a minute (and every time with Django's defaults).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from bench.stats import now, summary_ms

WARMUP = 2
URL = "/admin/wechat_oauth/oauthcodeuse/"

LOAD_SQL = """
INSERT INTO wechat_oauth_oauthcodeuse (
    app_id, code_hash, state_hash, status, openid, unionid, scope, is_snapshot_user,
    access_token, refresh_token, profile, access_token_expires_at, refresh_token_expires_at,
    error, errcode, errmsg, request_id, duplicates, resent_variant_seen, max_gap_ms,
    first_seen_at, last_seen_at, completed_at, exchange_ms, fingerprint, session_key)
SELECT
    'wxbench', md5(i::text) || md5((-i)::text), '',
    CASE WHEN failed THEN 'failed' ELSE 'exchanged' END,
    CASE WHEN failed THEN '' ELSE 'o_' || (i %% 200000) END,
    CASE WHEN failed THEN '' ELSE 'u_' || (i %% 200000) END,
    CASE WHEN failed THEN '' ELSE 'snsapi_base' END, false,
    '', '', NULL,
    CASE WHEN failed THEN NULL ELSE at + interval '2 hours' END,
    CASE WHEN failed THEN NULL ELSE at + interval '30 days' END,
    CASE WHEN NOT failed THEN '' WHEN i %% 200 = 50 THEN 'spent' ELSE 'timeout' END,
    CASE WHEN failed AND i %% 200 = 50 THEN 40163 END,
    CASE WHEN NOT failed THEN '' WHEN i %% 200 = 50 THEN 'code been used' ELSE 'read timed out' END,
    CASE WHEN failed AND i %% 200 = 50 THEN 'rid-' || md5(i::text) ELSE '' END,
    CASE WHEN dup THEN 1 + i %% 3 ELSE 0 END,
    dup AND i %% 3 = 0,
    CASE WHEN dup THEN i %% 4000 ELSE 0 END,
    at, at + CASE WHEN dup THEN (i %% 4000) * interval '1 millisecond' ELSE interval '0' END,
    at + interval '120 milliseconds', 60 + i %% 250, md5((i %% 5000)::text), ''
FROM (
    SELECT i, i %% 100 = 50 AS failed, i %% 20 = 1 AS dup,
           %(start)s + (i - 1) * (%(span)s / %(rows)s) AS at
    FROM generate_series(1, %(rows)s) AS i
) AS generated
"""


def load(rows: int) -> float:
    """Empty the table, load ``rows`` code uses, VACUUM ANALYZE; seconds taken."""
    from django.db import connection
    from django.utils import timezone

    started = now()
    span = timedelta(days=7) - timedelta(minutes=1)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE wechat_oauth_oauthcodeuse")
        cursor.execute(LOAD_SQL, {"start": timezone.now() - span, "span": span, "rows": rows})
        cursor.execute("VACUUM ANALYZE wechat_oauth_oauthcodeuse")
    return now() - started


def pages(rows: int) -> dict[str, str]:
    """Query strings of the measured pages, named."""
    from django.utils import timezone

    from wechat_oauth.models import OAuthCodeUse

    newest = OAuthCodeUse.objects.order_by("-first_seen_at").values_list("first_seen_at", flat=True)[0]
    day = timezone.localtime(newest) - timedelta(days=1)
    month = f"first_seen_at__year={day.year}&first_seen_at__month={day.month}"
    # The "Past 7 days" link of DateFieldListFilter.
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    past_7_days = urlencode(
        {
            "first_seen_at__gte": str(today - timedelta(days=7)),
            "first_seen_at__lt": str(today + timedelta(days=1)),
        }
    )
    return {
        "first_page": "",
        "filter_failed": "status__exact=failed",
        "filter_has_duplicates": "has_duplicates=yes",
        "filter_past_7_days": past_7_days,
        "search_openid": f"q=o_{rows // 3 % 200000}",
        "date_hierarchy_month": month,
        "date_hierarchy_day": f"{month}&first_seen_at__day={day.day}",
    }


@contextmanager
def django_defaults() -> Iterator[None]:
    """The code-use admin as Django would have it: exact counts (filtered and full), facets
    allowed, Django's date hierarchy (SELECT DISTINCT date_trunc), summary not cached."""
    from django.contrib import admin
    from django.contrib.admin.views.main import ChangeList
    from django.core.paginator import Paginator

    from wechat_oauth.admin import OAuthCodeUseAdmin

    names = ("paginator", "show_full_result_count", "show_facets", "summary_cache_timeout", "get_changelist")
    saved = {name: OAuthCodeUseAdmin.__dict__[name] for name in names}
    OAuthCodeUseAdmin.paginator = Paginator
    OAuthCodeUseAdmin.show_full_result_count = True
    OAuthCodeUseAdmin.show_facets = admin.ShowFacets.ALLOW
    OAuthCodeUseAdmin.summary_cache_timeout = 0
    OAuthCodeUseAdmin.get_changelist = lambda self, request, **kwargs: ChangeList
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(OAuthCodeUseAdmin, name, value)


def measure(client: Any, query: str, renders: int) -> dict[str, Any]:
    """Render ``URL?query`` ``renders`` times: time, SQL count and the slowest statement.

    The counts include the session and user lookups of every admin request (2 queries).
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    samples: list[float] = []
    counts: set[int] = set()
    slowest: tuple[float, str] = (0.0, "")
    for i in range(WARMUP + renders):
        with CaptureQueriesContext(connection) as captured:
            started = now()
            response = client.get(f"{URL}?{query}" if query else URL)
            elapsed = now() - started
        assert response.status_code == 200, (query, response.status_code)
        if i < WARMUP:
            continue
        samples.append(elapsed)
        counts.add(len(captured))
        for q in captured.captured_queries:
            if float(q["time"]) > slowest[0]:
                slowest = (float(q["time"]), q["sql"])
    return {
        "sql_queries": sorted(counts)[0] if len(counts) == 1 else sorted(counts),
        "render_ms": summary_ms(samples),
        "slowest_query_ms": round(slowest[0] * 1000, 1),
        "slowest_query": slowest[1][:160],
    }


def summary_query(renders: int) -> dict[str, Any]:
    """The summary's one aggregate query, uncached (what a render pays once a minute)."""
    from wechat_oauth.admin import code_use_summary
    from wechat_oauth.models import OAuthCodeUse

    samples: list[float] = []
    for _i in range(renders):
        started = now()
        figures = code_use_summary(OAuthCodeUse.objects.all())
        samples.append(now() - started)
    return {"ms": summary_ms(samples), "figures": {k: v for k, v in figures.items() if k != "as_of"}}


def run(
    fake: Any = None, rows: int = 1_000_000, renders: int = 20, baseline_renders: int = 5, **_: Any
) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    load_s = load(rows)
    user = get_user_model().objects.create_superuser("bench-admin", "admin@example.com", "x")
    client = Client()
    client.force_login(user)
    try:
        named = pages(rows)
        tuned = {name: measure(client, query, renders) for name, query in named.items()}
        summary = summary_query(baseline_renders)
        with django_defaults():
            defaults = {name: measure(client, query, baseline_renders) for name, query in named.items()}
    finally:
        user.delete()
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE wechat_oauth_oauthcodeuse")
    worst_p50 = max(page["render_ms"]["p50"] for page in tuned.values())
    most_sql = max(
        max(page["sql_queries"]) if isinstance(page["sql_queries"], list) else page["sql_queries"]
        for page in tuned.values()
    )
    return {
        "database": connection.vendor,
        "rows": rows,
        "load_s": round(load_s, 1),
        "pages": tuned,
        "summary_uncached": summary,
        "pages_with_django_defaults": defaults,
        "targets": {"render_p50_ms_max": 150.0, "sql_queries_max": 8},
        "targets_met": worst_p50 <= 150.0 and most_sql <= 8,
    }
