"""SQLite as ``startproject`` configures it: no ``transaction_mode``, the default ``timeout``.

A deferred transaction that reads before it writes holds SQLite's shared lock when it asks for
the write lock; if another connection is committing meanwhile, SQLite cannot wait for both and
answers "database is locked" at once, whatever the timeout. The app's own write transactions
must therefore take the write lock first (``wechat_oauth.transactions``), and not rely on the
site setting ``transaction_mode = "IMMEDIATE"``.
"""

from __future__ import annotations

from functools import partial

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from tests.concurrency import start_thread, wait_until
from wechat_oauth.guard import exchange_once
from wechat_oauth.identity import link_account
from wechat_oauth.models import WeChatAccount

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


class Everything:
    """A database router that sends every model to one alias."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def db_for_read(self, model, **hints):
        return self.alias

    db_for_write = db_for_read


@pytest.fixture
def on_sqlite(settings, sqlite_alias):
    """Every query of the app on the run's SQLite file, configured as Django's default."""
    assert "transaction_mode" not in connections[sqlite_alias].settings_dict.get("OPTIONS", {})
    settings.DATABASE_ROUTERS = [Everything(sqlite_alias)]
    return sqlite_alias


def test_linking_a_new_account_while_another_login_commits_is_not_locked_out(fake_wechat, on_sqlite):
    newcomer = exchange_once(fake_wechat.issue_code("o_newcomer", unionid="u_newcomer"), using=on_sqlite)
    fake_wechat.set_latency(0.5)
    code = fake_wechat.issue_code("o_holder")
    holder, holder_outcome = start_thread(partial(exchange_once, code, using=on_sqlite))
    wait_until(lambda: fake_wechat.exchange_calls(code) == 1)  # it holds the write lock now

    # While the holder waits for WeChat, then commits, a new identity is linked.
    linker, linked = start_thread(partial(link_account, newcomer.token))
    holder.join(10)
    linker.join(20)

    assert holder_outcome[0][0] == "ok", holder_outcome
    assert linked[0][0] == "ok", linked
    assert WeChatAccount.objects.using(on_sqlite).filter(openid="o_newcomer").count() == 1
    assert get_user_model().objects.using(on_sqlite).count() == 1
