"""Authentication backend: a WeChatAccount authenticates its user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend
from django.http import HttpRequest

from .models import WeChatAccount

BACKEND_PATH = "wechat_oauth.backends.WeChatBackend"


class WeChatBackend(BaseBackend):
    """Add ``"wechat_oauth.backends.WeChatBackend"`` to ``AUTHENTICATION_BACKENDS``.

    ``authenticate(request, wechat_account=account)`` returns the account's user if it may
    log in. Permissions are left to the other backends (usually ModelBackend).
    """

    def authenticate(
        self, request: HttpRequest | None, wechat_account: WeChatAccount | None = None, **kwargs: Any
    ) -> Any:
        if wechat_account is None:
            return None
        user = wechat_account.user
        return user if getattr(user, "is_active", True) else None

    def get_user(self, user_id: Any) -> Any:
        model = get_user_model()
        try:
            user = model._default_manager.get(pk=user_id)
        except model.DoesNotExist:
            return None
        return user if getattr(user, "is_active", True) else None
