"""The browser side: WeChat's authorize / qrconnect pages and their consent form."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from wechat_oauth.testing import pages
from wechat_oauth.testing.state import (
    AUTHORIZE_SCOPES,
    DEFAULT_OPENID,
    QRCONNECT_SCOPES,
    FakeState,
)
from wechat_oauth.testing.web import Request, Response, add_query
from wechat_oauth.testing.wechat_client import resend_params

_STATE = re.compile(r"[A-Za-z0-9]{0,128}")
_SCOPES = {"authorize": AUTHORIZE_SCOPES, "qrconnect": QRCONNECT_SCOPES}


class AuthorizeViews:
    """GET shows the authorize page (or redirects at once); POST .../confirm is the answer."""

    def __init__(self, state: FakeState) -> None:
        self.state = state

    def _invalid(self, params: dict[str, str], kind: str) -> str | None:
        """Why WeChat would refuse these parameters with its own error page, or None."""
        if params.get("appid") != self.state.app_id:
            return "appid is invalid (参数错误)"
        redirect_uri = params.get("redirect_uri", "")
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return "redirect_uri is missing or not an absolute http(s) URL (10003)"
        if params.get("response_type") != "code":
            return "response_type must be code"
        if params.get("scope") not in _SCOPES[kind]:
            return "scope is not allowed here (10005)"
        if not _STATE.fullmatch(params.get("state", "")):
            return "state must be at most 128 characters of [a-zA-Z0-9]"
        return None

    def show(self, request: Request, kind: str) -> Response:
        self.state.record_call(kind)
        params = request.query
        error = self._invalid(params, kind)
        if error:
            return Response.html(pages.error_page(error), 400)
        direct = "fake_openid" in params or params.get("auto") == "1" or self.state.auto_approve
        if direct:
            code = self._issue_code(params, "fake_")
            return Response.redirect(self._callback(params, code))
        consent = pages.ConsentRequest(
            action=request.url_for(request.path + "/confirm"),
            appid=params["appid"],
            redirect_uri=params["redirect_uri"],
            scope=params["scope"],
            state=params.get("state", ""),
            openid=DEFAULT_OPENID,
            double=params.get("double") == "1",
        )
        return Response.html(pages.consent_page(consent))

    def confirm(self, request: Request, kind: str) -> Response:
        if request.method != "POST":
            return Response.text("POST the consent form here", 405)
        form = {**request.form(), "response_type": "code"}
        error = self._invalid(form, kind)
        if error:
            return Response.html(pages.error_page(error), 400)
        if form.get("decision") != "allow":
            return Response.redirect(self._callback(form, None))
        code = self._issue_code(form)
        url = self._callback(form, code)
        if form.get("double") == "1":
            return Response.html(pages.double_callback_page(url, add_query(url, resend_params())))
        return Response.redirect(url)

    def _issue_code(self, params: dict[str, str], prefix: str = "") -> str:
        """A code for the user named by ``prefix`` + openid, unionid, snapshot, nickname."""
        return self.state.issue_code(
            params.get(f"{prefix}openid") or None,
            unionid=params.get(f"{prefix}unionid", ""),
            scope=params["scope"],
            snapshot=params.get(f"{prefix}snapshot") == "1",
            nickname=params.get(f"{prefix}nickname") or None,
        )

    @staticmethod
    def _callback(params: dict[str, str], code: str | None) -> str:
        """redirect_uri plus ``code`` (when consented) and ``state``."""
        extra = [("code", code)] if code else []
        return add_query(params["redirect_uri"], [*extra, ("state", params.get("state", ""))])
