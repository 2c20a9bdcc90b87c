"""The demo's configuration, without a browser (tests/test_browser.py clicks through it)."""

from __future__ import annotations

import os
import subprocess
import sys

from demo_project.fake import MOUNT, fake_wechat_urls
from tests.demo_server import _NOT_INHERITED, ROOT


def test_the_demo_points_every_wechat_url_at_its_fake() -> None:
    base = "http://127.0.0.1:8000" + MOUNT
    assert fake_wechat_urls("http://127.0.0.1:8000/") == {
        "API_BASE_URL": base,
        "AUTHORIZE_URL": f"{base}/connect/oauth2/authorize",
        "QRCONNECT_URL": f"{base}/connect/qrconnect",
        "WXLOGIN_JS_URL": f"{base}/connect/wxLogin.js",
    }


def test_the_demos_three_apps_pass_the_system_checks(tmp_path) -> None:
    """Its settings as ``python manage.py demo`` reads them: every app, on the fake, no issue."""
    env = {name: value for name, value in os.environ.items() if name not in _NOT_INHERITED}
    env["WECHAT_OAUTH_DEMO_DB"] = str(tmp_path / "db.sqlite3")
    script = (
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "from demo_project.fake import fake_state\n"
        "from wechat_oauth.registry import configured_apps, default_app_name\n"
        "call_command('check', fail_level='WARNING')\n"
        "apps = configured_apps()\n"
        "print(default_app_name(), *(f'{a.name}:{a.kind}:{a.scope}' for a in apps.values()))\n"
        "print(*sorted(app.app_id for app in fake_state().apps()))\n"
        "print(all(fake_state().app_secret_of(a.app_id) == a.app_secret for a in apps.values()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60,
                          env={**env, "DJANGO_SETTINGS_MODULE": "demo_project.settings"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-3:] == [
        "mp mp:mp:snsapi_userinfo web:open:snsapi_login mini:miniprogram:",
        "wxdemo000000000001 wxdemo000000000002 wxdemo000000000003",
        "True",
    ], done.stdout
