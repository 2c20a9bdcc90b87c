"""Helpers shared by suites that time a holder and a waiting duplicate of one code."""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.stats import now


def commit_stamping_client(stamps: dict[str, float]) -> Any:
    """A WeChatClient that notes the instant the holder's transaction commits.

    ``transaction.on_commit`` callbacks run in registration order right after the commit; this
    one is registered during the upstream call, so it runs before anything the guard registers
    after the call (such as the cache front's publication).
    """
    from django.db import transaction

    from wechat_oauth.client import WeChatClient

    class CommitStampingClient(WeChatClient):
        def exchange_code(self, code: str):  # type: ignore[no-untyped-def]
            result = super().exchange_code(code)
            transaction.on_commit(lambda: stamps.__setitem__(code, now()))
            return result

    return CommitStampingClient()


def wakeup_after_commit(fake: Any, rounds: int, label: str) -> list[float]:
    """Seconds from the holder's commit to a waiting duplicate's answer, ``rounds`` times."""
    from django.db import connections

    from wechat_oauth.guard import exchange_once

    stamps: dict[str, float] = {}
    stamping = commit_stamping_client(stamps)
    fake.set_latency(0.02)  # long enough for the duplicate to be waiting
    samples: list[float] = []
    try:
        for i in range(rounds):
            code = fake.issue_code(f"o_{label}_{i}")

            def holder(code: str = code) -> None:
                try:
                    exchange_once(code, client=stamping)
                finally:
                    connections.close_all()

            thread = threading.Thread(target=holder)
            thread.start()
            while fake.exchange_calls(code) == 0:
                time.sleep(0.0005)
            result = exchange_once(code)
            answered = now()
            thread.join()
            assert result.duplicate, "the duplicate did not reuse the exchange"
            samples.append(answered - stamps[code])
    finally:
        fake.set_latency(0)
    return samples
