"""Link a WeChat identity to exactly one Django user, even when first logins race."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError
from django.db.models import QuerySet
from django.utils import timezone

from .conf import app_settings
from .exceptions import AccountLinkFailed
from .models import WeChatAccount
from .transactions import write_transaction

if TYPE_CHECKING:
    from .results import TokenResult, UserInfo

logger = logging.getLogger("wechat_oauth.identity")


def link_account(token: TokenResult, *, app_id: str | None = None,
                 refresh: bool = True) -> tuple[WeChatAccount, bool]:
    """The account of ``token.openid`` (created with its user if new) and whether it was created.

    The profile fields come from ``token.profile`` (fetched with the token under
    snsapi_userinfo; None under snsapi_base).

    Race-safe: two requests linking one new openid at once (WeChat's duplicate callbacks, or
    two codes for one login) both create a user and an account inside a transaction; the
    account's unique (app_id, openid) constraint lets one commit, the other rolls back, user
    included, and returns the winner's account. Exactly one user per identity. An
    IntegrityError with no winner's account behind it (a CREATE_USER hook whose user collides
    with an existing one) raises :class:`~wechat_oauth.exceptions.AccountLinkFailed`.

    ``refresh=False`` leaves an existing account as it is: a duplicate callback of a login
    has nothing new to write (the first request for its code updated the same row).
    """
    app_id = app_id or app_settings.APP_ID
    accounts = WeChatAccount.objects.select_related("user")
    account = accounts.filter(app_id=app_id, openid=token.openid).first()
    created = False
    if account is None:
        try:
            with write_transaction(WeChatAccount):
                account = _create(token, app_id)
                created = True
        except IntegrityError as error:
            account = _linked_concurrently(accounts, app_id, token.openid, error)
    if not created and refresh:
        _refresh(account, token)
    return account, created


def _linked_concurrently(accounts: QuerySet[WeChatAccount], app_id: str, openid: str,
                         error: IntegrityError) -> WeChatAccount:
    """The account a concurrent first login of ``openid`` committed, whose user or account
    INSERT made ours fail; :class:`AccountLinkFailed` if there is none, since the
    IntegrityError then came from something else (a CREATE_USER hook whose user collides with
    an existing one), which no retry of this login would change."""
    account = accounts.filter(app_id=app_id, openid=openid).first()
    if account is None:
        logger.error("openid %s could not be linked: creating its user or account failed "
                     "and no concurrent login linked it (check CREATE_USER)", openid,
                     exc_info=error)
        raise AccountLinkFailed() from error
    logger.info("openid %s was linked by a concurrent login", openid)
    return account


def _create(token: TokenResult, app_id: str) -> WeChatAccount:
    user = _user_of_unionid(token.unionid) or app_settings.CREATE_USER(token, token.profile)
    return WeChatAccount.objects.create(
        user=user, app_id=app_id, openid=token.openid, unionid=token.unionid, scope=token.scope,
        last_login_at=timezone.now(), **_profile_fields(token.profile))


def _user_of_unionid(unionid: str) -> Any:
    """The user already linked to ``unionid`` through another app of the organisation."""
    if not unionid:
        return None
    other = WeChatAccount.objects.select_related("user").filter(unionid=unionid).first()
    return other.user if other is not None else None


def _refresh(account: WeChatAccount, token: TokenResult) -> None:
    changes: dict[str, Any] = {"last_login_at": timezone.now(), "scope": token.scope,
                               **_profile_fields(token.profile)}
    if token.unionid and not account.unionid:
        changes["unionid"] = token.unionid
    for field, value in changes.items():
        setattr(account, field, value)
    account.save(update_fields=[*changes, "updated_at"])


def _profile_fields(profile: UserInfo | None) -> dict[str, Any]:
    if profile is None:
        return {}
    return {
        "nickname": profile.nickname[:100],
        "sex": profile.sex,
        "province": profile.province[:64],
        "city": profile.city[:64],
        "country": profile.country[:64],
        "headimgurl": profile.headimgurl[:512],
        "privilege": list(profile.privilege),
    }
