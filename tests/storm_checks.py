"""Checks shared by the tests that run the storm's own stack (tests/test_storm_*.py).

pytest rewrites the asserts of test modules only, so each assert here says what it saw.
"""

from __future__ import annotations

from typing import Any

from bench.storm.passes import Storm
from bench.storm.patterns import KIND_PATTERNS


def assert_no_guarded_login_failed_and_every_code_exchanged_once(stack: Any, storm: Storm) -> None:
    """After ``storm.patterns()`` on the Official Account kind with 2 logins per pattern and
    site: every mp pattern was run, and in each the guarded site's 2 logins all succeeded and
    every code they used reached the fake WeChat's exchange exactly once."""
    calls = stack.fake.stats()["exchange_calls"]
    by_pattern = storm.runs["mp"]
    assert set(by_pattern) == set(KIND_PATTERNS["mp"]), sorted(by_pattern)
    for pattern, runs in by_pattern.items():
        logins = [login for run in runs["guarded"] for login in run.logins]
        assert len(logins) == 2, (pattern, len(logins))
        failures = [login.reason for login in logins if login.failed]
        assert failures == [], (pattern, failures)
        exchanged = {code: calls.get(code, 0) for login in logins for code in login.codes}
        assert exchanged == {code: 1 for login in logins for code in login.codes}, (pattern, exchanged)
