"""Keyed hashes of codes and states: what the database stores instead of the raw values."""

from __future__ import annotations

from django.conf import settings
from django.utils.crypto import salted_hmac

from .conf import app_settings


def signing_keys() -> list[str | bytes]:
    """The key of every HMAC this app makes, first; then keys still accepted when verifying.

    HASH_KEY when it is set; otherwise SECRET_KEY, then SECRET_KEY_FALLBACKS (so rotating
    SECRET_KEY does not break logins in progress).
    """
    if app_settings.HASH_KEY:
        return [app_settings.HASH_KEY]
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]


def keyed_hash(purpose: str, value: str, *, secret: str | bytes | None = None) -> str:
    """HMAC-SHA256 of ``value`` (64 hex characters), keyed by HASH_KEY or SECRET_KEY.

    A keyed hash, not a bare digest: codes are short and drawn from a small alphabet, so an
    unkeyed hash in a leaked database could be brute-forced back to codes still in flight.
    ``secret``: the key to use instead of :func:`signing_keys`' first (settings are then not
    read), for a process outside the site that needs the site's hashes (the storm benchmark).
    """
    if secret is None:
        secret = signing_keys()[0]
    return salted_hmac(f"wechat_oauth.{purpose}", value, secret=secret, algorithm="sha256").hexdigest()


def code_hash(code: str, *, secret: str | bytes | None = None) -> str:
    return keyed_hash("code", code, secret=secret)


def state_hash(state: str) -> str:
    return keyed_hash("state", state) if state else ""
