"""WeCom under concurrency, on every database (SQLite as Django creates it, PostgreSQL,
MariaDB) and on Redis: threads and OS processes asking for the app token at once cause one
``gettoken``; duplicates of one code cause one ``getuserinfo`` and get one identity."""

from __future__ import annotations

import pytest
from django.db import connections

from tests import workers
from tests.concurrency import run_in_threads, start_processes
from tests.test_wecom import AGENT_ID, CORP_ID, gettoken_calls, wecom_settings
from wechat_oauth.client import get_client
from wechat_oauth.guard import exchange_once
from wechat_oauth.models import OAuthCodeUse, WeComAccessToken
from wechat_oauth.wecom_token import AppTokens, DatabaseTokenStore

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

LATENCY = 0.1


@pytest.fixture
def corp(fake_wechat, settings):
    settings.WECHAT_OAUTH = wecom_settings(fake_wechat)
    fake_wechat.set_latency(LATENCY)
    return fake_wechat


def tokens_on(alias: str) -> AppTokens:
    """The corp app's token as a process whose database is ``alias`` sees it."""
    client = get_client("corp")
    return AppTokens(
        client.tokens.key, client.gettoken, bound=sum(client.timeout), store=lambda: DatabaseTokenStore(alias)
    )


def test_thirty_threads_asking_for_the_token_at_once_cause_one_gettoken(corp, alias):
    tokens = [tokens_on(alias) for _ in range(30)]  # each its own "process" memory

    results = run_in_threads(30, lambda: tokens.pop().get())

    assert {kind for kind, _ in results} == {"ok"}, results
    assert len({value for _, value in results}) == 1
    assert gettoken_calls(corp) == 1
    assert WeComAccessToken.objects.using(alias).get().fetches == 1


def test_threads_on_a_token_ended_early_drop_it_once_and_refresh_it_once(corp, alias):
    first = tokens_on(alias)
    stale = first.get()
    corp.invalidate_wecom_token(CORP_ID, AGENT_ID)
    holders = [tokens_on(alias) for _ in range(20)]
    for holder in holders:
        assert holder.get() == stale  # every process still has the stale one

    def refused_then_again():
        holder = holders.pop()
        holder.drop(stale)
        return holder.get()

    results = run_in_threads(20, refused_then_again)

    assert {kind for kind, _ in results} == {"ok"}, results
    fresh = {value for _, value in results}
    assert len(fresh) == 1 and stale not in fresh
    assert gettoken_calls(corp) == 2  # the first one, then exactly one refresh


def test_processes_asking_for_the_token_at_once_cause_one_gettoken(corp, alias, settings):
    group = start_processes(
        5,
        workers.app_call_after_barrier,
        dict(connections[alias].settings_dict),
        settings.WECHAT_OAUTH,
        "corp",
        None,
    )

    reports = group.collect()

    assert {kind for _, kind, _ in reports} == {"ok"}, reports
    assert len({value for _, _, value in reports}) == 1
    assert gettoken_calls(corp) == 1


def test_threads_on_one_code_make_one_getuserinfo_and_one_identity(corp, alias):
    code = corp.issue_wecom_code(CORP_ID, AGENT_ID, "zhou")

    results = run_in_threads(
        12, lambda: exchange_once(code, client=get_client("corp"), using=alias).token.openid
    )

    assert results == [("ok", "zhou")] * 12
    assert corp.exchange_calls(code) == 1
    assert OAuthCodeUse.objects.using(alias).get().duplicates == 11


def test_processes_on_one_code_make_one_getuserinfo_and_one_identity(corp, alias, settings):
    code = corp.issue_wecom_code(CORP_ID, AGENT_ID, member=False, person="wu")

    group = start_processes(
        4,
        workers.app_call_after_barrier,
        dict(connections[alias].settings_dict),
        settings.WECHAT_OAUTH,
        "corp",
        code,
    )
    reports = group.collect()

    assert len({value for _, _, value in reports}) == 1, reports
    assert {kind for _, kind, _ in reports} == {"ok"}, reports
    assert corp.exchange_calls(code) == 1
    assert gettoken_calls(corp) == 1  # one token for all four processes


@pytest.mark.redis
def test_with_a_cache_threads_and_processes_share_one_gettoken(corp, front, redis_alias, settings):
    client = get_client("corp")
    in_threads = [AppTokens(client.tokens.key, client.gettoken, bound=5) for _ in range(20)]

    results = run_in_threads(20, lambda: in_threads.pop().get())
    group = start_processes(
        3,
        workers.app_call_after_barrier,
        dict(connections["default"].settings_dict),
        settings.WECHAT_OAUTH,
        "corp",
        None,
        {"default": settings.CACHES["default"], redis_alias: settings.CACHES[redis_alias]},
    )
    reports = group.collect()

    values = {value for _, value in results} | {value for _, _, value in reports}
    assert len(values) == 1, (results, reports)
    assert gettoken_calls(corp) == 1
    assert not WeComAccessToken.objects.exists()  # the cache holds it, not the table


@pytest.mark.redis
def test_with_a_cache_a_stale_token_is_dropped_only_if_it_is_still_stored(corp, front):
    tokens = get_client("corp").tokens
    stale = tokens.get()
    corp.invalidate_wecom_token(CORP_ID, AGENT_ID)
    other = AppTokens(tokens.key, tokens.fetch, bound=5)
    other.drop(stale)
    fresh = other.get()

    tokens.drop(stale)  # a late worker drops the stale one: the fresh one must survive

    assert fresh != stale and tokens.get() == fresh
    assert gettoken_calls(corp) == 2


def test_exchange_once_on_a_stale_token_takes_a_new_one_and_spends_the_code(corp, alias):
    client = get_client("corp")
    client.access_token()
    corp.invalidate_wecom_token(CORP_ID, AGENT_ID)
    code = corp.issue_wecom_code(CORP_ID, AGENT_ID, "zheng")

    exchange = exchange_once(code, client=client, using=alias)

    assert exchange.token.openid == "zheng" and not exchange.duplicate
    assert corp.exchange_calls(code) == 2  # refused for the token, then spent
    assert gettoken_calls(corp) == 2
    assert OAuthCodeUse.objects.using(alias).get().status == "exchanged"


@pytest.mark.redis
def test_through_the_cache_front_duplicates_on_a_stale_token_share_one_exchange(corp, front):
    client = get_client("corp")
    client.access_token()
    corp.invalidate_wecom_token(CORP_ID, AGENT_ID)
    code = corp.issue_wecom_code(CORP_ID, AGENT_ID, "feng")

    results = run_in_threads(6, lambda: exchange_once(code, client=client).token.openid)

    assert results == [("ok", "feng")] * 6
    assert gettoken_calls(corp) == 2
    assert corp.exchange_calls(code) == 2  # the holder, refused once, then again: no release
    assert OAuthCodeUse.objects.get().status == "exchanged"
