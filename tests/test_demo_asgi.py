"""The demo under ASGI (``python manage.py demo --asgi``): uvicorn serves the site and its fake
WeChat from one process, and a view's call to the fake (a request to this very server) is
answered while the view waits: one wx.login() code POSTed twice at once is one upstream call
and one identity, as under runserver (tests/test_demo.py)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from importlib.util import find_spec

import pytest

from tests.demo_server import DemoServer
from tests.test_demo import (
    GUARDED_SESSION,
    MINI_APP_ID,
    call,
    new_person,
    post_twice_at_once,
    upstream_calls,
    wx_login,
)
from wechat_oauth.testing import openid_for


@pytest.fixture(scope="module")
def asgi_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    if find_spec("uvicorn") is None:
        pytest.skip("uvicorn is not installed (pip install -e '.[test]')")
    directory = tmp_path_factory.mktemp("demo-asgi")
    with DemoServer(directory / "db.sqlite3", directory / "server.log", asgi=True) as server:
        yield server


def test_the_demo_starts_under_uvicorn_and_serves_its_pages_its_fake_and_static_files(asgi_demo):
    for path, expected in (
        ("/", "Log in with WeChat"),
        ("/fake-wechat/", "Fake WeChat"),
        ("/static/admin/css/base.css", ""),
    ):
        with urllib.request.urlopen(asgi_demo.url + path, timeout=30) as response:
            assert response.status == 200, path
            assert response.headers["server"] == "uvicorn", path
            assert expected in response.read().decode(), path
    assert "uvicorn (ASGI" in asgi_demo.log()


def test_under_asgi_one_code_posted_twice_at_once_is_one_upstream_call(asgi_demo):
    person = new_person()
    code = wx_login(asgi_demo, person)
    status, _ = call(
        asgi_demo, "/fake-wechat/_fake/faults", {"endpoint": "jscode2session", "code": code, "delay": 0.4}
    )
    assert status == 200
    answers = post_twice_at_once(asgi_demo, GUARDED_SESSION, code)
    assert [status for status, _ in answers] == [200, 200], answers
    assert {body["openid"] for _, body in answers} == {openid_for(MINI_APP_ID, person)}
    assert len({body["user_id"] for _, body in answers}) == 1
    assert upstream_calls(asgi_demo, code) == 1
