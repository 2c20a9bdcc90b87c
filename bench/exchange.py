"""Issue #3: the cost of exchange_once over a bare exchange, and how fast a waiting duplicate
is answered once the first request commits. PostgreSQL, fake WeChat at 0 ms latency."""

from __future__ import annotations

from typing import Any

from bench.stats import now, summary_ms
from bench.timing import wakeup_after_commit

WARMUP = 30


def run(fake: Any, iterations: int = 400, wakeups: int = 150) -> dict[str, Any]:
    from django.db import connections

    from wechat_oauth.client import get_client
    from wechat_oauth.guard import exchange_once
    from wechat_oauth.models import OAuthCodeUse

    fake.set_latency(0)
    client = get_client()
    bare: list[float] = []
    guarded: list[float] = []
    for i in range(WARMUP + iterations):
        # Interleaved, so drift of the machine hits both series alike.
        code = fake.issue_code(f"o_bare_{i}")
        started = now()
        client.exchange_code(code)
        bare_s = now() - started
        code = fake.issue_code(f"o_once_{i}")
        started = now()
        exchange_once(code)
        guarded_s = now() - started
        if i >= WARMUP:
            bare.append(bare_s)
            guarded.append(guarded_s)

    wake = wakeup_after_commit(fake, wakeups, "wake")
    OAuthCodeUse.objects.all().delete()

    bare_ms, guarded_ms = summary_ms(bare), summary_ms(guarded)
    overhead_p50 = round(guarded_ms["p50"] - bare_ms["p50"], 3)
    wake_ms = summary_ms(wake)
    return {
        "database": connections["default"].vendor,
        "fake_latency_ms": 0,
        "bare_exchange_code_ms": bare_ms,
        "exchange_once_ms": guarded_ms,
        "overhead_ms": {"p50": overhead_p50, "p99": round(guarded_ms["p99"] - bare_ms["p99"], 3)},
        "overhead_ratio_p50": round(guarded_ms["p50"] / bare_ms["p50"], 3),
        "waiting_duplicate_wakeup_after_commit_ms": wake_ms,
        "targets": {"overhead_p50_ms_max": 2.0, "wakeup_p50_ms_max": 5.0},
        "targets_met": overhead_p50 <= 2.0 and wake_ms["p50"] <= 5.0,
    }
