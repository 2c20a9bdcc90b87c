"""The apps a fake WeChat knows, and the persons behind its openids.

WeChat gives each app its own openid for a person, and every app bound to one Open Platform
account the same unionid for that person. :func:`openid_for` and :func:`unionid_for` derive
them from a person's name, deterministically, so a test can predict what the fake answers.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from dataclasses import dataclass, field

#: The person the consent page offers.
DEFAULT_PERSON = "alice"


def _new_secret() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class FakeApp:
    """One app: its appid, its secret (random if not given) and whether it is bound to an
    Open Platform account (``unionid=False``: its answers never carry a unionid)."""

    app_id: str
    app_secret: str = field(default_factory=_new_secret)
    unionid: bool = True

    def __post_init__(self) -> None:
        if not self.app_id or not self.app_secret:
            raise ValueError("an app needs a non-empty app_id and app_secret")


def _derived_id(first: str, *parts: str) -> str:
    """28 characters like WeChat's ids: ``first`` and 27 URL-safe characters hashed from parts."""
    digest = hashlib.sha256("\0".join(parts).encode("utf-8")).digest()
    return first + base64.urlsafe_b64encode(digest).decode("ascii")[:27]


def openid_for(app_id: str, person: str) -> str:
    """The openid of ``person`` in app ``app_id`` (a different one in every app)."""
    return _derived_id("o", "openid", app_id, person)


def unionid_for(person: str) -> str:
    """The unionid of ``person``: the same in every app bound to the Open Platform account."""
    return _derived_id("u", "unionid", person)


class AppRegistry:
    """The apps of one fake, by appid (thread-safe; apps are added, never removed)."""

    def __init__(self, app_id: str, app_secret: str | None = None) -> None:
        """The registry of one app, the default one (random secret if none is given)."""
        self.default = FakeApp(app_id, app_secret if app_secret is not None else _new_secret())
        self._apps = {app_id: self.default}
        self._lock = threading.Lock()

    def add(self, app_id: str, app_secret: str | None = None, *, unionid: bool = True) -> FakeApp:
        """The app of ``app_id``, added if new (with a random secret if none is given).

        A known appid is fine with no secret or its own, and the same binding; anything else
        is a ``ValueError`` (an app does not change).
        """
        with self._lock:
            known = self._apps.get(app_id)
            if known is None:
                secret = app_secret if app_secret is not None else _new_secret()
                known = self._apps[app_id] = FakeApp(app_id, secret, unionid)
                return known
        if app_secret is not None and app_secret != known.app_secret:
            raise ValueError(f"app {app_id} is known with another secret")
        if unionid != known.unionid:
            bound = "bound to" if known.unionid else "not bound to"
            raise ValueError(f"app {app_id} is known as {bound} an Open Platform account (unionid)")
        return known

    def get(self, app_id: str | None) -> FakeApp:
        """The app of ``app_id`` (``None``: the default one); ``ValueError`` if unknown."""
        if app_id is None:
            return self.default
        with self._lock:
            app = self._apps.get(app_id)
        if app is None:
            raise ValueError(f"unknown app {app_id!r}: add it with add_app() first")
        return app

    def find(self, app_id: str | None) -> FakeApp | None:
        """The app of ``app_id``, or None if it is not known (or not given)."""
        with self._lock:
            return self._apps.get(app_id) if app_id else None

    def all(self) -> list[FakeApp]:
        with self._lock:
            return list(self._apps.values())
