"""Entry points of the OS processes the concurrency tests spawn (importable, picklable)."""

from __future__ import annotations

import os
from typing import Any

from tests.concurrency import outcome_of, setup_django_in_child


def exchange_after_barrier(barrier: Any, queue: Any, database: dict[str, Any],
                           wechat_oauth: dict[str, Any], code: str,
                           caches: dict[str, Any] | None = None) -> None:
    """Set up Django, wait for the others, call exchange_once(code), report the outcome."""
    setup_django_in_child(database, wechat_oauth, caches)
    from wechat_oauth.guard import exchange_once

    barrier.wait()
    kind, value = outcome_of(lambda: exchange_once(code))
    queue.put((os.getpid(), kind, value))

