"""Everything the drop-in assumes about social-core and social-auth-app-django, in one place.

The backends override only hooks social-core documents for subclasses (``state_token``,
``auth_url``, ``validate_state``, ``request_access_token``, ``user_data``, ``do_auth``,
``auth_complete``, ``start``, ``get_scope``). What they rely on beyond that is named here, and
``tests/test_contrib_social.py::test_upstream_shape`` fails loudly, naming the assumption, when
a release of social-core changes one:

* ``WeixinOAuth2.auth_complete`` calls ``validate_state()``, then ``request_access_token()``
  once, then ``do_auth(access_token, response=<its answer>)``: the exchange happens in the one
  hook both backends share;
* ``BaseOAuth2.get_or_create_state()`` takes its state from ``state_token()`` and keeps it in the
  session (the transaction and the one-time nonce of social-core 6.2+);
* ``BaseOAuth2.validate_state()`` refuses a state the session no longer vouches for with
  :data:`STATE_REFUSALS` (a duplicate whose nonce the first request consumed, a refresh);
* ``social_core.actions.do_complete`` hands a response returned by ``backend.complete()`` to
  the browser unchanged (how partial pipelines answer; our pages and redirects use it);
* social-auth-app-django's strategy keeps the Django request as ``strategy.request``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from social_core.backends.weixin import WeixinOAuth2 as StockWeixinOAuth2
from social_core.backends.weixin import WeixinOAuth2APP as StockWeixinOAuth2APP
from social_core.exceptions import AuthInputError, AuthSessionError

from ...exceptions import ConfigurationError

if TYPE_CHECKING:
    from django.http import HttpRequest

__all__ = ["STATE_REFUSALS", "StockWeixinOAuth2", "StockWeixinOAuth2APP", "django_request"]

#: What ``BaseOAuth2.validate_state`` raises for a state the session does not vouch for.
STATE_REFUSALS: tuple[type[Exception], ...] = (AuthInputError, AuthSessionError)


def django_request(strategy: Any) -> HttpRequest:
    """The Django request of social-auth-app-django's ``DjangoStrategy``."""
    request = getattr(strategy, "request", None)
    if request is None or not hasattr(request, "COOKIES"):
        raise ConfigurationError(
            "wechat_oauth.contrib.social needs social-auth-app-django's strategy (a Django request)"
        )
    return request
