"""Signals a site can connect to. Every one is sent after the database row has committed.

``code_exchanged(sender=OAuthCodeUse, code_use, token)``
    The one upstream exchange of a code succeeded. ``token`` is the
    :class:`~wechat_oauth.client.TokenResult` (it holds live tokens: do not log it).
``exchange_failed(sender=OAuthCodeUse, code_use, error)``
    The one upstream exchange of a code failed for good; ``error`` is the typed exception.
``duplicate_absorbed(sender=OAuthCodeUse, code_use_id, code_use, gap_ms, waited, source)``
    A duplicate callback reused an exchange instead of spending the code again. ``gap_ms`` is
    the time since the code was first seen; ``waited`` is True when the duplicate arrived while
    the exchange was still in flight and waited for it; ``source`` is ``"database"`` or
    ``"cache"`` (the django-redis front answered: then ``code_use`` is None, no row was read).
``wechat_login(sender=WeChatAccount, request, user, account, created)``
    A WeChat login completed and ``user`` is now logged in; ``created`` is True when the
    account link (and, with the default hook, the user) was created by this login.
"""

from django.dispatch import Signal

code_exchanged = Signal()
exchange_failed = Signal()
duplicate_absorbed = Signal()
wechat_login = Signal()
