"""The claim's transaction: open while WeChat is asked, on its own, and leaving nothing behind.

The fence is the uncommitted ``OAuthCodeUse`` row (see ``wechat_oauth/guard/database.py``).
These tests pin the three properties that make it a fence, each observed from outside the
holder rather than read off the code:

* the row is **not committed while the upstream call is in progress** (a second connection sees
  nothing), so a twin waits inside the database instead of reading an ``in_flight`` row;
* the claim **commits on its own**: inside a caller's transaction it is refused before the code
  is spent, instead of holding the fence until the caller's block ends;
* the claim's wait bounds (PostgreSQL ``lock_timeout``, ``idle_in_transaction_session_timeout``)
  **end with the claim**: the next, unrelated transaction on that connection runs with the
  connection's own settings.
"""

from __future__ import annotations

from functools import partial

import pytest
from django.db import connections, transaction

from tests.concurrency import start_thread, wait_until
from wechat_oauth.exceptions import CodeSpent
from wechat_oauth.guard import exchange_once
from wechat_oauth.models import OAuthCodeUse

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def test_no_row_is_committed_while_wechat_is_being_asked(fake_wechat, alias):
    fake_wechat.set_latency(0.5)
    code = fake_wechat.issue_code("o_uncommitted")
    holder, outcomes = start_thread(partial(exchange_once, code, using=alias))
    wait_until(lambda: fake_wechat.exchange_calls(code) == 1)

    rows_seen_meanwhile = OAuthCodeUse.objects.using(alias).count()  # this thread's own connection
    holder.join(10)

    assert rows_seen_meanwhile == 0, "the claim committed its row before WeChat answered"
    assert outcomes[0][0] == "ok", outcomes
    assert OAuthCodeUse.objects.using(alias).get().status == OAuthCodeUse.Status.EXCHANGED


def test_exchange_inside_a_callers_transaction_is_refused_before_the_code_is_spent(fake_wechat, alias):
    """Nested in the caller's block, the fence row would stay uncommitted (and every twin
    waiting) until the caller's whole block ends. Django's durable atomic refuses instead."""
    code = fake_wechat.issue_code("o_nested")

    with pytest.raises(RuntimeError, match="durable"), transaction.atomic(using=alias):
        exchange_once(code, using=alias)

    assert fake_wechat.exchange_calls(code) == 0
    assert not OAuthCodeUse.objects.using(alias).exists()
    assert exchange_once(code, using=alias).token.openid == "o_nested"  # the code is still good


#: The claim's two bounds, as each database server names them (session-wide on MariaDB).
WAIT_BOUNDS = {
    "postgresql": (
        "current_setting('lock_timeout')",
        "current_setting('idle_in_transaction_session_timeout')",
    ),
    "mysql": ("@@SESSION.innodb_lock_wait_timeout", "@@SESSION.wait_timeout"),
}


def wait_bounds(alias: str) -> tuple[str, ...]:
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(WAIT_BOUNDS[connection.vendor]))
        return tuple(str(value) for value in cursor.fetchone())


@pytest.mark.parametrize(
    "fault", [None, {"errcode": 40163, "errmsg": "code been used"}], ids=["exchanged", "failed"]
)
def test_wait_bounds_end_with_the_claim(fake_wechat, server_alias, settings, fault):
    """PostgreSQL sets them with set_config(..., is_local => true), MariaDB for the session and
    puts the old values back: they must not outlive the claim's transaction on the worker's
    connection (nor, behind PgBouncer's transaction pooling, leak into another client's)."""
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "WAIT_TIMEOUT": 3.25}
    code = fake_wechat.issue_code("o_bounded")
    if fault:
        fake_wechat.add_fault("access_token", **fault)
    before = wait_bounds(server_alias)
    assert "3250ms" not in before and "4" not in before

    try:
        exchange_once(code, using=server_alias)
    except CodeSpent:
        assert fault
    after = wait_bounds(server_alias)

    assert after == before
    assert OAuthCodeUse.objects.using(server_alias).get().status == ("failed" if fault else "exchanged")
