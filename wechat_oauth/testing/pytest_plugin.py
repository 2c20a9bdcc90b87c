"""pytest fixtures: ``fake_wechat_server`` (one per session) and ``fake_wechat`` (per test).

Opt-in: a site's ``conftest.py`` says ``pytest_plugins = ["wechat_oauth.testing.pytest_plugin"]``.
This module still imports nothing beyond pytest at import time (the fake and Django are
imported inside the fixtures), so loading it costs nothing until a fixture is used.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from wechat_oauth.testing.base import FakeWeChatBase
    from wechat_oauth.testing.server import FakeWeChat


@pytest.fixture(scope="session")
def fake_wechat_server() -> Iterator[FakeWeChat]:
    """One fake WeChat on 127.0.0.1 for the whole session."""
    from wechat_oauth.testing.server import FakeWeChat

    with FakeWeChat() as fake:
        yield fake


@pytest.fixture
def fake_wechat(fake_wechat_server: FakeWeChat) -> Iterator[FakeWeChat]:
    """The session's fake, reset, without latency, and ``WECHAT_OAUTH`` pointing at it."""
    fake_wechat_server.reset()
    fake_wechat_server.set_latency(0)
    with wechat_settings_override(fake_wechat_server):
        yield fake_wechat_server


@contextlib.contextmanager
def wechat_settings_override(fake: FakeWeChatBase) -> Iterator[None]:
    """Merge ``fake.settings()`` over ``settings.WECHAT_OAUTH`` (no-op without Django settings)."""
    if not _django_settings_available():
        yield
        return
    from django.conf import settings
    from django.test import override_settings

    merged = {**(getattr(settings, "WECHAT_OAUTH", None) or {}), **fake.settings()}
    with override_settings(WECHAT_OAUTH=merged):
        yield


def _django_settings_available() -> bool:
    try:
        from django.conf import settings
    except ImportError:
        return False
    return settings.configured or bool(os.environ.get("DJANGO_SETTINGS_MODULE"))
