"""The stored outcome of one code's exchange, and how a duplicate replays it.

One shape for both stores: the ``OAuthCodeUse`` row and the cache front's JSON copy of it, so
that a duplicate answered from either gets exactly the same result or error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from .conf import app_settings
from .exceptions import CodeSpent, error_class_for_key
from .results import TokenResult, UserInfo

if TYPE_CHECKING:
    from .models import OAuthCodeUse

EXCHANGED, FAILED = "exchanged", "failed"


@dataclass(frozen=True)
class StoredOutcome:
    code_use_id: int
    first_seen_at: datetime
    status: str
    #: The first request's login attempt and browser: a duplicate must match both (see
    #: :func:`wechat_oauth.guard.duplicates.same_login`).
    state_hash: str = ""
    fingerprint: str = ""
    openid: str = ""
    unionid: str = ""
    scope: str = ""
    is_snapshot_user: bool = False
    access_token: str = ""
    refresh_token: str = ""
    session_key: str = ""
    #: WeChat's userinfo answer, when the profile was fetched with the token.
    profile: dict[str, Any] | None = None
    access_token_expires_at: datetime | None = None
    refresh_token_expires_at: datetime | None = None
    error: str = ""
    errcode: int | None = None
    errmsg: str = ""
    request_id: str = ""

    @classmethod
    def from_row(cls, row: OAuthCodeUse) -> StoredOutcome:
        return cls(**{name: getattr(row, name) for name in _ROW_FIELDS}, code_use_id=row.pk)

    @property
    def window_closes_at(self) -> datetime:
        return self.first_seen_at + timedelta(seconds=app_settings.DEDUPE_WINDOW)

    def replay(self, now: datetime | None = None) -> TokenResult:
        """The token result, or the stored error raised again.

        Past the dedupe window the code is simply spent: a later request must start a new
        login rather than be logged in by a code that may have leaked (e.g. through a log).
        """
        if (now or timezone.now()) >= self.window_closes_at or self.status not in (EXCHANGED, FAILED):
            raise CodeSpent("The authorisation code was already used")
        if self.status == FAILED:
            raise error_class_for_key(self.error)(
                errcode=self.errcode, errmsg=self.errmsg, request_id=self.request_id
            )
        assert self.access_token_expires_at is not None and self.refresh_token_expires_at is not None
        return TokenResult(
            access_token=self.access_token,
            refresh_token=self.refresh_token,
            session_key=self.session_key,
            openid=self.openid,
            unionid=self.unionid,
            scope=self.scope,
            is_snapshot_user=self.is_snapshot_user,
            expires_at=self.access_token_expires_at,
            refresh_expires_at=self.refresh_token_expires_at,
            raw={},
            profile=UserInfo.from_payload(self.profile) if self.profile else None,
        )

    def to_json(self) -> str:
        # Field by field: asdict() would deep-copy the profile for nothing.
        return json.dumps(
            {field.name: _encode(getattr(self, field.name)) for field in fields(self)}, separators=(",", ":")
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> StoredOutcome:
        data: dict[str, Any] = json.loads(text)
        for name in _DATETIME_FIELDS:
            if data.get(name) is not None:
                data[name] = datetime.fromisoformat(data[name])
        return cls(**data)


_ROW_FIELDS = [name for name in StoredOutcome.__dataclass_fields__ if name != "code_use_id"]
_DATETIME_FIELDS = ("first_seen_at", "access_token_expires_at", "refresh_token_expires_at")


def _encode(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
