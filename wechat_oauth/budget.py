"""What one login attempt and one client may cost: rows and calls to WeChat for new codes.

A state is free (one GET of the login view), and every request with a made-up code would
otherwise cost one ``OAuthCodeUse`` row and one call to WeChat's token endpoint. Two budgets,
counted in the cache (BUDGET_CACHE_ALIAS), bound that; both are charged only for a code seen
for the first time, by the request that holds its claim, so a genuine duplicate never costs
anything and is always answered:

* **per login attempt** (the state's nonce): at most MAX_CODES_PER_LOGIN distinct codes. WeChat
  itself sends at most two (Android's two codes for one state).
* **per client** (CLIENT_KEY, the IP address by default): at most GARBAGE_BUDGET codes that
  WeChat *rejected* (invalid, spent, expired) per GARBAGE_PERIOD. A successful login never
  counts, so thousands of people behind one carrier-grade NAT address are not refused for
  logging in; what it bounds is garbage. While a flood from one address lasts, though, that
  address's new codes are refused, genuine ones included, until the period ends: the price of
  bounding the flood when nothing else tells its requests apart.

What exceeds a budget is :class:`~wechat_oauth.exceptions.TooManyCodes` (a 429 page), raised
before the row is kept or WeChat is asked. A cache that fails lets the code through: the
budgets bound cost, they never decide a login.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .conf import app_settings
from .exceptions import CodeSpent, TooManyCodes, WeChatOAuthError
from .hashing import keyed_hash

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache
    from django.http import HttpRequest

logger = logging.getLogger("wechat_oauth.budget")

__all__ = ["CodeBudget", "forget_budgets", "remote_addr"]

#: Prefix of every budget counter's cache key (under the cache's own KEY_PREFIX).
KEY_PREFIX = "wechat_oauth:budget:"


def remote_addr(request: HttpRequest) -> str:
    """The default CLIENT_KEY: ``REMOTE_ADDR``. Behind a proxy, point CLIENT_KEY at a function
    that reads the address your proxy vouches for."""
    return str(request.META.get("REMOTE_ADDR", ""))


@dataclass(frozen=True)
class CodeBudget:
    """The budgets of one callback request: its login attempt and its client."""

    #: Names the login attempt (the state's nonce and the app).
    attempt: str
    #: Names the client (CLIENT_KEY's answer); hashed before it becomes a cache key.
    client: str

    @classmethod
    def for_request(cls, request: HttpRequest, *, attempt: str) -> CodeBudget:
        return cls(attempt=attempt, client=app_settings.CLIENT_KEY(request))

    def admit(self) -> None:
        """Called once per new code, before WeChat is asked: TooManyCodes past a budget."""
        try:
            cache = self._cache()
            garbage = cache.get(self._garbage_key(), 0)
            attempt_key = self._attempt_key()
            cache.add(attempt_key, 0, app_settings.STATE_MAX_AGE)
            codes = cache.incr(attempt_key)
        except Exception as error:  # any cache failure: the budget lets the code through
            logger.warning("code budget not checked (cache unusable): %s", type(error).__name__)
            return
        if codes > app_settings.MAX_CODES_PER_LOGIN:
            logger.warning("login attempt brought %d distinct codes: refused", codes)
            raise TooManyCodes("Too many codes for one login attempt")
        if garbage >= app_settings.GARBAGE_BUDGET:
            logger.warning(
                "client %s used up its budget of rejected codes: refused", self._client_hash()[:12]
            )
            raise TooManyCodes("Too many rejected codes from this client")

    def charge(self, error: WeChatOAuthError) -> None:
        """Called with the error of a new code's failed exchange: garbage counts."""
        if not isinstance(error, CodeSpent):
            return
        key = self._garbage_key()
        try:
            cache = self._cache()
            cache.add(key, 0, app_settings.GARBAGE_PERIOD)
            cache.incr(key)
        except Exception as error_:  # any cache failure: not counted
            logger.warning("rejected code not counted (cache unusable): %s", type(error_).__name__)

    def _cache(self) -> BaseCache:
        from django.core.cache import caches

        return caches[app_settings.BUDGET_CACHE_ALIAS]

    def _client_hash(self) -> str:
        return keyed_hash("budget.client", self.client)

    def _garbage_key(self) -> str:
        # One counter per client and period: it starts afresh when the period turns.
        period = int(time.time() // app_settings.GARBAGE_PERIOD)
        return f"{KEY_PREFIX}garbage:{self._client_hash()[:32]}:{period}"

    def _attempt_key(self) -> str:
        return f"{KEY_PREFIX}attempt:{keyed_hash('budget.attempt', self.attempt)[:32]}"


def forget_budgets() -> None:
    """Forget every budget counted so far, e.g. between the tests of a site's suite (a flood of
    made-up codes in one test must not refuse the next test's logins). On django-redis only
    these keys go; on any other cache the whole cache is cleared."""
    from django.core.cache import caches

    cache = caches[app_settings.BUDGET_CACHE_ALIAS]
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern(f"{KEY_PREFIX}*")
    else:
        cache.clear()
