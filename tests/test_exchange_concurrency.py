"""Exactly once under real concurrency: threads and OS processes on one code, a killed holder,
wait bounds, deadlocked waiters. One suite, parametrised over every database of the run
(SQLite as Django creates it, PostgreSQL, MariaDB; ``alias``), or over the database servers
where SQLite has no equivalent (``server_alias``).

The fake WeChat answers after >= 300 ms, so every duplicate really waits for the first
exchange. Results are compared, never timed.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from functools import partial

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests import workers
from tests.concurrency import run_in_threads, start_processes, start_thread, wait_until
from wechat_oauth.client import WeChatClient, get_client
from wechat_oauth.exceptions import (
    CodeSpent,
    ExchangeWaitTimeout,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from wechat_oauth.guard import exchange_once
from wechat_oauth.guard.database import Claim, DatabaseGuard
from wechat_oauth.hashing import code_hash
from wechat_oauth.models import OAuthCodeUse

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

LATENCY = 0.3


def assert_one_exchange_shared(results, fake, code):
    assert fake.exchange_calls(code) == 1
    kinds = {kind for kind, _ in results}
    assert kinds == {"ok"}, [value for kind, value in results if kind == "error"]
    tokens = {value.token for _, value in results}
    assert len(tokens) == 1
    assert sum(not value.duplicate for _, value in results) == 1


def test_sixteen_threads_on_one_code_make_one_upstream_call(fake_wechat, alias):
    fake_wechat.set_latency(LATENCY)
    code = fake_wechat.issue_code("o_threads")

    results = run_in_threads(16, partial(exchange_once, code, using=alias))

    assert_one_exchange_shared(results, fake_wechat, code)
    row = OAuthCodeUse.objects.using(alias).get()
    assert row.duplicates == 15
    assert row.max_gap_ms >= 0


def database_for_children(alias):
    return dict(connections[alias].settings_dict)


def test_six_processes_on_one_code_make_one_upstream_call(fake_wechat, alias, settings):
    fake_wechat.set_latency(LATENCY)
    code = fake_wechat.issue_code("o_processes")

    group = start_processes(
        6, workers.exchange_after_barrier, database_for_children(alias), settings.WECHAT_OAUTH, code
    )
    reports = group.collect()
    results = [(kind, value) for _, kind, value in reports]

    assert {pid for pid, _, _ in reports} == set(group.pids) and len(group.pids) == 6
    assert_one_exchange_shared(results, fake_wechat, code)
    assert OAuthCodeUse.objects.using(alias).get().duplicates == 5


def test_holder_that_rolls_back_under_several_waiters_leaves_one_exchange_for_all(fake_wechat, alias):
    """The holder fails before WeChat saw the code (its claim is released) while three twins
    wait on its row. InnoDB lets one INSERT through and ends the others in a deadlock (1213);
    they claim again and replay. Every database: one exchange, everyone the same answer."""
    code = fake_wechat.issue_code("o_rolled_back")
    gate = threading.Event()
    refusing = WeChatClient()

    def refused(code):
        assert gate.wait(10)
        raise UpstreamUnavailable("Could not connect to WeChat", request_sent=False)

    refusing.exchange_code = refused
    fake_wechat.set_latency(LATENCY)
    holder, holder_outcome = start_thread(partial(exchange_once, code, client=refusing, using=alias))
    time.sleep(0.2)  # the holder has claimed the code
    waiters = [start_thread(partial(exchange_once, code, using=alias)) for _ in range(3)]
    time.sleep(0.3)  # the waiters are blocked on the holder's row
    gate.set()
    for thread, _ in [(holder, None), *waiters]:
        thread.join(30)

    assert isinstance(holder_outcome[0][1], UpstreamUnavailable)
    assert_one_exchange_shared([outcomes[0] for _, outcomes in waiters], fake_wechat, code)


def test_killed_holder_lets_waiting_duplicates_finish_without_two_live_exchanges(
    fake_wechat, alias, settings
):
    code = fake_wechat.issue_code("o_killed")
    # Only the holder's request is slow (WeChat spends the code on receipt, answers after 3 s):
    # a global latency lowered for the duplicates could release the holder too, if its request
    # had not yet begun its wait.
    fake_wechat.add_fault("access_token", delay=3.0, code=code)
    holder = start_processes(
        1, workers.exchange_after_barrier, database_for_children(alias), settings.WECHAT_OAUTH, code
    )
    wait_until(lambda: fake_wechat.exchange_calls(code) == 1)

    # Duplicates arrive while the holder waits for WeChat; they block in the database.
    duplicates = [start_thread(partial(exchange_once, code, using=alias)) for _ in range(3)]
    time.sleep(0.3)
    calls_before_kill = fake_wechat.exchange_calls(code)
    os.kill(holder.pids[0], signal.SIGKILL)
    killed_at = time.monotonic()
    for thread, _ in duplicates:
        thread.join(30)
    waiting = [outcome for _, outcomes in duplicates for outcome in outcomes]

    assert calls_before_kill == 1, "a duplicate called WeChat while the holder was alive"
    assert len(waiting) == 3
    # The fake spent the code when the dead holder's request arrived: one takeover call, and
    # every duplicate is told to restart the login.
    assert fake_wechat.exchange_calls(code) == 2
    assert all(isinstance(value, CodeSpent) for kind, value in waiting), waiting
    assert time.monotonic() - killed_at < 10
    row = OAuthCodeUse.objects.using(alias).get()
    assert (row.status, row.errcode, row.duplicates) == ("failed", 40163, 2)


def test_duplicate_waits_no_longer_than_the_wait_timeout(fake_wechat, server_alias, settings):
    """MariaDB counts whole seconds: 0.5 s becomes 1 s there."""
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "WAIT_TIMEOUT": 0.5, "TIMEOUT": (1, 5)}
    fake_wechat.set_latency(2.5)
    code = fake_wechat.issue_code("o_patient")

    results = run_in_threads(2, partial(exchange_once, code, using=server_alias))

    kinds = sorted(type(value).__name__ for _, value in results)
    assert kinds == ["Exchange", "ExchangeWaitTimeout"]
    assert fake_wechat.exchange_calls(code) == 1
    assert any(isinstance(value, ExchangeWaitTimeout) for _, value in results)


def test_holder_stuck_past_its_hold_limit_is_cut_off_and_a_duplicate_takes_over(
    fake_wechat, server_alias, settings
):
    """The database ends a holder's transaction after client timeout + margin (MariaDB: the
    session's wait_timeout, whole seconds)."""
    settings.WECHAT_OAUTH = {
        **settings.WECHAT_OAUTH,
        "TIMEOUT": (0.2, 0.2),
        "EXCHANGE_MARGIN": 0.1,
        "WAIT_TIMEOUT": 5,
    }
    code = fake_wechat.issue_code("o_stuck")
    client_calls = []

    def stuck_call():
        client_calls.append("stuck")
        time.sleep(1.5)  # past the hold limit (0.5 s), as a trickling answer could be
        raise UpstreamTimeout("WeChat answered too slowly")

    def guarded(call):
        return DatabaseGuard(server_alias).exchange(
            call,
            Claim(
                app_id=settings.WECHAT_OAUTH["APP_ID"],
                code_hash=code_hash(code),
                state_hash="",
                resent=False,
                arrival=timezone.now(),
            ),
        )

    holder, holder_outcome = start_thread(partial(guarded, stuck_call))
    wait_until(lambda: client_calls)
    takeover_thread, takeover = start_thread(partial(guarded, lambda: get_client().exchange_code(code)))
    takeover_thread.join(10)
    holder.join(10)

    assert takeover[0][0] == "ok" and takeover[0][1].token.openid == "o_stuck"
    assert holder_outcome[0][0] == "error"


#: A duplicate that waits: BEGIN, INSERT (waits, then conflicts), ROLLBACK,
#: SELECT of the committed row, UPDATE of the counters.
WAITING_DUPLICATE_QUERIES = {"postgresql": 5, "sqlite": 5, "mysql": 7}


def test_waiting_duplicate_query_count(fake_wechat, alias):
    fake_wechat.set_latency(LATENCY)
    code = fake_wechat.issue_code("o_counted")
    holder, _ = start_thread(partial(exchange_once, code, using=alias))
    wait_until(lambda: fake_wechat.exchange_calls(code) == 1)

    with CaptureQueriesContext(connections[alias]) as queries:
        duplicate = exchange_once(code, using=alias)
    holder.join(10)

    assert duplicate.duplicate is True
    assert len(queries) == WAITING_DUPLICATE_QUERIES[connections[alias].vendor], queries.captured_queries
