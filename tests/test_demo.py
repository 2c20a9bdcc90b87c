"""The demo's configuration, and its Mini Program panel's endpoints on the running demo, without a
browser (tests/test_browser.py clicks through it)."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from demo_project.fake import MOUNT, fake_wechat_urls
from tests.concurrency import run_together
from tests.demo_server import _NOT_INHERITED, ROOT, DemoServer
from wechat_oauth.testing import openid_for, unionid_for


def test_the_demo_points_every_wechat_url_at_its_fake() -> None:
    base = "http://127.0.0.1:8000" + MOUNT
    assert fake_wechat_urls("http://127.0.0.1:8000/") == {
        "API_BASE_URL": base,
        "AUTHORIZE_URL": f"{base}/connect/oauth2/authorize",
        "QRCONNECT_URL": f"{base}/connect/qrconnect",
        "WXLOGIN_JS_URL": f"{base}/connect/wxLogin.js",
        "WECOM_API_BASE_URL": base,
        "WECOM_SSO_URL": f"{base}/wwlogin/sso/login",
    }


def test_the_demos_apps_pass_the_system_checks(tmp_path) -> None:
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
        "print(all(fake_state().app_secret_of(a.app_id) == a.app_secret for a in apps.values()\n"
        "          if not a.is_wecom))\n"
        "print(*(fake_state().wecom_secret_of(a.app_id, a.agent_id) == a.app_secret\n"
        "        for a in apps.values() if a.is_wecom))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "DJANGO_SETTINGS_MODULE": "demo_project.settings"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-4:] == [
        "mp mp:mp:snsapi_userinfo web:open:snsapi_login mini:miniprogram: corp:wecom:snsapi_base",
        "wxdemo000000000001 wxdemo000000000002 wxdemo000000000003",
        "True",
        "True",
    ], done.stdout


# -- Drop-in modes without their library (tests/test_demo_allauth.py and test_demo_social.py
#    run them where it is installed) ---------------------------------------------------------

#: The top-level packages each drop-in mode needs (demo_project/drop_in.py), and its library.
DROP_IN_PACKAGES = {"allauth": ("allauth",), "social": ("social_django", "social_core")}
LIBRARIES = {"allauth": "django-allauth", "social": "python-social-auth"}


def test_demo_drop_in_allauth_without_allauth_is_a_command_error_naming_the_extra(tmp_path) -> None:
    """``python manage.py demo --drop-in allauth`` where allauth cannot be imported (a None in
    sys.modules hides it if it is installed): CommandError's one line, before any migration."""
    environ = {name: value for name, value in os.environ.items() if name not in _NOT_INHERITED}
    environ.update(
        WECHAT_OAUTH_DEMO_DB=str(tmp_path / "db.sqlite3"), DJANGO_SETTINGS_MODULE="demo_project.settings"
    )
    script = (
        "import sys\n"
        "sys.modules['allauth'] = None\n"
        "from django.core.management import execute_from_command_line\n"
        "execute_from_command_line(['manage.py', 'demo', '--drop-in', 'allauth', '127.0.0.1:9'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        "CommandError: The demo's allauth drop-in mode needs django-allauth, which is not "
        "installed here (no module named 'allauth'). Install it with this package's allauth "
        'extra, from the clone: pip install -e ".[allauth]"'
    ], done.stderr


@pytest.fixture
def without_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither library importable, whether installed or not (their import fails, find_spec
    finds nothing)."""
    for package in (name for names in DROP_IN_PACKAGES.values() for name in names):
        monkeypatch.setitem(sys.modules, package, None)


@pytest.mark.parametrize("mode", sorted(DROP_IN_PACKAGES))
def test_the_drop_in_flag_without_its_library_names_the_extra(mode, without_libraries) -> None:
    from django.core.management import CommandError, call_command

    from demo_project.management.commands.demo import Command

    with pytest.raises(CommandError) as raised:
        call_command(Command(), "--drop-in", mode, "127.0.0.1:9")
    assert f"The demo's {mode} drop-in mode needs {LIBRARIES[mode]}" in str(raised.value)
    assert str(raised.value).endswith(f'pip install -e ".[{mode}]"')


@pytest.mark.parametrize("mode", sorted(DROP_IN_PACKAGES))
def test_the_drop_in_variable_without_its_library_names_the_extra(
    mode, without_libraries, monkeypatch
) -> None:
    """WECHAT_OAUTH_DEMO_DROP_IN (what the flag sets for the server process): the demo's
    settings refuse to load, with the same message."""
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("WECHAT_OAUTH_DEMO_DROP_IN", mode)
    with pytest.raises(ImproperlyConfigured) as raised:
        runpy.run_module("demo_project.settings")
    assert str(raised.value).endswith(f'pip install -e ".[{mode}]"')


def test_an_unknown_drop_in_mode_is_refused(monkeypatch) -> None:
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("WECHAT_OAUTH_DEMO_DROP_IN", "wagtail")
    with pytest.raises(ImproperlyConfigured) as raised:
        runpy.run_module("demo_project.settings")
    assert str(raised.value) == (
        "WECHAT_OAUTH_DEMO_DROP_IN='wagtail': the demo's drop-in modes "
        "are allauth, social (unset: the plain demo)."
    )
    monkeypatch.setenv("WECHAT_OAUTH_DEMO_DROP_IN", "")
    assert runpy.run_module("demo_project.settings")["DEMO_DROP_IN"] == ""


# -- The Mini Program panel, on the running demo (no browser) ----------------------------------

#: The demo's Mini Program app (demo_project/settings.py) and its endpoints.
MINI_APP_ID = "wxdemo000000000003"
MINI_PAGE = "/mini/"
GUARDED_SESSION = "/wechat/mini/session/"
NAIVE_SESSION = "/naive/mini/session/"
MINI_REPORT = "/mini/report/"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """``python manage.py demo`` on a free port, its SQLite file and the fake WeChat its own."""
    directory = tmp_path_factory.mktemp("demo")
    with DemoServer(directory / "db.sqlite3", directory / "server.log") as server:
        yield server


def call(demo: DemoServer, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """GET ``path`` (or POST ``body`` as JSON): the status and the JSON answer (text if not JSON)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        demo.url + path, data=data, headers={"Content-Type": "application/json"} if data else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def wx_login(demo: DemoServer, person: str) -> str:
    """A fresh wx.login() code of the demo's Mini Program for ``person``, from the demo's fake."""
    status, body = call(demo, "/fake-wechat/_fake/js_codes", {"app_id": MINI_APP_ID, "person": person})
    assert status == 200, body
    return body["code"]


def upstream_calls(demo: DemoServer, code: str) -> int:
    """How many times the demo's fake WeChat received ``code`` (at sns/jscode2session)."""
    status, stats = call(demo, "/fake-wechat/_fake/stats?" + urllib.parse.urlencode({"code": code}))
    assert status == 200, stats
    return stats["exchange_calls"][code]


def new_person() -> str:
    return f"mini-{uuid.uuid4().hex[:12]}"


def post_twice_at_once(demo: DemoServer, path: str, code: str) -> list[tuple[int, Any]]:
    """Two POSTs of ``code`` released together, as a front end's onLaunch and onLoad send them."""
    results = run_together([lambda: call(demo, path, {"code": code})] * 2)
    assert [kind for kind, _ in results] == ["ok", "ok"], results
    return [value for _, value in results]


def test_the_mini_program_page_is_linked_from_home_and_names_its_endpoints(demo) -> None:
    status, home = call(demo, "/")
    assert status == 200
    assert f'href="{MINI_PAGE}"' in home and 'id="demo-mini"' in home

    # The plain demo: no drop-in's button (``demo --drop-in``, tests/test_demo_allauth.py).
    assert 'id="login-drop-in"' not in home and "drop-in" not in home.split("<body>", 1)[1]

    status, page = call(demo, MINI_PAGE)
    assert status == 200
    for needed in (
        'id="mini-guarded"',
        'id="mini-naive"',
        'id="mini-person"',
        GUARDED_SESSION,
        NAIVE_SESSION,
        MINI_REPORT,
        "/fake-wechat/_fake/js_codes",
        "Promise.all",
    ):
        assert needed in page, needed


def test_one_code_posted_twice_at_once_is_one_upstream_call_and_one_identity(demo) -> None:
    person = new_person()
    code = wx_login(demo, person)
    # WeChat slow on this code: the second POST arrives while the first one's call is in flight.
    status, _ = call(
        demo, "/fake-wechat/_fake/faults", {"endpoint": "jscode2session", "code": code, "delay": 0.4}
    )
    assert status == 200

    answers = post_twice_at_once(demo, GUARDED_SESSION, code)

    assert [status for status, _ in answers] == [200, 200], answers
    identities = {(body["openid"], body["unionid"], body["user_id"]) for _, body in answers}
    assert identities == {(openid_for(MINI_APP_ID, person), unionid_for(person), answers[0][1]["user_id"])}
    assert upstream_calls(demo, code) == 1
    status, report = call(
        demo, MINI_REPORT, {"person": person, "tokens": [body["token"] for _, body in answers]}
    )
    assert status == 200, report
    user_id = answers[0][1]["user_id"]
    assert report["token_users"] == [user_id, user_id]
    assert report["users"] == [user_id]
    assert [(a["app"], a["openid"]) for a in report["accounts"]] == [
        ("mini", openid_for(MINI_APP_ID, person))
    ]
    # The home page counts the Mini Program's code among the guarded ones, once exchanged.
    status, home = call(demo, "/")
    assert status == 200
    assert 'class="guarded-app" data-app="mini"' in home


def test_the_naive_session_endpoint_sends_the_code_to_wechat_twice_and_one_answer_fails(demo) -> None:
    person = new_person()
    code = wx_login(demo, person)

    answers = sorted(post_twice_at_once(demo, NAIVE_SESSION, code), key=lambda answer: answer[0])

    (ok_status, ok), (failed_status, failed) = answers
    assert (ok_status, failed_status) == (200, 502), answers
    assert ok["openid"] == openid_for(MINI_APP_ID, person)
    assert failed["errcode"] == 40163 and "code been used" in failed["errmsg"], failed
    assert upstream_calls(demo, code) == 2
    status, report = call(demo, MINI_REPORT, {"person": person, "tokens": [ok["token"]]})
    assert status == 200, report
    assert report["token_users"] == [ok["user_id"]] and report["users"] == [ok["user_id"]]


def test_the_naive_session_endpoints_second_post_of_a_code_fails(demo) -> None:
    code = wx_login(demo, new_person())

    first = call(demo, NAIVE_SESSION, {"code": code})
    second = call(demo, NAIVE_SESSION, {"code": code})

    assert first[0] == 200, first
    assert second[0] == 502 and second[1]["errcode"] == 40163, second
    assert upstream_calls(demo, code) == 2


def test_the_mini_program_endpoints_answer_bad_input_in_json(demo) -> None:
    assert call(demo, NAIVE_SESSION, {"code": ""})[0] == 400
    assert call(demo, NAIVE_SESSION, {"nothing": 1})[0] == 400
    status, report = call(demo, MINI_REPORT, {"person": "", "tokens": "x"})
    assert status == 400 and "error" in report
    status, report = call(demo, MINI_REPORT, {"person": new_person(), "tokens": ["forged"]})
    assert status == 200, report
    assert (report["users"], report["accounts"], report["token_users"]) == ([], [], [None])
