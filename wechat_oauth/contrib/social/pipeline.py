"""A pipeline step: one user per person across the organisation's WeChat apps (by unionid).

WeChat gives each app its own openid for a person, and the apps bound to one Open Platform
account one ``unionid``. social-auth's uid stays the openid (so the rows the stock backends made
keep matching); the unionid is kept in ``extra_data["unionid"]`` by the drop-in backends. Put
the step after ``social_user`` and before ``get_username`` / ``create_user``:

.. code-block:: python

    SOCIAL_AUTH_PIPELINE = (
        "social_core.pipeline.social_auth.social_details",
        "social_core.pipeline.social_auth.social_names",
        "social_core.pipeline.social_auth.social_uid",
        "social_core.pipeline.social_auth.auth_allowed",
        "social_core.pipeline.social_auth.social_user",
        "wechat_oauth.contrib.social.pipeline.associate_by_unionid",
        "social_core.pipeline.user.get_username",
        "social_core.pipeline.user.create_user",
        "social_core.pipeline.social_auth.associate_user",
        "social_core.pipeline.social_auth.load_extra_data",
        "social_core.pipeline.user.user_details",
    )

A new identity (no association yet, nobody logged in) whose unionid an association of any
WeChat backend of the site already holds (``weixin``, ``weixinapp``, a subclass of either)
joins that association's user; ``associate_user`` then records the new openid for it. Rows
made by the stock backends carry no unionid until their next login through a drop-in backend.
Several users holding one unionid (made before the step was there) link to the oldest
association's. Two first logins of one new person through two apps at the same instant may
still make two users: social-auth creates users outside any lock (this app's own views do not
have that limit).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from social_core.backends.utils import load_backends

from .upstream import StockWeixinOAuth2

logger = logging.getLogger("wechat_oauth.social")

__all__ = ["associate_by_unionid", "wechat_providers"]


def wechat_providers() -> list[str]:
    """The names of the site's WeChat backends (stock or drop-in) in AUTHENTICATION_BACKENDS."""
    return [
        name
        for name, backend in load_backends(settings.AUTHENTICATION_BACKENDS).items()
        if issubclass(backend, StockWeixinOAuth2)
    ]


def associate_by_unionid(
    backend: Any,
    response: dict[str, Any] | None = None,
    user: Any = None,
    social: Any = None,
    *args: Any,
    **kwargs: Any,
) -> dict[str, Any] | None:
    if user is not None or social is not None or not isinstance(backend, StockWeixinOAuth2):
        return None
    unionid = str((response or {}).get("unionid") or "")
    if not unionid:
        return None
    storage = backend.strategy.storage.user
    known = (
        storage.objects.filter(provider__in=wechat_providers(), extra_data__unionid=unionid)
        .select_related("user")
        .order_by("pk")
        .first()
    )
    if known is None:
        return None
    logger.info(
        "unionid of openid %s known from %s: linked to user %s",
        (response or {}).get("openid", "-"),
        known.provider,
        known.user_id,
    )
    return {"user": known.user, "is_new": False}
