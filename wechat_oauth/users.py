"""The default ``CREATE_USER`` hook: how a new WeChat identity becomes a Django user."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model

if TYPE_CHECKING:
    from .client import TokenResult, UserInfo


def create_user(token: TokenResult, profile: UserInfo | None) -> Any:
    """A user named ``wx_<openid>`` with no usable password and the nickname as first name.

    The username is derived from the openid, so two racing first logins of one identity try
    to create the same user and the database keeps one (see :func:`identity.link_account`).
    Replace this with ``WECHAT_OAUTH["CREATE_USER"] = "myapp.users.create"`` to decide
    otherwise; the hook runs inside the transaction that creates the account link.
    """
    model = get_user_model()
    fields: dict[str, Any] = {model.USERNAME_FIELD: f"wx_{token.openid}"[:150]}
    if profile is not None and profile.nickname and hasattr(model, "first_name"):
        fields["first_name"] = profile.nickname[:150]
    user = model(**fields)
    user.set_unusable_password()
    user.save()
    return user
