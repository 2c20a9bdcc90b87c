"""The fake WeChat (a WSGI application) as an ASGI application, and serving it under uvicorn.

:class:`WsgiInThreads` runs each request's WSGI call in a thread of its own pool. The fake's
latency is a ``time.sleep`` inside the WSGI app (:class:`~.api.ApiViews`): run in the event
loop, or in too few threads, one slow answer would hold up every other request:
``asgiref.wsgi.WsgiToAsgi`` runs the app through ``sync_to_async`` (thread-sensitive: one thread
for every request of the process) and asyncio's default executor has ``min(32, cpus + 4)``
threads (6 on 2 cores), so this adapter keeps a pool of its own (``max_threads``, 256 by
default: more than the storm ever has in flight). A request is processed once its body has
arrived, and answered after the app returns, whether or not the client is still there: a code
is spent even if the client gave up, as in the threaded WSGI server (:mod:`.server`).

The body is read whole before the app runs and the answer is sent in one piece: the fake's
requests and answers are small (:data:`~.web.MAX_BODY`).
"""

from __future__ import annotations

import asyncio
import io
import socket
import sys
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

DEFAULT_THREADS = 256


def wsgi_environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """The WSGI environ of an ASGI HTTP request (PEP 3333 strings: latin-1 of the raw bytes)."""
    root = scope.get("root_path", "") or ""
    path = scope.get("path", "/") or "/"
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root) :] or "/"
    server = scope.get("server") or ("127.0.0.1", 80)
    client = scope.get("client") or ("127.0.0.1", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope.get("method", "GET"),
        "SCRIPT_NAME": root.encode("utf-8").decode("latin-1"),
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": bytes(scope.get("query_string", b"")).decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "REMOTE_ADDR": str(client[0]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def call_wsgi(app: WSGIApp, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Run ``app`` on ``environ`` to the end: status, headers, the whole body."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [status, headers]
        return lambda data: None  # the fake never uses write()

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = started
    return (
        int(status.split(" ", 1)[0]),
        [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers],
        body,
    )


class WsgiInThreads:
    """An ASGI application running ``app`` (WSGI) for each HTTP request in a thread of a pool of
    ``max_threads``; lifespan events are acknowledged (the pool lives as long as the object)."""

    def __init__(self, app: WSGIApp, *, max_threads: int = DEFAULT_THREADS) -> None:
        self.app = app
        self.pool = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="fake-wechat")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"the fake WeChat serves HTTP only, not {scope['type']!r}")
        body = await _read_body(receive)
        if body is None:  # the client left before its body arrived: nothing reached "WeChat"
            return
        loop = asyncio.get_running_loop()
        status, headers, content = await loop.run_in_executor(
            self.pool, call_wsgi, self.app, wsgi_environ(scope, body)
        )
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def bound_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one), for uvicorn to serve on:
    the port is known before the server starts, so it can be announced."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(app: ASGIApp, host: str, port: int, on_ready: Callable[[str], None]) -> None:
    """Serve ``app`` under uvicorn (one process, this thread's event loop) until SIGTERM or
    SIGINT; ``on_ready(base_url)`` once it accepts connections."""
    import uvicorn

    sock = bound_socket(host, port)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host.strip('[]')}]" if ":" in host else host
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2, backlog=2048
    )
    server = uvicorn.Server(config)

    async def run() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                break
            await asyncio.sleep(0.01)
        else:
            on_ready(f"http://{shown_host}:{bound_port}")
        await task

    try:
        asyncio.run(run())
    finally:
        sock.close()
