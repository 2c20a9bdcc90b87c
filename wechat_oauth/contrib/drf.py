"""Django REST framework authentication by a Mini Program's session token (DRF is optional:
this module is imported only by sites that name it).

.. code-block:: python

    REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [
        "wechat_oauth.contrib.drf.SessionTokenAuthentication", ...]}
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from ..miniprogram import account_for_token, bearer_token

__all__ = ["SessionTokenAuthentication"]


class SessionTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <token>`` from ``POST <app>/session/``: the token's user, a 401
    for a token that is forged, expired or revoked, and no opinion without the header."""

    def authenticate(self, request: Any) -> tuple[Any, str] | None:
        token = bearer_token(request)
        if token is None:
            return None
        account = account_for_token(token)
        if account is None:
            raise exceptions.AuthenticationFailed("Invalid or expired session token")
        return account.user, token

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="wechat_oauth"'
