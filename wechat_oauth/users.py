"""The default ``CREATE_USER`` hook: how a new WeChat identity becomes a Django user."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

from django.contrib.auth import get_user_model
from django.utils.crypto import get_random_string

if TYPE_CHECKING:
    from django.db.models import Field

    from .results import TokenResult, UserInfo

#: Characters of the suffix that tells apart a username whose ``wx_<openid>`` was taken.
SUFFIX_LENGTH = 6
SUFFIX_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
#: Suffixes tried before giving up (the hook's IntegrityError then ends in a readable page).
SUFFIX_ATTEMPTS = 5


def create_user(token: TokenResult, profile: UserInfo | None) -> Any:
    """A user named after the openid, with no usable password and the nickname as first name.

    The username is ``wx_<openid>``, so two racing first logins of one identity try to create
    the same user and the database keeps one (see :func:`identity.link_account`). If a user of
    that name exists already (made by someone else, or left behind when an admin deleted the
    identity's WeChatAccount, which unlinks it), the new user is
    ``wx_<openid>_<random suffix>``: the identity never takes over a user it is not linked to.
    Replace this with ``WECHAT_OAUTH["CREATE_USER"] = "myapp.users.create"`` to decide
    otherwise; the hook runs inside the transaction that creates the account link.
    """
    model = get_user_model()
    fields: dict[str, Any] = {model.USERNAME_FIELD: free_username(f"wx_{token.openid}")}
    if profile is not None and profile.nickname and hasattr(model, "first_name"):
        fields["first_name"] = profile.nickname[:150]
    user = model(**fields)
    user.set_unusable_password()
    user.save()
    return user


#: Set by :func:`identity.link_account` for its first try at a new identity (see
#: :func:`unchecked_usernames`).
_unchecked: ContextVar[bool] = ContextVar("wechat_oauth_unchecked_usernames", default=False)


@contextmanager
def unchecked_usernames(unchecked: bool = True) -> Iterator[None]:
    """Inside: :func:`free_username` takes the wanted name without asking the database.
    ``wx_<openid>`` is almost never taken, so asking first costs every new person a SELECT
    to spare a few a retry: a taken name makes the user's INSERT fail on the unique username,
    the link's transaction rolls back, and :func:`identity.link_account` tries again outside,
    where the name is checked."""
    token = _unchecked.set(unchecked)
    try:
        yield
    finally:
        _unchecked.reset(token)


def free_username(wanted: str) -> str:
    """``wanted`` if no user has it, else ``wanted`` with a random suffix that no user has,
    both cut to the username field's max_length (inside :func:`unchecked_usernames`:
    ``wanted``, cut, unchecked).

    Checked, not locked: a user created in between (a racing first login of the same openid)
    makes the save fail with IntegrityError, which :func:`identity.link_account` handles.
    """
    model = get_user_model()
    # USERNAME_FIELD names a concrete field (a column), never a relation.
    max_length = cast("Field[Any, Any]", model._meta.get_field(model.USERNAME_FIELD)).max_length or 150
    candidate = wanted[:max_length]
    if _unchecked.get():
        return candidate
    base = wanted[: max_length - SUFFIX_LENGTH - 1]
    for _attempt in range(SUFFIX_ATTEMPTS):
        if not model._default_manager.filter(**{model.USERNAME_FIELD: candidate}).exists():
            break
        candidate = f"{base}_{get_random_string(SUFFIX_LENGTH, SUFFIX_CHARS)}"
    return candidate
