"""The fake WeChat under ASGI (``python -m wechat_oauth.testing --asgi``, and
:class:`wechat_oauth.testing.asgi.WsgiInThreads`): requests overlap while the fake's latency
sleeps, and its codes mean what they mean under WSGI (single use; reuse 40163; unknown 40029)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib.util import find_spec
from typing import Any

import pytest
import requests

from wechat_oauth.testing import FakeWeChatProcess
from wechat_oauth.testing.asgi import WsgiInThreads, wsgi_environ

LATENCY = 0.4
CONCURRENT = 16


def http_scope(path: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"",
        "headers": [],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
        **extra,
    }


def test_a_mounted_request_keeps_its_mount_in_script_name_and_its_headers_and_query():
    environ = wsgi_environ(
        http_scope(
            "/fake-wechat/sns/oauth2/access_token",
            root_path="/fake-wechat",
            query_string=b"code=a%20b&appid=wx1",
            method="POST",
            headers=[
                (b"content-type", b"application/json"),
                (b"content-length", b"2"),
                (b"x-a", b"1"),
                (b"x-a", b"2"),
            ],
        ),
        b"{}",
    )
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/fake-wechat", "/sns/oauth2/access_token")
    assert environ["QUERY_STRING"] == "code=a%20b&appid=wx1"
    assert (environ["REQUEST_METHOD"], environ["CONTENT_TYPE"], environ["CONTENT_LENGTH"]) == (
        "POST",
        "application/json",
        "2",
    )
    assert environ["HTTP_X_A"] == "1,2" and environ["wsgi.input"].read() == b"{}"


def test_requests_to_the_adapter_overlap_while_the_wsgi_app_sleeps():
    """Each request's WSGI call in a thread of the adapter's pool: 16 sleeps of 0.4 s take
    about 0.4 s, not 6.4 (one thread) nor 1.6 (asyncio's 6 default threads on 2 cores)."""

    def slow(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        time.sleep(LATENCY)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["PATH_INFO"].encode()]

    app = WsgiInThreads(slow)

    async def one(index: int) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(http_scope(f"/{index}"), receive, send)
        return sent

    async def all_of_them() -> list[list[dict[str, Any]]]:
        return await asyncio.gather(*(one(i) for i in range(CONCURRENT)))

    started = time.perf_counter()
    answers = asyncio.run(all_of_them())
    elapsed = time.perf_counter() - started
    assert elapsed < 3 * LATENCY, f"{CONCURRENT} requests took {elapsed:.2f} s: serialized"
    assert [(a[0]["status"], a[1]["body"]) for a in answers] == [
        (200, f"/{i}".encode()) for i in range(CONCURRENT)
    ]


@pytest.fixture(scope="module")
def asgi_fake() -> Iterator[FakeWeChatProcess]:
    if find_spec("uvicorn") is None:
        pytest.skip("uvicorn is not installed (pip install -e '.[test]')")
    fake = FakeWeChatProcess(latency=LATENCY, asgi=True)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def exchange(fake: FakeWeChatProcess, code: str) -> dict[str, Any]:
    answer = requests.get(
        f"{fake.base_url}/sns/oauth2/access_token",
        timeout=10,
        params={
            "appid": fake.app_id,
            "secret": fake.app_secret,
            "code": code,
            "grant_type": "authorization_code",
        },
    )
    assert answer.status_code == 200
    return answer.json()


def test_the_fake_under_asgi_is_served_by_uvicorn_and_answers_concurrent_exchanges_together(asgi_fake):
    assert requests.get(f"{asgi_fake.base_url}/", timeout=5).headers["server"] == "uvicorn"
    codes = [asgi_fake.issue_code() for _ in range(CONCURRENT)]
    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENT) as pool:
        answers = list(pool.map(lambda code: exchange(asgi_fake, code), codes))
    elapsed = time.perf_counter() - started
    assert elapsed < 3 * LATENCY, f"{CONCURRENT} exchanges took {elapsed:.2f} s: serialized"
    assert all("access_token" in answer for answer in answers), answers


def test_the_fake_under_asgi_spends_a_code_once_and_knows_no_other(asgi_fake):
    code = asgi_fake.issue_code()
    first = exchange(asgi_fake, code)
    assert "access_token" in first and first["openid"]
    assert exchange(asgi_fake, code)["errcode"] == 40163
    assert exchange(asgi_fake, "never-issued")["errcode"] == 40029
    assert asgi_fake.exchange_calls(code) == 2
