"""The server side: WeChat's ``/sns/...`` API, with latency and scripted faults."""

from __future__ import annotations

import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from wechat_oauth.testing.state import CODE_PARAMS, FakeState, Fault, WeChatError
from wechat_oauth.testing.web import Response, wechat_error

#: Path of each API endpoint.
API_PATHS = {
    "/sns/oauth2/access_token": "access_token",
    "/sns/oauth2/refresh_token": "refresh_token",
    "/sns/userinfo": "userinfo",
    "/sns/auth": "auth",
    "/sns/jscode2session": "jscode2session",
}


def fault_response(fault: Fault) -> Response:
    """The answer a fault puts in place of WeChat's."""
    status = fault.status or 200
    if fault.body is not None:
        kind = "text/html" if fault.body.lstrip().startswith("<") else "text/plain"
        return Response(status, fault.body.encode("utf-8"), f"{kind}; charset=utf-8")
    if fault.errcode is not None and fault.errmsg is not None:
        return Response.json({"errcode": fault.errcode, "errmsg": fault.errmsg}, status)
    if fault.errcode is not None:
        error = WeChatError(fault.errcode)
        return Response.json(wechat_error(error.errcode, error.errmsg), status)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    title = f"{status} {phrase}"
    page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
    return Response.html(page, status)


class ApiViews:
    """Answer an API request: count it, apply a fault if one matches, wait the latency.

    The request is processed when received and answered after the wait, like a real server:
    a code is spent even if the client gives up before the answer arrives.
    """

    def __init__(self, state: FakeState, sleep: Callable[[float], None] = time.sleep) -> None:
        self.state = state
        self._sleep = sleep
        self._process: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
            "access_token": lambda q: state.exchange_code(
                q.get("appid"), q.get("secret"), q.get("code"), q.get("grant_type")
            ),
            "refresh_token": lambda q: state.refresh(
                q.get("appid"), q.get("refresh_token"), q.get("grant_type")
            ),
            "userinfo": lambda q: state.userinfo(q.get("access_token"), q.get("openid")),
            "auth": lambda q: state.check_token(q.get("access_token"), q.get("openid")),
            "jscode2session": lambda q: state.jscode2session(
                q.get("appid"), q.get("secret"), q.get("js_code"), q.get("grant_type")
            ),
        }

    def handle(self, endpoint: str, query: dict[str, str]) -> Response:
        code = query.get(CODE_PARAMS[endpoint]) if endpoint in CODE_PARAMS else None
        self.state.record_call(endpoint, code, app_id=query.get("appid"))
        fault = self.state.take_fault(endpoint, code)
        if fault is not None and fault.replaces_answer:
            if fault.consume and code:
                self.state.consume_code(code, query.get("appid"), endpoint)
            self._wait(fault.extra_delay)
            return fault_response(fault)
        delay = fault.extra_delay if fault is not None else 0.0
        if fault is not None and not fault.consume:
            self._sleep(delay)  # the request "reaches WeChat" only after the delay
            delay = 0.0
        response = self._answer(endpoint, query)
        self._wait(delay)
        return response

    def _answer(self, endpoint: str, query: dict[str, str]) -> Response:
        try:
            return Response.json(self._process[endpoint](query))
        except WeChatError as error:
            return Response.json(wechat_error(error.errcode, error.errmsg))

    def _wait(self, extra: float) -> None:
        seconds = self.state.latency + extra
        if seconds > 0:
            self._sleep(seconds)
