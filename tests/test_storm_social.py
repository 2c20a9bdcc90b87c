"""The storm's library patterns (``python -m bench.storm --library social``) on the social-auth
site, in this process: each login through the storm's own load generator (the login page and
its button's POST, the fake WeChat's authorize page, the pattern's callbacks, ``/whoami/``)
against the site of tests/social_site with the drop-in and with social-core's stock backends
(pytest-django's live server, the fixtures of tests/test_contrib_social.py). What the storm
reports under gunicorn is what these logins do.

Runs under the social-auth site's settings (``pytest --ds tests.social_site.settings_stock
tests/test_storm_social.py``, tox's social envs); under other settings it is not collected
(tests/conftest.py ``SITE_MODULES``).
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip(
    "social_django", reason="social-auth-app-django is not installed (pip install -e '.[social]')"
)

from bench.storm.libraries import SOCIAL
from bench.storm.library_storm import lands_on
from bench.storm.patterns import NEXT, SiteHandle, run_login

# The social-auth site's fixtures (its live server, the fake WeChat routed for the stock
# backends, the mode's backends and pipeline), requested below through ``ours``/``theirs``.
from tests.test_contrib_social import Site, dropin, site, stock, users_per_openid  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

#: The duplicate patterns run here (the storm runs every pattern of its mp kind; 20 and 50
#: parallel duplicates only under gunicorn).
PATTERNS = (
    "plain",
    "abort_resend",
    "parallel_5",
    "two_codes",
    "refresh",
    "spread_abort_resend",
    "spread_parallel_4",
)


@pytest.fixture
def ours(request: pytest.FixtureRequest) -> Site:
    """The site with the drop-in."""
    return request.getfixturevalue("dropin")


@pytest.fixture
def theirs(request: pytest.FixtureRequest) -> Site:
    """The site with social-core's stock backends."""
    return request.getfixturevalue("stock")


def handle(social: Site) -> SiteHandle:
    """The storm's view of the site (one live server: both "instances" are the same)."""
    return SiteHandle(
        SOCIAL.site(social.mode), [social.url, social.url], social.fake.base_url, library=SOCIAL
    )


def exchanges(social: Site, login: Any) -> list[int]:
    return [social.fake.exchange_calls(code) for code in login.codes]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_dropin_logs_in_every_storm_pattern_with_one_exchange_per_code(ours: Site, pattern: str) -> None:
    login = run_login(handle(ours), pattern, 0, count_sql=False, kind=SOCIAL.kind)

    assert login.outcome == "ok", login.reason
    assert login.user == SOCIAL.identity(login.person)
    assert exchanges(ours, login) == [1] * (2 if pattern == "two_codes" else 1)
    assert all(lands_on(hit, ours.fake.base_url) for hit in login.callbacks), login.callbacks
    assert users_per_openid([SOCIAL.openid(login.person)]) == {SOCIAL.openid(login.person): 1}


def test_the_stock_backend_fails_the_refresh_and_the_parallel_duplicates(theirs: Site) -> None:
    refresh = run_login(handle(theirs), "refresh", 0, count_sql=False, kind=SOCIAL.kind)
    assert refresh.outcome == "failed"
    assert refresh.reason == "refresh answered 302 /login-error/"

    parallel = run_login(handle(theirs), "parallel_5", 1, count_sql=False, kind=SOCIAL.kind)
    off = [hit for hit in parallel.callbacks if not lands_on(hit, theirs.fake.base_url)]
    assert len(parallel.callbacks) == 5 and len(off) >= 4  # one duplicate passes the nonce
    assert {hit.location for hit in off} == {"/login-error/"}
    assert exchanges(theirs, parallel) == [1]  # it never spends a code twice: it fails instead


def test_a_login_counts_only_with_the_persons_account(ours: Site) -> None:
    """/whoami/ must name the person's account: the storm's reading of the site's answer."""
    login = run_login(handle(ours), "plain", 0, count_sql=False, kind=SOCIAL.kind)
    assert login.outcome == "ok", login.reason
    assert SOCIAL.who({"user": "x", "accounts": []}) == "!x has no account"
    assert SOCIAL.who({"user": None, "accounts": []}) is None
    other = SOCIAL.identity("someone-else")
    assert other != login.user and login.visible[0].location == NEXT
