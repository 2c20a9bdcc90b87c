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



def link_after_barrier(barrier: Any, queue: Any, database: dict[str, Any],
                       wechat_oauth: dict[str, Any], app_name: str, openid: str,
                       unionid: str) -> None:
    """Set up Django, wait for the others, link (app, openid, unionid) as a first login does,
    report the user's pk."""
    setup_django_in_child(database, wechat_oauth)
    from django.utils import timezone

    from wechat_oauth.identity import link_account
    from wechat_oauth.registry import get_app
    from wechat_oauth.results import TokenResult

    now = timezone.now()
    token = TokenResult(access_token="a", refresh_token="r", openid=openid, scope="snsapi_base",
                        expires_at=now, refresh_expires_at=now, unionid=unionid)
    barrier.wait()
    kind, value = outcome_of(lambda: link_account(token, app=get_app(app_name))[0].user_id)
    queue.put((os.getpid(), kind, value))


def app_call_after_barrier(barrier: Any, queue: Any, database: dict[str, Any],
                           wechat_oauth: dict[str, Any], app_name: str, code: str | None,
                           caches: dict[str, Any] | None = None) -> None:
    """Set up Django, wait for the others; then exchange ``code`` through app ``app_name``'s
    client (reporting the identity), or, with no code, ask for the app's access token
    (WeCom; reporting the token). Reports (pid, kind, value)."""
    setup_django_in_child(database, wechat_oauth, caches)
    from wechat_oauth.client import get_client
    from wechat_oauth.guard import exchange_once

    client = get_client(app_name)
    barrier.wait()
    if code is None:
        kind, value = outcome_of(client.access_token)  # type: ignore[attr-defined]
    else:
        kind, value = outcome_of(lambda: exchange_once(code, client=client).token.openid)
    queue.put((os.getpid(), kind, value))
