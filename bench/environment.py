"""Bring up what a suite needs: a PostgreSQL database with the app's tables, a fake WeChat."""

from __future__ import annotations

import os


def setup_django() -> None:
    """Create the benchmark database afresh (same start for every run), configure, migrate."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname="postgres", autocommit=True
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{db["NAME"]}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{db["NAME"]}"')
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def point_settings_at(fake) -> None:  # type: ignore[no-untyped-def]
    """Make WECHAT_OAUTH talk to ``fake`` (settings are reloaded through setting_changed)."""
    from django.test.utils import override_settings

    override_settings(WECHAT_OAUTH=fake.settings()).enable()
