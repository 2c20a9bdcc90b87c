"""Link a WeChat identity to exactly one Django user, one user per person (unionid) across
the site's apps, even when first logins race."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NoReturn

from django.db import IntegrityError, OperationalError
from django.db.models import Q
from django.utils import timezone

from .adapter import get_adapter
from .exceptions import AccountLinkFailed
from .models import WeChatAccount, WeChatUnion
from .registry import WeChatApp, app_with_id, get_app
from .transactions import is_deadlock, write_transaction
from .users import unchecked_usernames

if TYPE_CHECKING:
    from .results import TokenResult, UserInfo

logger = logging.getLogger("wechat_oauth.identity")


#: How many times a first login retries its link after losing a race to a concurrent one.
LINK_ATTEMPTS = 3
#: Accounts read at most in the one SELECT of an identity and its person's other accounts
#: (a person has one per app; more than this many is unusual, and costs one more SELECT).
LINKED_ACCOUNTS_READ = 8


def link_account(
    token: TokenResult, *, app: WeChatApp | None = None, app_id: str | None = None, refresh: bool = True
) -> tuple[WeChatAccount, bool]:
    """The account of ``token.openid`` in ``app`` (created with its user if new) and whether
    it was created.

    One person, one user: a new identity whose unionid is already known (the same person
    through another app of the organisation) joins that unionid's user, unless the adapter's
    ``links_by_unionid`` says otherwise; an identity without a unionid (an app not bound to an
    Open Platform account) is linked by openid alone.

    Race-safe: two requests linking one new identity at once (WeChat's duplicate callbacks, two
    codes for one login, or one new person's first logins through two apps) each create what
    is missing inside one transaction; the unique (app_id, openid) of the account and the
    unique unionid of :class:`WeChatUnion` let one commit, the others roll back, users
    included, and link to the winner's rows. An IntegrityError with no winner behind it is the
    first try's unchecked username taken (see :func:`users.unchecked_usernames`): one more
    try, checking; on a later try (a CREATE_USER hook whose user collides with an existing
    one) it raises :class:`~wechat_oauth.exceptions.AccountLinkFailed`.

    ``refresh=False`` leaves an existing account as it is: a duplicate callback of a login
    has nothing new to write (the first request for its code updated the same row).
    """
    app = app or (app_with_id(app_id) if app_id else None) or get_app()
    for attempt in range(LINK_ATTEMPTS):
        account, kin = _account_and_kin(token, app)
        if account is not None:
            if refresh:
                _refresh(account, app, token)
            return account, False
        first_try = attempt == 0
        try:
            with write_transaction(WeChatAccount), unchecked_usernames(first_try):
                return _create(token, app, kin, person_may_exist=not first_try), True
        except IntegrityError as error:
            if not _lost_a_race(app, token):
                if not first_try:
                    _link_failed(token, error)
                logger.info("openid %s: its unchecked username was taken: again, checked", token.openid)
                continue
            logger.info(
                "openid %s met an existing link (a concurrent login's or its person's; attempt %d): again",
                token.openid,
                attempt + 1,
            )
        except OperationalError as error:
            if not is_deadlock(error):
                raise
            logger.info(
                "linking openid %s ended in a deadlock (attempt %d): again", token.openid, attempt + 1
            )
    raise AccountLinkFailed()


def _lost_a_race(app: WeChatApp, token: TokenResult) -> bool:
    """Whether a concurrent first login committed what ours collided with: this identity's
    account, or its unionid's person. If neither exists, the IntegrityError came from the
    user: the first try's unchecked username, or a CREATE_USER hook whose user collides with
    an existing one (which no retry would change)."""
    if WeChatAccount.objects.filter(app_id=app.app_id, openid=token.openid).exists():
        return True
    return bool(token.unionid) and WeChatUnion.objects.filter(unionid=token.unionid).exists()


def _link_failed(token: TokenResult, error: IntegrityError) -> NoReturn:
    logger.error(
        "openid %s could not be linked: creating its user or account failed "
        "and no concurrent login linked it (check CREATE_USER)",
        token.openid,
        exc_info=error,
    )
    raise AccountLinkFailed() from error


def _account_and_kin(token: TokenResult, app: WeChatApp) -> tuple[WeChatAccount | None, WeChatAccount | None]:
    """One SELECT: the identity's own account, and else the person's oldest account through
    another app (same unionid), or None for either."""
    mine = Q(app_id=app.app_id, openid=token.openid)
    wanted = mine | Q(unionid=token.unionid) if token.unionid else mine
    found = list(
        WeChatAccount.objects.select_related("user")
        .filter(wanted)
        .order_by("created_at", "pk")[:LINKED_ACCOUNTS_READ]
    )
    own = next((a for a in found if (a.app_id, a.openid) == (app.app_id, token.openid)), None)
    if own is None and len(found) == LINKED_ACCOUNTS_READ:
        # The person has that many accounts already: ask for this identity's own by its key.
        own = WeChatAccount.objects.select_related("user").filter(mine).first()
    return own, (found[0] if found and own is None else None)


def _create(
    token: TokenResult, app: WeChatApp, kin: WeChatAccount | None = None, *, person_may_exist: bool = True
) -> WeChatAccount:
    adapter = get_adapter()
    if token.unionid and adapter.links_by_unionid(app, token):
        user = _user_of_person(token, app, kin, person_may_exist=person_may_exist)
    else:
        user = adapter.create_user(app, token, token.profile)
    return WeChatAccount.objects.create(
        user=user,
        app_id=app.app_id,
        openid=token.openid,
        unionid=token.unionid,
        scope=token.scope,
        session_key=token.session_key,
        last_login_at=timezone.now(),
        **_profile_fields(token.profile),
    )


def _user_of_person(
    token: TokenResult, app: WeChatApp, kin: WeChatAccount | None, *, person_may_exist: bool = True
) -> Any:
    """The user of ``token.unionid``: the one already known, or a new one, registered as the
    person's in the same transaction (a concurrent first login of the person through another
    app waits on that row, then loses and links to this user). ``kin``: the person's oldest
    account, read with the identity's own (an account linked without its person row, made by
    hand or by a site's own code, still gives the person its user).

    ``person_may_exist=False`` (a first try that found no account of the person at all): the
    person's row is not read but inserted at once. It is almost always new; when its row
    outlived its accounts, or a concurrent first login registered it, the unique unionid
    refuses the INSERT, the transaction rolls back and :func:`link_account` tries again, reading
    it (a new person's first link saves a SELECT)."""
    may_exist = person_may_exist or kin is not None
    person = (
        WeChatUnion.objects.select_related("user").filter(unionid=token.unionid).first()
        if may_exist
        else None
    )
    if person is not None:
        get_adapter().populate_user(person.user, app, token.profile)
        return person.user
    user = kin.user if kin is not None else get_adapter().create_user(app, token, token.profile)
    WeChatUnion.objects.create(unionid=token.unionid, user=user)
    return user


def _refresh(account: WeChatAccount, app: WeChatApp, token: TokenResult) -> None:
    changes: dict[str, Any] = {
        "last_login_at": timezone.now(),
        "scope": token.scope,
        **_profile_fields(token.profile),
    }
    if token.unionid and not account.unionid:
        changes["unionid"] = token.unionid
    if token.session_key:
        changes["session_key"] = token.session_key
    for field, value in changes.items():
        setattr(account, field, value)
    account.save(update_fields=[*changes, "updated_at"])
    if token.profile is not None:
        get_adapter().populate_user(account.user, app, token.profile)


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
