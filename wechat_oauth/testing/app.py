"""The fake WeChat as a plain WSGI application, mountable under any path prefix (SCRIPT_NAME)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from wechat_oauth.testing.api import API_PATHS, ApiViews
from wechat_oauth.testing.authorize import AuthorizeViews
from wechat_oauth.testing.base import AUTHORIZE_PATH, QRCONNECT_PATH, WWLOGIN_PATH
from wechat_oauth.testing.control import ControlViews
from wechat_oauth.testing.state import FakeState
from wechat_oauth.testing.web import BadRequest, Request, Response
from wechat_oauth.testing.wecom_pages import WeComPageViews, is_wecom
from wechat_oauth.testing.wxlogin import WXLOGIN_JS_PATH, JssdkViews, is_jssdk, script_response

#: Path of each browser page and the endpoint it is counted as.
PAGE_PATHS = {AUTHORIZE_PATH: "authorize", QRCONNECT_PATH: "qrconnect", WWLOGIN_PATH: "wwlogin"}
CONFIRM_SUFFIX = "/confirm"

StartResponse = Callable[..., Any]


class FakeWeChatApp:
    """Route a request to the authorize pages (and wxLogin.js's, see :mod:`.wxlogin`), the
    ``/sns`` API or the ``/_fake`` control API."""

    def __init__(self, state: FakeState, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.state = state
        self.pages = AuthorizeViews(state)
        self.jssdk = JssdkViews(self.pages)
        self.wecom_pages = WeComPageViews(state)
        self.api = ApiViews(state, sleep)
        self.control = ControlViews(state)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except BadRequest as exc:
            response = Response.text(str(exc), 400)
        start_response(response.status_line, response.headers())
        return [b"" if request.method == "HEAD" else response.body]

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path in API_PATHS:
            endpoint = API_PATHS[path]
            body = request.body if request.method == "POST" else b""
            return self.api.handle(endpoint, request.query, request.method, body)
        if path == WXLOGIN_JS_PATH:
            return script_response()
        if is_jssdk(request):
            return self.jssdk.show(request)
        if path in PAGE_PATHS:
            kind = PAGE_PATHS[path]
            pages = self.wecom_pages if is_wecom(kind, request.query) else self.pages
            return pages.show(request, kind)
        if path.endswith(CONFIRM_SUFFIX) and path[: -len(CONFIRM_SUFFIX)] in PAGE_PATHS:
            kind = PAGE_PATHS[path[: -len(CONFIRM_SUFFIX)]]
            form = request.form() if request.method == "POST" else {}
            pages = self.wecom_pages if is_wecom(kind, form) else self.pages
            return pages.confirm(request, kind)
        if path.startswith("/_fake/"):
            return self.control.handle(request)
        if path == "/":
            return Response.text("Fake WeChat (a test double of WeChat web authorization)\n")
        return Response.text("not found\n", 404)
