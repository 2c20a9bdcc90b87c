"""Entry points of the OS processes the concurrency tests spawn (importable, picklable)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from tests.concurrency import outcome_of, setup_django_in_child


def _report(queue: Any, kind: str, value: Any) -> None:
    """Put this process's report on the parent's queue: (pid, kind, value)."""
    queue.put((os.getpid(), kind, value))


def _call_after_barrier(barrier: Any, queue: Any, call: Callable[[], Any]) -> None:
    """Wait for the others, call ``call`` and report its outcome: ("ok", value) or ("error",
    the exception)."""
    barrier.wait()
    _report(queue, *outcome_of(call))


def exchange_after_barrier(
    barrier: Any,
    queue: Any,
    database: dict[str, Any],
    wechat_oauth: dict[str, Any],
    code: str,
    caches: dict[str, Any] | None = None,
) -> None:
    """Set up Django, wait for the others, call exchange_once(code), report the outcome."""
    setup_django_in_child(database, wechat_oauth, caches)
    from wechat_oauth.guard import exchange_once

    _call_after_barrier(barrier, queue, lambda: exchange_once(code))


def mixed_exchanges_after_barrier(
    barrier: Any,
    queue: Any,
    database: dict[str, Any],
    wechat_oauth: dict[str, Any],
    code: str,
    caches: dict[str, Any] | None = None,
    tasks: int = 4,
) -> None:
    """Set up Django, wait for the others, then exchange ``code`` from ``tasks`` concurrent
    async callers (aexchange_once, one event loop) and one sync caller (exchange_once, in a
    thread) at once; report every outcome as one list."""
    import asyncio

    setup_django_in_child(database, wechat_oauth, caches)
    from wechat_oauth.guard import aexchange_once, exchange_once

    async def together() -> list[Any]:
        async def one_async() -> tuple[str, Any]:
            try:
                return ("ok", await aexchange_once(code))
            except Exception as error:  # the outcome under test may be an error
                return ("error", error)

        sync = asyncio.to_thread(outcome_of, lambda: exchange_once(code))
        return list(await asyncio.gather(sync, *(one_async() for _ in range(tasks))))

    barrier.wait()
    _report(queue, "ok", asyncio.run(together()))


def link_after_barrier(
    barrier: Any,
    queue: Any,
    database: dict[str, Any],
    wechat_oauth: dict[str, Any],
    app_name: str,
    openid: str,
    unionid: str,
) -> None:
    """Set up Django, wait for the others, link (app, openid, unionid) as a first login does,
    report the user's pk."""
    setup_django_in_child(database, wechat_oauth)
    from django.utils import timezone

    from wechat_oauth.identity import link_account
    from wechat_oauth.registry import get_app
    from wechat_oauth.results import TokenResult

    now = timezone.now()
    token = TokenResult(
        access_token="a",
        refresh_token="r",
        openid=openid,
        scope="snsapi_base",
        expires_at=now,
        refresh_expires_at=now,
        unionid=unionid,
    )
    _call_after_barrier(barrier, queue, lambda: link_account(token, app=get_app(app_name))[0].user_id)


def app_call_after_barrier(
    barrier: Any,
    queue: Any,
    database: dict[str, Any],
    wechat_oauth: dict[str, Any],
    app_name: str,
    code: str | None,
    caches: dict[str, Any] | None = None,
) -> None:
    """Set up Django, wait for the others; then exchange ``code`` through app ``app_name``'s
    client (reporting the identity), or, with no code, ask for the app's access token
    (WeCom; reporting the token). Reports (pid, kind, value)."""
    setup_django_in_child(database, wechat_oauth, caches)
    from wechat_oauth.client import get_client
    from wechat_oauth.guard import exchange_once

    client = get_client(app_name)
    if code is None:
        _call_after_barrier(barrier, queue, client.access_token)  # type: ignore[attr-defined]
    else:
        _call_after_barrier(barrier, queue, lambda: exchange_once(code, client=client).token.openid)
