"""The server side: WeChat's ``/sns/...`` API and WeCom's ``/cgi-bin/...``, with latency and
scripted faults."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from wechat_oauth.testing.state import CODE_PARAMS, WECOM_ENDPOINTS, FakeState, Fault, WeChatError
from wechat_oauth.testing.web import Response, wechat_error
from wechat_oauth.testing.wecom import WECOM_ERRMSG

#: Path of each API endpoint.
API_PATHS = {
    "/sns/oauth2/access_token": "access_token",
    "/sns/oauth2/refresh_token": "refresh_token",
    "/sns/userinfo": "userinfo",
    "/sns/auth": "auth",
    "/sns/jscode2session": "jscode2session",
    "/cgi-bin/gettoken": "gettoken",
    "/cgi-bin/auth/getuserinfo": "getuserinfo",
    "/cgi-bin/auth/getuserdetail": "getuserdetail",
}
#: The WeCom endpoints WeCom only answers by POST (a JSON body).
POST_ENDPOINTS = frozenset({"getuserdetail"})
WECOM_MORE_INFO = "https://open.work.weixin.qq.com/devtool/query?e="


def wecom_error(errcode: int, errmsg: str) -> dict[str, Any]:
    """WeCom's error body: the message carries a hint and where to read about the errcode."""
    hint = f"{int(time.time())}-{secrets.token_hex(8)}"
    return {
        "errcode": errcode,
        "errmsg": f"{errmsg}, hint: [{hint}], more info at {WECOM_MORE_INFO}{errcode}",
    }


def error_body(endpoint: str, error: WeChatError) -> dict[str, Any]:
    """An error answer in the format of the endpoint's API (WeChat's or WeCom's)."""
    if endpoint in WECOM_ENDPOINTS:
        return wecom_error(error.errcode, error.errmsg)
    return wechat_error(error.errcode, error.errmsg)


def fault_response(fault: Fault) -> Response:
    """The answer a fault puts in place of WeChat's (or WeCom's)."""
    status = fault.status or 200
    if fault.body is not None:
        kind = "text/html" if fault.body.lstrip().startswith("<") else "text/plain"
        return Response(status, fault.body.encode("utf-8"), f"{kind}; charset=utf-8")
    if fault.errcode is not None and fault.errmsg is not None:
        return Response.json({"errcode": fault.errcode, "errmsg": fault.errmsg}, status)
    if fault.errcode is not None:
        if fault.endpoint in WECOM_ENDPOINTS:
            error = WeChatError(fault.errcode, WECOM_ERRMSG.get(fault.errcode))
        else:
            error = WeChatError(fault.errcode)
        return Response.json(error_body(fault.endpoint, error), status)
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
            "gettoken": lambda q: state.gettoken(q.get("corpid"), q.get("corpsecret")),
            "getuserinfo": lambda q: state.wecom_getuserinfo(q.get("access_token"), q.get("code")),
            "getuserdetail": self._getuserdetail,
        }

    def handle(
        self, endpoint: str, query: dict[str, str], method: str = "GET", body: bytes = b""
    ) -> Response:
        code = query.get(CODE_PARAMS[endpoint]) if endpoint in CODE_PARAMS else None
        self.state.record_call(endpoint, code, app_id=query.get("appid"))
        if endpoint in WECOM_ENDPOINTS:
            self.state.record_wecom_call(self.state.wecom_agent_of(endpoint, query), endpoint)
        if endpoint in POST_ENDPOINTS:
            query = {**query, "_method": method, "_body": body.decode("utf-8", "replace")}
        fault = self.state.take_fault(endpoint, code)
        if fault is not None and fault.replaces_answer:
            if fault.consume and code:
                self.state.consume_request(endpoint, query)
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
            return Response.json(error_body(endpoint, error))

    def _getuserdetail(self, query: dict[str, str]) -> dict[str, Any]:
        """``auth/getuserdetail``: POST, the user_ticket in a JSON body."""
        if query["_method"] != "POST":
            raise WeChatError(43002, WECOM_ERRMSG[43002])
        try:
            payload = json.loads(query["_body"] or "{}")
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise WeChatError(47001, WECOM_ERRMSG[47001])
        return self.state.wecom_getuserdetail(query.get("access_token"), payload.get("user_ticket"))

    def _wait(self, extra: float) -> None:
        seconds = self.state.latency + extra
        if seconds > 0:
            self._sleep(seconds)
