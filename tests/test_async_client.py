"""The async client (httpx): what it sends, and that every answer and transport failure becomes
the same typed error as on the sync client. Unit tests on httpx.MockTransport (the async
counterpart of ``responses``); the transport failures also over real sockets."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import responses

from tests.test_client import (
    ACCESS_TOKEN,
    ACCESS_TOKEN_URL,
    APP_ID,
    CODE,
    OPENID,
    SECRET,
    TOKEN_PAYLOAD,
    USERINFO_PAYLOAD,
    USERINFO_URL,
)
from tests.test_client import hanging_up_port as hanging_up_port
from tests.test_client import refusing_port as refusing_port
from tests.test_client import silent_port as silent_port
from wechat_oauth import async_client as async_client_module
from wechat_oauth.async_client import AsyncWeChatClient, async_client_for
from wechat_oauth.client import WeChatClient
from wechat_oauth.exceptions import (
    ERRCODE_CLASSES,
    UpstreamTimeout,
    UpstreamUnavailable,
    WeChatOAuthError,
)

Handler = Callable[[httpx.Request], httpx.Response]


def async_client(handler: Handler, **options: Any) -> AsyncWeChatClient:
    sync = WeChatClient(APP_ID, SECRET, **options)
    return AsyncWeChatClient(sync, transport=httpx.MockTransport(handler))


def answering(
    status: int = 200,
    body: Any = None,
    *,
    content: bytes | None = None,
    seen: list[httpx.Request] | None = None,
) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if content is not None:
            return httpx.Response(status, content=content)
        return httpx.Response(status, json=body)

    return handle


def failing(error: type[httpx.HTTPError]) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        raise error("boom " + str(request.url), request=request)

    return handle


def test_exchange_sends_what_the_sync_client_sends_and_reads_the_token():
    seen: list[httpx.Request] = []
    client = async_client(answering(body=TOKEN_PAYLOAD, seen=seen))

    token = asyncio.run(client.exchange_code(CODE))

    assert (token.access_token, token.openid) == (ACCESS_TOKEN, OPENID)
    [request] = seen
    assert str(request.url).split("?")[0] == ACCESS_TOKEN_URL
    assert parse_qsl(request.url.query.decode()) == client.sync.exchange_params(CODE)
    assert request.headers["User-Agent"].startswith("django-wechat-oauth/")


def test_exchange_with_profile_fetches_userinfo_in_the_app_language():
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=USERINFO_PAYLOAD if "userinfo" in request.url.path else TOKEN_PAYLOAD)

    token = asyncio.run(async_client(handle).exchange_with_profile(CODE))

    assert token.profile is not None and token.profile.openid == OPENID
    assert [str(r.url).split("?")[0] for r in seen] == [ACCESS_TOKEN_URL, USERINFO_URL]
    assert dict(parse_qsl(seen[1].url.query.decode()))["lang"] == "zh_CN"


def test_a_failing_userinfo_does_not_fail_the_exchange():
    def handle(request: httpx.Request) -> httpx.Response:
        if "userinfo" in request.url.path:
            return httpx.Response(200, json={"errcode": 48001, "errmsg": "api unauthorized"})
        return httpx.Response(200, json=TOKEN_PAYLOAD)

    token = asyncio.run(async_client(handle).exchange_with_profile(CODE))

    assert token.openid == OPENID and token.profile is None


ANSWERS = [
    pytest.param(
        {"status": 200, "json": {"errcode": errcode, "errmsg": "x, rid: 1"}}, id=f"errcode {errcode}"
    )
    for errcode in sorted(ERRCODE_CLASSES)
] + [
    pytest.param({"status": 502, "json": {}}, id="HTTP 502"),
    pytest.param({"status": 200, "body": b"<html>busy</html>"}, id="not JSON"),
    pytest.param({"status": 200, "json": [1, 2]}, id="not an object"),
    pytest.param({"status": 200, "json": {"openid": OPENID}}, id="no access_token"),
    pytest.param({"status": 200, "json": {"errcode": "abc"}}, id="bad errcode"),
]


@pytest.mark.parametrize("answer", ANSWERS)
def test_every_answer_is_the_same_typed_error_on_both_clients(answer: dict[str, Any]):
    """Whatever the transport, the same answer means the same error (parse_payload)."""
    with responses.RequestsMock() as wechat:
        wechat.get(ACCESS_TOKEN_URL, **answer)
        with pytest.raises(WeChatOAuthError) as sync_error:
            WeChatClient(APP_ID, SECRET).exchange_code(CODE)
    content = answer.get("body") or json.dumps(answer["json"]).encode()
    client = async_client(answering(answer["status"], content=content))

    with pytest.raises(WeChatOAuthError) as async_error:
        asyncio.run(client.exchange_code(CODE))

    assert type(async_error.value) is type(sync_error.value)
    assert str(async_error.value) == str(sync_error.value)


@pytest.mark.parametrize(
    "error, kind, sent",
    [
        (httpx.ConnectError, UpstreamUnavailable, False),
        (httpx.ConnectTimeout, UpstreamTimeout, False),
        (httpx.PoolTimeout, UpstreamTimeout, False),
        (httpx.ReadTimeout, UpstreamTimeout, True),
        (httpx.WriteTimeout, UpstreamTimeout, True),
        (httpx.ReadError, UpstreamUnavailable, True),
        (httpx.RemoteProtocolError, UpstreamUnavailable, True),
    ],
)
def test_transport_failures_are_typed_and_say_whether_wechat_may_have_seen_the_code(
    error: type[httpx.HTTPError], kind: type[Exception], sent: bool
):
    with pytest.raises(UpstreamUnavailable) as excinfo:
        asyncio.run(async_client(failing(error)).exchange_code(CODE))

    assert type(excinfo.value) is kind
    assert excinfo.value.request_sent is sent


def test_no_error_carries_the_secret_or_the_code():
    """httpx's exception text holds the URL; the typed error must not chain to it."""
    with pytest.raises(UpstreamUnavailable) as excinfo:
        asyncio.run(async_client(failing(httpx.ReadError)).exchange_code(CODE))

    error = excinfo.value
    assert error.__cause__ is None and error.__context__ is None
    text = "".join(traceback.format_exception(error))
    assert SECRET not in text and CODE not in text
    assert "/sns/oauth2/access_token" in str(error)


def test_a_refused_connection_was_never_sent(refusing_port: int):
    sync = WeChatClient(APP_ID, SECRET, api_base_url=f"http://127.0.0.1:{refusing_port}", timeout=(2, 2))

    with pytest.raises(UpstreamUnavailable) as excinfo:
        asyncio.run(AsyncWeChatClient(sync).exchange_code(CODE))

    assert excinfo.value.request_sent is False


def test_a_real_read_timeout_may_have_been_sent(silent_port: int):
    sync = WeChatClient(APP_ID, SECRET, api_base_url=f"http://127.0.0.1:{silent_port}", timeout=(2, 0.2))

    with pytest.raises(UpstreamTimeout) as excinfo:
        asyncio.run(AsyncWeChatClient(sync).exchange_code(CODE))

    assert excinfo.value.request_sent is True


def test_a_server_hanging_up_may_have_been_sent(hanging_up_port: int):
    sync = WeChatClient(APP_ID, SECRET, api_base_url=f"http://127.0.0.1:{hanging_up_port}", timeout=(2, 2))

    with pytest.raises(UpstreamUnavailable) as excinfo:
        asyncio.run(AsyncWeChatClient(sync).exchange_code(CODE))

    assert excinfo.value.request_sent is True


def test_each_event_loop_gets_its_own_httpx_client_and_the_twin_is_shared():
    client = async_client(answering(body=TOKEN_PAYLOAD))

    async def httpx_client() -> Any:
        await client.exchange_code(CODE)
        return client._client()

    first, second = asyncio.run(httpx_client()), asyncio.run(httpx_client())

    assert first is not second
    sync = WeChatClient(APP_ID, SECRET)
    assert async_client_for(sync) is async_client_for(sync)


@pytest.fixture
def closing_idle_port() -> Iterator[int]:
    """A localhost server that answers the first request of each connection and keeps it
    open, then hangs up on the next request on it: a server closing an idle keep-alive
    connection just as the client reuses it (uvicorn, the fake WeChat's ASGI server, does so
    after 5 s idle; WeChat's servers after their own time)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    body = json.dumps(TOKEN_PAYLOAD).encode()
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )

    def handle(conn: socket.socket) -> None:
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                request += chunk
            conn.sendall(answer)
            conn.recv(65536)  # the next request on this connection: hang up

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def two_exchanges_apart(port: int, pause: float) -> None:
    sync = WeChatClient(APP_ID, SECRET, api_base_url=f"http://127.0.0.1:{port}", timeout=(2, 2))
    client = AsyncWeChatClient(sync)

    async def main() -> None:
        await client.exchange_code(CODE)
        await asyncio.sleep(pause)
        await client.exchange_code(CODE + "2")

    asyncio.run(main())


def test_an_idle_connection_is_not_reused_after_its_expiry(closing_idle_port, monkeypatch):
    monkeypatch.setattr(async_client_module, "KEEPALIVE_EXPIRY", 0.1)

    two_exchanges_apart(closing_idle_port, pause=0.3)  # the second on a new connection: answered


def test_an_idle_connection_reused_as_the_server_closes_it_fails_the_exchange(closing_idle_port, monkeypatch):
    """The test above can fail: a connection kept past the server's idle timeout is reused, and
    WeChat's answer is lost with the code (the exchange may have been seen: no retry)."""
    monkeypatch.setattr(async_client_module, "KEEPALIVE_EXPIRY", 60.0)

    with pytest.raises(UpstreamUnavailable) as excinfo:
        two_exchanges_apart(closing_idle_port, pause=0.3)
    assert excinfo.value.request_sent is True


def test_idle_connections_expire_before_uvicorns_keep_alive_timeout():
    """uvicorn closes a connection idle for ``timeout_keep_alive`` (5 s); httpx's own default
    expiry is the same 5 s, which lets a reuse meet the close."""
    import uvicorn

    assert async_client_module.KEEPALIVE_EXPIRY < uvicorn.Config(app=None).timeout_keep_alive
