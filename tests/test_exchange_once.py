"""exchange_once in one process: what the first request, a duplicate and bad input get."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from wechat_oauth import signals
from wechat_oauth.client import WeChatClient
from wechat_oauth.exceptions import (
    CodeSpent,
    InvalidCode,
    ReplayRefused,
    UpstreamBusy,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from wechat_oauth.guard import exchange_once
from wechat_oauth.hashing import code_hash
from wechat_oauth.models import OAuthCodeUse

pytestmark = pytest.mark.django_db(transaction=True)


def test_first_request_exchanges_the_code_and_records_it(fake_wechat):
    code = fake_wechat.issue_code("o_alice", unionid="u_alice")

    outcome = exchange_once(code, state="abc123")

    assert outcome.duplicate is False
    assert outcome.token.openid == "o_alice"
    assert outcome.token.unionid == "u_alice"
    row = OAuthCodeUse.objects.get()
    assert row.status == OAuthCodeUse.Status.EXCHANGED
    assert row.code_hash == code_hash(code) and code not in row.code_hash
    assert row.openid == "o_alice" and row.duplicates == 0
    assert row.exchange_ms is not None and row.completed_at is not None
    assert fake_wechat.exchange_calls(code) == 1


def test_duplicate_callback_reuses_first_exchange(fake_wechat):
    code = fake_wechat.issue_code("o_bob")
    first = exchange_once(code)

    second = exchange_once(code, resent=True)

    assert second.duplicate is True
    assert second.token == first.token
    assert second.token.access_token == first.token.access_token
    assert fake_wechat.exchange_calls(code) == 1
    row = OAuthCodeUse.objects.get()
    assert row.duplicates == 1
    assert row.resent_variant_seen is True
    assert row.last_seen_at >= row.first_seen_at


def test_profile_is_part_of_the_outcome_every_duplicate_replays(fake_wechat):
    code = fake_wechat.issue_code("o_profiled", scope="snsapi_userinfo", nickname="Pat")

    first = exchange_once(code)
    duplicate = exchange_once(code)

    assert first.token.profile is not None and first.token.profile.nickname == "Pat"
    assert duplicate.token.profile == first.token.profile
    assert fake_wechat.calls("userinfo") == 1


def test_snsapi_base_exchange_asks_wechat_for_the_token_only(fake_wechat, caplog):
    """userinfo under snsapi_base is refused by WeChat (48001): one call wasted per login."""
    code = fake_wechat.issue_code("o_silent", scope="snsapi_base")

    outcome = exchange_once(code)

    assert outcome.token.scope == "snsapi_base" and outcome.token.profile is None
    assert fake_wechat.calls("userinfo") == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_failing_userinfo_does_not_fail_the_exchange(fake_wechat):
    code = fake_wechat.issue_code("o_private", scope="snsapi_userinfo")
    fake_wechat.add_fault("userinfo", errcode=-1)

    outcome = exchange_once(code)

    assert outcome.token.openid == "o_private" and outcome.token.profile is None


def test_duplicate_of_another_login_attempt_or_browser_is_refused_not_replayed(fake_wechat):
    """A leaked callback URL (another browser) or the code on a fresh state (another attempt),
    answered by the database."""
    _refuses_replays_of_another_attempt_or_browser(fake_wechat)


@pytest.mark.redis
def test_duplicate_of_another_login_attempt_or_browser_is_refused_by_the_redis_front(front, fake_wechat):
    """The same, answered by the Redis front (one server, then a cluster)."""
    _refuses_replays_of_another_attempt_or_browser(fake_wechat)


def _refuses_replays_of_another_attempt_or_browser(fake_wechat) -> None:
    code = fake_wechat.issue_code("o_owner")
    exchange_once(code, state="s1", fingerprint="browser-a")

    with pytest.raises(ReplayRefused):
        exchange_once(code, state="s1", fingerprint="browser-b")
    with pytest.raises(ReplayRefused):
        exchange_once(code, state="s2", fingerprint="browser-a")
    assert exchange_once(code, state="s1", fingerprint="browser-a").duplicate is True
    assert fake_wechat.exchange_calls(code) == 1


def test_many_late_duplicates_are_counted_and_never_call_wechat(fake_wechat):
    code = fake_wechat.issue_code("o_carol")
    results = [exchange_once(code) for _ in range(5)]

    assert [r.duplicate for r in results] == [False, True, True, True, True]
    assert len({r.token for r in results}) == 1
    assert OAuthCodeUse.objects.get().duplicates == 4
    assert fake_wechat.exchange_calls(code) == 1


def test_duplicate_after_the_window_is_told_the_code_is_spent(fake_wechat, settings):
    code = fake_wechat.issue_code("o_dan")
    exchange_once(code)
    OAuthCodeUse.objects.update(first_seen_at=timezone.now() - timedelta(seconds=301))

    with pytest.raises(CodeSpent):
        exchange_once(code)
    assert fake_wechat.exchange_calls(code) == 1


def test_spent_code_is_recorded_and_replayed_to_duplicates(fake_wechat):
    code = fake_wechat.issue_code("o_erin")
    fake_wechat.add_fault("access_token", errcode=40163, errmsg="code been used, rid: 65a1-b2c3")

    with pytest.raises(CodeSpent) as first:
        exchange_once(code)
    with pytest.raises(CodeSpent) as duplicate:
        exchange_once(code)

    assert first.value.errcode == duplicate.value.errcode == 40163
    assert duplicate.value.request_id == "65a1-b2c3"
    row = OAuthCodeUse.objects.get()
    assert (row.status, row.error, row.errcode, row.request_id) == ("failed", "spent", 40163, "65a1-b2c3")
    assert fake_wechat.exchange_calls(code) == 1


@pytest.mark.parametrize(
    "fault, error",
    [
        ({"errcode": -1, "errmsg": "system error"}, UpstreamBusy),
        ({"status": 500, "body": "<html>Internal Server Error</html>"}, UpstreamUnavailable),
        ({"body": "this is not json"}, UpstreamUnavailable),
    ],
)
def test_upstream_failure_is_final_and_replayed_without_a_new_call(fake_wechat, fault, error):
    code = fake_wechat.issue_code("o_frank")
    fake_wechat.add_fault("access_token", **fault)

    with pytest.raises(error):
        exchange_once(code)
    with pytest.raises(error):
        exchange_once(code)

    assert fake_wechat.exchange_calls(code) == 1
    assert OAuthCodeUse.objects.get().duplicates == 1


def test_timeout_after_sending_is_final(fake_wechat, settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "TIMEOUT": (1.0, 0.3)}
    code = fake_wechat.issue_code("o_gina")
    fake_wechat.add_fault("access_token", delay=1.0)

    with pytest.raises(UpstreamTimeout):
        exchange_once(code)
    with pytest.raises(UpstreamTimeout):
        exchange_once(code)

    assert fake_wechat.exchange_calls(code) == 1


def test_request_that_never_left_the_host_releases_the_claim(fake_wechat, unused_port):
    code = fake_wechat.issue_code("o_hugo")
    unreachable = WeChatClient(api_base_url=f"http://127.0.0.1:{unused_port}")

    with pytest.raises(UpstreamUnavailable) as refused:
        exchange_once(code, client=unreachable)

    assert refused.value.request_sent is False
    assert not OAuthCodeUse.objects.exists()
    assert exchange_once(code).token.openid == "o_hugo"
    assert fake_wechat.exchange_calls(code) == 1


@pytest.mark.parametrize("code", [None, "", "a" * 513, "c\u00f6de", "two words", "nul\x00", "tab\t"])
def test_input_that_cannot_be_a_code_is_rejected_and_nothing_stored(fake_wechat, code):
    with pytest.raises(InvalidCode):
        exchange_once(code)
    assert not OAuthCodeUse.objects.exists()
    assert fake_wechat.total_exchange_calls() == 0


def test_signals_tell_the_site_what_happened(fake_wechat):
    seen = []

    def record(signal_name):
        return lambda sender, **kwargs: seen.append((signal_name, kwargs))

    receivers = {
        signals.code_exchanged: record("exchanged"),
        signals.duplicate_absorbed: record("duplicate"),
        signals.exchange_failed: record("failed"),
    }
    for signal, receiver in receivers.items():
        signal.connect(receiver)
    try:
        code = fake_wechat.issue_code("o_iris")
        exchange_once(code)
        exchange_once(code)
        bad = fake_wechat.issue_code("o_iris")
        fake_wechat.add_fault("access_token", errcode=40029, errmsg="invalid code")
        with pytest.raises(CodeSpent):
            exchange_once(bad)
    finally:
        for signal, receiver in receivers.items():
            signal.disconnect(receiver)

    assert [name for name, _ in seen] == ["exchanged", "duplicate", "failed"]
    assert seen[0][1]["token"].openid == "o_iris"
    assert seen[1][1]["gap_ms"] >= 0 and seen[1][1]["waited"] is False
    assert isinstance(seen[2][1]["error"], CodeSpent)


def test_raw_code_and_secret_never_reach_the_row(fake_wechat, settings):
    code = fake_wechat.issue_code("o_jack")
    exchange_once(code, state="s1")
    row = OAuthCodeUse.objects.values().get()

    text = " ".join(str(value) for value in row.values())
    assert code not in text
    assert settings.WECHAT_OAUTH["APP_SECRET"] not in text


#: Statements as Django logs them. First request: BEGIN, INSERT, UPDATE, COMMIT (on
#: PostgreSQL the INSERT also sets the bounds of this transaction's waits, set_config() in
#: the same statement); on MariaDB/MySQL a SET of the session's bounds before and one
#: putting them back after.
FIRST_REQUEST_QUERIES = {"postgresql": 4, "sqlite": 4, "mysql": 6}
#: Late duplicate: BEGIN, INSERT (conflicts), ROLLBACK, SELECT, UPDATE (MariaDB: and the two
#: SETs).
LATE_DUPLICATE_QUERIES = {"postgresql": 5, "sqlite": 5, "mysql": 7}


def test_query_counts_of_first_request_and_late_duplicate(fake_wechat, django_assert_num_queries):
    code = fake_wechat.issue_code("o_kate")
    with django_assert_num_queries(FIRST_REQUEST_QUERIES[connection.vendor]):
        exchange_once(code)
    with django_assert_num_queries(LATE_DUPLICATE_QUERIES[connection.vendor]):
        exchange_once(code)
