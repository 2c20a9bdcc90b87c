"""Mini Program login: ``POST <app>/session/`` with ``wx.login()``'s code, a session token back.

The code goes through the same :func:`~wechat_oauth.guard.exchange_once` fence as a web
login's: a front end that calls ``wx.login()`` twice, or retries the POST, or sends the same
code to two servers, gets the first exchange's answer, and WeChat is asked once (a second
``jscode2session`` would also rotate the session_key and break the decryption of the data the
first one was meant for).

The answer is a session token: signed (SECRET_KEY, and its fallbacks), expiring after
SESSION_TOKEN_MAX_AGE, revocable per identity (:func:`revoke`). Sent back as
``Authorization: Bearer <token>``, WeChatOAuthMiddleware makes ``request.user`` its user.
The session_key never leaves the server: :func:`session_key_of` reads it.
"""

from __future__ import annotations

from typing import Any

from django.core import signing
from django.db.models import F

from .conf import app_settings
from .decrypt import decrypt_user_data
from .models import WeChatAccount

__all__ = ["account_for_token", "bearer_token", "decrypt", "issue_token", "revoke", "session_key_of"]

_SALT = "wechat_oauth.miniprogram.session"


def issue_token(account: WeChatAccount) -> str:
    """A session token for ``account``'s user, valid until it expires or :func:`revoke`."""
    return signing.dumps({"a": account.pk, "v": account.token_version}, salt=_SALT, compress=True)


def account_for_token(token: str) -> WeChatAccount | None:
    """The account a genuine, unexpired, unrevoked token names (its user active), or None."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=app_settings.SESSION_TOKEN_MAX_AGE)
    except signing.BadSignature:  # forged, altered, or expired (SignatureExpired)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("a"), int):
        return None
    account = (
        WeChatAccount.objects.select_related("user")
        .filter(
            # A token without "v" (None) matches no account: token_version is never NULL.
            pk=data["a"],
            token_version=data.get("v"),  # type: ignore[misc]  # None is meant (see above)
        )
        .first()
    )
    if account is None or not account.user.is_active:
        return None
    return account


def bearer_token(request: Any) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if the request has one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def revoke(account: WeChatAccount) -> None:
    """Make every session token issued so far for ``account`` invalid."""
    WeChatAccount.objects.filter(pk=account.pk).update(token_version=F("token_version") + 1)


def session_key_of(account: WeChatAccount) -> str:
    """The identity's latest session_key (for decrypting getPhoneNumber/getUserInfo data)."""
    return str(
        WeChatAccount.objects.filter(pk=account.pk).values_list("session_key", flat=True).first() or ""
    )


def decrypt(account: WeChatAccount, encrypted_data: str, iv: str) -> dict[str, Any]:
    """The getPhoneNumber / getUserInfo data of ``account``'s user, decrypted with its stored
    session_key and checked against its app id (see :func:`~wechat_oauth.decrypt.decrypt_user_data`:
    DecryptionFailed, or ConfigurationError without the ``miniprogram`` extra)."""
    return decrypt_user_data(session_key_of(account), encrypted_data, iv, app_id=account.app_id)
