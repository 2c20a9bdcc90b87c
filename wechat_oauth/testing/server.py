"""Serve the fake over real HTTP from a thread of this process (standard library only)."""

from __future__ import annotations

import socketserver
import sys
import threading
from collections.abc import Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from wechat_oauth.testing.app import FakeWeChatApp
from wechat_oauth.testing.apps import FakeApp
from wechat_oauth.testing.base import FakeWeChatBase, ServeOptions
from wechat_oauth.testing.state import (
    ACCESS_TOKEN_TTL,
    DEFAULT_APP_ID,
    REFRESH_TOKEN_TTL,
    CodeRequest,
    FakeState,
    Fault,
    JsCodeRequest,
    WeComCodeRequest,
)
from wechat_oauth.testing.wecom import FakeAgent

WSGIApp = Any


class QuietRequestHandler(WSGIRequestHandler):
    """No access log: a test run's stderr stays clean (and URLs carry codes and secrets)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """One daemon thread per request; no reverse DNS at bind; quiet about clients that hang up."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)
        self.setup_environ()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class ServerThread:
    """Run a WSGI app on ``host:port`` (port 0: a free one) in a daemon thread."""

    def __init__(self, app: WSGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self._server: ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not started")
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> None:
        if self._server is not None:
            return
        server = make_server(
            self.host,
            self.requested_port,
            self.app,
            server_class=ThreadingWSGIServer,
            handler_class=QuietRequestHandler,
        )
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-wechat",
            daemon=True,
        )
        self._server = server
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)


class FakeWeChat(FakeWeChatBase):
    """A fake WeChat served from a thread of this process; its state is at hand in ``.state``."""

    def __init__(
        self,
        app_id: str = DEFAULT_APP_ID,
        app_secret: str | None = None,
        *,
        apps: Iterable[FakeApp] = (),
        corps: Iterable[FakeAgent] = (),
        access_token_ttl: int = ACCESS_TOKEN_TTL,
        refresh_token_ttl: float = REFRESH_TOKEN_TTL,
        **options: Any,
    ) -> None:
        """``apps``: more apps than the default one (see :meth:`add_app`); ``corps``: WeCom
        agents (see :meth:`add_corp`); ``options``: the fields of
        :class:`~.base.ServeOptions` (host, port, latency, ...)."""
        served = ServeOptions(**options)
        self.state = FakeState(
            app_id,
            app_secret,
            apps=apps,
            corps=corps,
            code_ttl=served.code_ttl,
            access_token_ttl=access_token_ttl,
            refresh_token_ttl=refresh_token_ttl,
            latency=served.latency,
            auto_approve=served.auto_approve,
        )
        #: The WSGI application (mount it elsewhere, e.g. under a prefix, if you prefer).
        self.app = FakeWeChatApp(self.state)
        self._server = ServerThread(self.app, served.host, served.port)

    @property
    def app_id(self) -> str:
        return self.state.app_id

    @property
    def app_secret(self) -> str:
        return self.state.app_secret

    @property
    def base_url(self) -> str:
        return self._server.url

    def add_app(self, app_id: str, app_secret: str | None = None, *, unionid: bool = True) -> str:
        return self.state.add_app(app_id, app_secret, unionid=unionid)

    def app_secret_of(self, app_id: str) -> str:
        return self.state.app_secret_of(app_id)

    def session_key_of(self, app_id: str, openid: str) -> str | None:
        return self.state.session_key_of(app_id, openid)

    def add_corp(self, corp_id: str, agent_id: int | str, secret: str | None = None) -> str:
        return self.state.add_corp(corp_id, agent_id, secret)

    def wecom_secret_of(self, corp_id: str, agent_id: int | str) -> str:
        return self.state.wecom_secret_of(corp_id, agent_id)

    def invalidate_wecom_token(self, corp_id: str, agent_id: int | str) -> None:
        self.state.invalidate_wecom_token(corp_id, agent_id)

    def _issue_wecom_code(self, request: WeComCodeRequest) -> str:
        return self.state._issue_wecom_code(request)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def _issue_code(self, request: CodeRequest) -> str:
        return self.state._issue_code(request)

    def _issue_js_code(self, request: JsCodeRequest) -> str:
        return self.state._issue_js_code(request)

    def stats(self, code: str | None = None) -> dict[str, Any]:
        return self.state.stats(code)

    def _add_fault(self, fields: dict[str, Any]) -> None:
        self.state.add_fault(Fault(**fields))

    def issued_secrets(self) -> set[str]:
        """See :meth:`FakeState.issued_secrets`."""
        return self.state.issued_secrets()

    def set_latency(self, seconds: float) -> None:
        self.state.set_latency(seconds)

    def advance(self, seconds: float) -> None:
        self.state.advance(seconds)

    def reset(self) -> None:
        self.state.reset()
