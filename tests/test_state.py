"""Signed login states (issue/verify) and the check of ``next`` URLs.

No test here uses the ``db`` fixture: pytest-django makes any database query fail, which is part
of what the state tests prove (verification is pure).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from django.test import RequestFactory
from hypothesis import given
from hypothesis import strategies as st

from wechat_oauth import state as state_module
from wechat_oauth.binding import commitment
from wechat_oauth.exceptions import ExpiredState, InvalidState, WeChatOAuthError
from wechat_oauth.hashing import signing_keys
from wechat_oauth.state import (
    COMPACT_BINDING_BYTES,
    COMPACT_STATE_LENGTH,
    STATE_LENGTH,
    LoginState,
    issue_state,
    safe_next_url,
    verify_state,
)

UTC = timezone.utc
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
TARGET = "/orders/?id=3"
STATE_RE = re.compile(r"[A-Za-z0-9]{1,128}")
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Fields of a version-2 state: version(1) issued(6) attempt(1) nonce(22) binding(22) mac(22).
ATTEMPT_POS = 7
NONCE = slice(8, 30)


def issue(**kwargs: object) -> LoginState:
    return issue_state(**{"target": TARGET, "now": NOW, **kwargs})  # type: ignore[arg-type]


def verify(value: str, **kwargs: object) -> LoginState:
    return verify_state(value, **{"target": TARGET, "now": NOW, **kwargs})  # type: ignore[arg-type]


def assert_invalid(value: str, **kwargs: object) -> None:
    """verify raises InvalidState itself, not its subclass ExpiredState."""
    with pytest.raises(InvalidState) as excinfo:
        verify(value, **kwargs)
    assert excinfo.type is InvalidState


def flip(value: str, position: int) -> str:
    """``value`` with the character at ``position`` replaced by another alphanumeric one."""
    replacement = ALNUM[(ALNUM.index(value[position]) + 1) % len(ALNUM)]
    return value[:position] + replacement + value[position + 1 :]


def resign(
    body: str, *, target: str = TARGET, scope: str = "snsapi_base", app_id: str = "wxtestappid0000001"
) -> str:
    """A state with a genuine MAC over an arbitrary body (to reach the checks after the MAC)."""
    return body + state_module._mac(signing_keys()[0], body, app_id, scope, target)


# -- Format ------------------------------------------------------------------------------------


def test_state_is_alphanumeric_and_within_wechat_limit() -> None:
    assert STATE_RE.fullmatch(issue().value)


def test_state_length_is_stable() -> None:
    values = [
        issue(now=NOW + timedelta(days=days), attempt=attempt, target=target).value
        for days in (-20_000, 0, 1, 400_000)
        for attempt in (0, 1)
        for target in ("", "/", "/" + "x" * 2000, "/订单/?q=红茶")
    ]
    assert {len(value) for value in values} == {STATE_LENGTH}
    assert STATE_LENGTH == 74  # well within WeChat's 128


def test_issued_state_reports_its_fields() -> None:
    issued = issue(attempt=1)
    assert issued.issued_at == NOW
    assert issued.attempt == 1
    assert issued.nonce == issued.value[NONCE]


def test_nonces_differ_between_logins() -> None:
    assert len({issue().nonce for _ in range(50)}) == 50


def test_issue_rejects_naive_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        issue_state(target=TARGET, now=datetime(2025, 1, 1))


@pytest.mark.parametrize("attempt", [-1, 10, True])
def test_issue_rejects_attempt_out_of_range(attempt: object) -> None:
    with pytest.raises(ValueError, match="attempt"):
        issue(attempt=attempt)


# -- Verification is idempotent and pure ------------------------------------------------------


def test_verify_returns_the_issued_state() -> None:
    issued = issue()
    assert verify(issued.value) == issued


def test_verify_twice_passes_twice() -> None:
    value = issue().value
    first = verify(value, now=NOW + timedelta(seconds=1))
    second = verify(value, now=NOW + timedelta(seconds=1, milliseconds=20))
    assert first == second


def test_verify_uses_no_database_cache_or_session(settings: object) -> None:
    # No db fixture: a query would fail. Broken cache and session settings: any use would fail.
    settings.CACHES = {"default": {"BACKEND": "no.such.CacheBackend"}}  # type: ignore[attr-defined]
    settings.SESSION_ENGINE = "no.such.session_engine"  # type: ignore[attr-defined]
    value = issue().value
    assert verify(value).value == value


def test_verify_defaults_to_settings_scope_and_app_id() -> None:
    value = issue_state(target=TARGET, scope="snsapi_base", app_id="wxtestappid0000001", now=NOW).value
    assert verify_state(value, target=TARGET, now=NOW).value == value


# -- Rejected as InvalidState ------------------------------------------------------------------


def test_wrong_target_is_invalid() -> None:
    assert_invalid(issue().value, target="/orders/?id=4")


def test_target_is_bound_exactly() -> None:
    assert_invalid(issue(target="/orders/").value, target="/orders")


def test_wrong_scope_is_invalid() -> None:
    assert_invalid(issue(scope="snsapi_base").value, scope="snsapi_userinfo")


def test_other_app_id_setting_is_invalid(settings: object) -> None:
    value = issue().value
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "APP_ID": "wxotherapp00000002"}  # type: ignore[attr-defined]
    assert_invalid(value)


def test_other_app_id_argument_is_invalid() -> None:
    assert_invalid(issue(app_id="wxaaaaaaaaaaaaaaa1").value, app_id="wxaaaaaaaaaaaaaaa2")


def test_fields_cannot_be_shifted_between_scope_and_target() -> None:
    value = issue(scope="snsapi_base", target="/x").value
    assert_invalid(value, scope="snsapi_bas", target="e/x")


@pytest.mark.parametrize("position", range(STATE_LENGTH))
def test_flipped_character_is_invalid(position: int) -> None:
    value = issue().value
    assert_invalid(flip(value, position))


def test_truncated_state_is_invalid() -> None:
    assert_invalid(issue().value[:-1])


def test_extended_state_is_invalid() -> None:
    assert_invalid(issue().value + "A")


def test_empty_state_is_invalid() -> None:
    assert_invalid("")


@pytest.mark.parametrize("bad", ["-", "_", "=", " ", "é", "٣", "\x00"])
def test_non_alphanumeric_state_is_invalid(bad: str) -> None:
    value = issue().value
    assert_invalid(value[:10] + bad + value[11:])


def test_state_longer_than_128_is_invalid() -> None:
    assert_invalid(issue().value * 3)


BODY = slice(0, STATE_LENGTH - 22)


@pytest.mark.parametrize("version", ["1", "3"])
def test_unknown_version_is_invalid(version: str) -> None:
    """Version 1 (before the browser binding) included: its states bind no browser."""
    body = issue().value[BODY]
    assert_invalid(resign(version + body[1:]))


def test_non_digit_attempt_is_invalid_even_when_signed() -> None:
    body = issue().value[BODY]
    assert_invalid(resign(body[:ATTEMPT_POS] + "a" + body[ATTEMPT_POS + 1 :]))


def test_rotated_secret_key_is_invalid(settings: object) -> None:
    value = issue().value
    settings.SECRET_KEY = "a-new-secret-key-after-rotation"  # type: ignore[attr-defined]
    assert_invalid(value)


def test_secret_key_fallbacks_still_verify(settings: object) -> None:
    value = issue().value
    old = settings.SECRET_KEY  # type: ignore[attr-defined]
    settings.SECRET_KEY = "a-new-secret-key-after-rotation"  # type: ignore[attr-defined]
    settings.SECRET_KEY_FALLBACKS = [old]  # type: ignore[attr-defined]
    assert verify(value).value == value


def test_hash_key_replaces_secret_key(settings: object) -> None:
    value = issue().value
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "HASH_KEY": "a-dedicated-hash-key"}  # type: ignore[attr-defined]
    assert_invalid(value)
    assert verify(issue().value)


def test_non_string_state_is_invalid() -> None:
    assert_invalid(None)  # type: ignore[arg-type]


# -- Time --------------------------------------------------------------------------------------


def test_state_is_accepted_at_max_age() -> None:
    value = issue().value
    assert verify(value, now=NOW + timedelta(seconds=600)).value == value


def test_state_expires_after_default_max_age() -> None:
    with pytest.raises(ExpiredState):
        verify(issue().value, now=NOW + timedelta(seconds=601))


def test_max_age_setting_is_used(settings: object) -> None:
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "STATE_MAX_AGE": 30}  # type: ignore[attr-defined]
    value = issue().value
    assert verify(value, now=NOW + timedelta(seconds=30))
    with pytest.raises(ExpiredState):
        verify(value, now=NOW + timedelta(seconds=31))


def test_max_age_argument_overrides_setting() -> None:
    value = issue().value
    assert verify(value, max_age=5, now=NOW + timedelta(seconds=5))
    with pytest.raises(ExpiredState):
        verify(value, max_age=5, now=NOW + timedelta(seconds=6))


def test_expired_state_is_an_invalid_state() -> None:
    with pytest.raises(InvalidState):
        verify(issue().value, now=NOW + timedelta(days=1))


def test_forged_old_state_is_invalid_not_expired() -> None:
    value = issue().value
    assert_invalid(flip(value, STATE_LENGTH - 1), now=NOW + timedelta(days=1))


def test_issue_time_within_clock_skew_is_accepted() -> None:
    value = issue(now=NOW + timedelta(seconds=60)).value
    assert verify(value, now=NOW).value == value


def test_issue_time_beyond_clock_skew_is_invalid() -> None:
    assert_invalid(issue(now=NOW + timedelta(seconds=61)).value, now=NOW)


def test_verify_rejects_naive_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        verify_state(issue().value, target=TARGET, now=datetime(2025, 3, 1))


# -- Attempt counter ---------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [0, 1])
def test_attempt_round_trips(attempt: int) -> None:
    assert verify(issue(attempt=attempt).value).attempt == attempt


def test_attempt_is_covered_by_the_mac() -> None:
    value = issue(attempt=0).value
    assert value[ATTEMPT_POS] == "0"
    assert_invalid(value[:ATTEMPT_POS] + "1" + value[ATTEMPT_POS + 1 :])


def test_nonce_survives_verification() -> None:
    issued = issue()
    assert verify(issued.value).nonce == issued.nonce


# -- Properties --------------------------------------------------------------------------------

_near_states = st.from_regex(r"\A1[A-Za-z0-9]{51}\Z")


@given(st.one_of(st.text(), _near_states))
def test_arbitrary_text_raises_only_state_errors(value: str) -> None:
    try:
        verify_state(value, target=TARGET, now=NOW)
    except (InvalidState, ExpiredState):
        pass


@given(target=st.text(), scope=st.text(), app_id=st.text(), attempt=st.sampled_from([0, 1]))
def test_issue_then_verify_round_trips(target: str, scope: str, app_id: str, attempt: int) -> None:
    issued = issue_state(target=target, scope=scope, app_id=app_id, attempt=attempt, now=NOW)
    assert STATE_RE.fullmatch(issued.value) and len(issued.value) == STATE_LENGTH
    verified = verify_state(issued.value, target=target, scope=scope, app_id=app_id, now=NOW)
    assert verified == issued


@given(st.text(), st.text())
def test_any_other_target_is_rejected(issued_for: str, presented: str) -> None:
    if issued_for == presented:
        return
    value = issue_state(target=issued_for, now=NOW).value
    with pytest.raises(InvalidState):
        verify_state(value, target=presented, now=NOW)


def test_state_errors_are_wechat_oauth_errors() -> None:
    assert issubclass(InvalidState, WeChatOAuthError)
    assert InvalidState.key == "invalid_state"
    assert ExpiredState.key == "expired_state"


# -- next URLs ---------------------------------------------------------------------------------

#: Open-redirect bypass forms; the site's host is "testserver". Every one must be refused.
OPEN_REDIRECT_CORPUS: tuple[str, ...] = (
    # Protocol-relative and slash/backslash tricks.
    "//evil.com",
    "///evil.com",
    "////evil.com",
    "/\\evil.com",
    "\\\\evil.com",
    "\\/evil.com",
    "/\\/evil.com",
    "//evil.com/%2F..",
    # Scheme without a proper authority.
    "https:evil.com",
    "http:/evil.com",
    "https:///evil.com",
    "https:/\\evil.com",
    "https:\\\\evil.com",
    # Foreign hosts and look-alikes.
    "http://evil.com",
    "https://evil.com/",
    "https://testserver.evil.com/",
    "https://evil.com/testserver",
    "https://evil.com?testserver",
    "https://evil.com#testserver",
    "https://testserver./",
    "https://testserver%2eevil.com/",
    "http://2130706433/",
    "https://[evil.com/",
    # Userinfo.
    "https://testserver@evil.com/",
    "//testserver@evil.com",
    "https://evil.com@testserver/",
    "https://testserver:443@evil.com/",
    "https://testserver\\@evil.com/",
    "https://testserver%40evil.com/",
    # A port that is not allowed.
    "https://testserver:8080/",
    # Dangerous or foreign schemes.
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "javascript://testserver/%0aalert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "ftp://testserver/",
    # Control characters and whitespace, raw.
    "\t//evil.com",
    " //evil.com",
    "\n//evil.com",
    "\x00//evil.com",
    "/\t/evil.com",
    "/ /evil.com",
    "/\x7f/evil.com",
    "\u3000//evil.com",
    "\u202e//moc.live",
    "/orders/\u200b",
    # Control characters, whitespace and slashes, percent-encoded.
    "/%09/evil.com",
    "/%0a/evil.com",
    "/%0d%0aSet-Cookie:%20x=1",
    "/?next=%0d%0aLocation:%20https://evil.com",
    "/%20/evil.com",
    "/%2F%2Fevil.com",
    "/%2f/evil.com",
    "/%5cevil.com",
    "/%5C%5Cevil.com",
    "/%252F%252Fevil.com",
    "/%25252F%25252Fevil.com",
    "%2F%2Fevil.com",
    "https://testserver/%2F%2Fevil.com",
    # Unicode host confusables.
    "https://evil\u3002com/",
    "https://evil\uff0ecom/",
    "https://\uff45\uff56\uff49\uff4c.com/",
    "https://testserver\uff0f@evil.com/",
    # Not site-absolute (resolved against the callback URL).
    "evil.com",
    "@evil.com",
    "?next=//evil.com",
    # Too long.
    "/" + "a" * 2048,
)

#: Return targets that must pass (the request's host is "testserver", not secure).
SAFE_NEXT_URLS: tuple[str, ...] = (
    "/",
    "/orders/?id=3",
    "/a/b#frag",
    "/search?q=a+b",
    "/search?q=a%20b",
    "/files/a%2Fb",
    "/%E8%AE%A2%E5%8D%95/",
    "/订单/?q=红茶",
    "/a@b",
    "/?next=//evil.com",
    "/callback?next=https%3A%2F%2Fevil.com",
    "https://testserver/orders/",
    "http://testserver/orders/?id=3",
    "/" + "a" * 2047,
)

rf = RequestFactory()


def test_corpus_is_large_enough() -> None:
    assert len(set(OPEN_REDIRECT_CORPUS)) >= 25


@pytest.mark.parametrize("candidate", OPEN_REDIRECT_CORPUS)
def test_open_redirect_bypass_is_refused(candidate: str) -> None:
    assert safe_next_url(candidate, request=rf.get("/")) is None


@pytest.mark.parametrize("candidate", SAFE_NEXT_URLS)
def test_safe_next_url_is_accepted(candidate: str) -> None:
    assert safe_next_url(candidate, request=rf.get("/")) == candidate


@pytest.mark.parametrize("candidate", [None, ""])
def test_missing_next_url_is_none(candidate: str | None) -> None:
    assert safe_next_url(candidate, request=rf.get("/")) is None


def test_relative_path_is_accepted_without_request() -> None:
    assert safe_next_url("/orders/?id=3") == "/orders/?id=3"


def test_absolute_url_needs_an_allowed_host() -> None:
    assert safe_next_url("https://testserver/orders/") is None


def test_allowed_hosts_argument_lets_a_host_through() -> None:
    url = "https://shop.example.com/cart"
    assert safe_next_url(url, allowed_hosts=["shop.example.com"]) == url


def test_allowed_redirect_hosts_setting_lets_a_host_through(settings: object) -> None:
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "ALLOWED_REDIRECT_HOSTS": ["shop.example.com"]}  # type: ignore[attr-defined]
    url = "https://shop.example.com/cart"
    assert safe_next_url(url, request=rf.get("/")) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.shop.example.com/",
        "https://example.com/",
        "https://shop.example.com.evil.com/",
        "https://shop.example.com:8443/",
        "https://user@shop.example.com/",
    ],
)
def test_allowed_redirect_hosts_are_exact(settings: object, url: str) -> None:
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "ALLOWED_REDIRECT_HOSTS": ["shop.example.com"]}  # type: ignore[attr-defined]
    assert safe_next_url(url, request=rf.get("/")) is None


def test_port_passes_when_listed_exactly() -> None:
    url = "https://shop.example.com:8443/"
    assert safe_next_url(url, allowed_hosts=["shop.example.com:8443"]) == url


def test_secure_request_refuses_http() -> None:
    assert safe_next_url("http://testserver/orders/", request=rf.get("/", secure=True)) is None


def test_secure_request_accepts_https() -> None:
    url = "https://testserver/orders/"
    assert safe_next_url(url, request=rf.get("/", secure=True)) == url


def test_require_https_argument_overrides_request() -> None:
    url = "http://testserver/orders/"
    assert safe_next_url(url, request=rf.get("/"), require_https=True) is None
    assert safe_next_url(url, request=rf.get("/", secure=True), require_https=False) == url


def test_disallowed_request_host_is_not_trusted() -> None:
    request = rf.get("/", HTTP_HOST="evil.com")
    assert safe_next_url("https://evil.com/", request=request) is None


# -- the compact layout (a state that must fit python-social-auth's 65-character nonce) -------


def test_compact_state_is_53_characters_and_verifies() -> None:
    issued = issue(compact=True, attempt=1, binding=commitment("a" * 22, nbytes=COMPACT_BINDING_BYTES))
    assert len(issued.value) == COMPACT_STATE_LENGTH == 53 and STATE_RE.fullmatch(issued.value)
    verified = verify(issued.value)
    assert verified == issued and verified.binding_bytes == COMPACT_BINDING_BYTES
    assert len(verified.nonce) == 11 and verified.attempt == 1


@pytest.mark.parametrize("position", range(COMPACT_STATE_LENGTH))
def test_compact_state_with_a_flipped_character_is_invalid(position: int) -> None:
    assert_invalid(flip(issue(compact=True).value, position))


def test_compact_state_is_bound_like_the_full_one() -> None:
    value = issue(compact=True, scope="snsapi_base").value
    verify(value, scope="snsapi_base")
    assert_invalid(value, target="/other")
    assert_invalid(value, scope="snsapi_userinfo")
    assert_invalid(value[:-1])
    assert_invalid(value + "A")
