"""Issue #5: what the django-redis front costs the first request and saves duplicates.

PostgreSQL + Redis on loopback, fake WeChat at 0 ms. In one run: a late duplicate's latency
and SQL with and without the front, an in-flight duplicate's wake-up after the holder commits
(with the front), and the first request's extra cost of the front.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.stats import now, summary_ms
from bench.timing import wakeup_after_commit

WARMUP = 30
ALIAS = "front"


@contextmanager
def front(enabled: bool) -> Iterator[None]:
    from django.conf import settings
    from django.test.utils import override_settings

    with override_settings(WECHAT_OAUTH={**settings.WECHAT_OAUTH, "CACHE_ALIAS": ALIAS if enabled else None}):
        yield


def timed_pair(fake: Any, label: str) -> tuple[float, float, int]:
    """(first request s, late duplicate s, SQL queries of the late duplicate) for a new code."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from wechat_oauth.guard import exchange_once

    code = fake.issue_code(label)
    started = now()
    exchange_once(code)
    first = now() - started
    with CaptureQueriesContext(connection) as queries:
        started = now()
        outcome = exchange_once(code)
        late = now() - started
    assert outcome.duplicate
    return first, late, len(queries)


def run(fake: Any, iterations: int = 400, wakeups: int = 150) -> dict[str, Any]:
    from django.core.cache import caches

    from wechat_oauth.models import OAuthCodeUse

    fake.set_latency(0)
    caches[ALIAS].delete_pattern("wechat_oauth:*")
    series: dict[bool, dict[str, list[float]]] = {
        enabled: {"first": [], "late": [], "sql": []} for enabled in (False, True)
    }
    block = 25  # alternate blocks: settings are switched outside the timed calls
    for start in range(0, WARMUP + iterations, block):
        for enabled in (False, True):
            with front(enabled):
                for i in range(start, start + block):
                    first, late, sql = timed_pair(fake, f"o_front_{enabled}_{i}")
                    if i >= WARMUP:
                        series[enabled]["first"].append(first)
                        series[enabled]["late"].append(late)
                        series[enabled]["sql"].append(sql)
    with front(True):
        wake = wakeup_after_commit(fake, wakeups, "front_wake")
    OAuthCodeUse.objects.all().delete()
    caches[ALIAS].delete_pattern("wechat_oauth:*")

    without, with_front = series[False], series[True]
    extra = round(summary_ms(with_front["first"])["p50"] - summary_ms(without["first"])["p50"], 3)
    late_front, wake_ms = summary_ms(with_front["late"]), summary_ms(wake)
    sql_front = max(with_front["sql"])
    return {
        "database": "postgresql",
        "cache": "redis (django-redis)",
        "late_duplicate_ms": {"without_front": summary_ms(without["late"]), "with_front": late_front},
        "late_duplicate_sql_queries": {"without_front": max(without["sql"]), "with_front": sql_front},
        "in_flight_duplicate_wakeup_after_commit_ms_with_front": wake_ms,
        "first_request_ms": {
            "without_front": summary_ms(without["first"]),
            "with_front": summary_ms(with_front["first"]),
        },
        "first_request_extra_cost_of_front_ms_p50": extra,
        "targets": {
            "late_duplicate_front_p50_ms_max": 1.0,
            "late_duplicate_front_sql": 0,
            "wakeup_p50_ms_max": 5.0,
            "first_request_extra_p50_ms_max": 0.5,
        },
        "targets_met": (
            late_front["p50"] <= 1.0 and sql_front == 0 and wake_ms["p50"] <= 5.0 and extra <= 0.5
        ),
    }
