"""The browser side: WeChat's authorize / qrconnect pages, for any of the fake's apps.

Without auto-approval, authorize shows a consent form and qrconnect a QR "scan" page whose
phone is a form beside it; both ask who logs in, a person or an explicit openid. The
``fake_person`` / ``fake_openid`` (+ ``fake_unionid``, ...) and ``auto=1`` query parameters skip
them.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from wechat_oauth.testing import pages
from wechat_oauth.testing.apps import DEFAULT_PERSON
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
_PAGES = {"authorize": pages.consent_page, "qrconnect": pages.scan_page}


class AuthorizeViews:
    """GET shows the authorize page (or redirects at once); POST .../confirm is the answer."""

    def __init__(self, state: FakeState) -> None:
        self.state = state

    def _invalid(self, params: dict[str, str], kind: str) -> str | None:
        """Why WeChat would refuse these parameters with its own error page, or None."""
        if not self.state.knows_app(params.get("appid")):
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
        self.state.record_call(kind, app_id=request.query.get("appid"))
        params = request.query
        error = self._invalid(params, kind)
        if error:
            return Response.html(pages.error_page(error), 400)
        shortcut = "fake_openid" in params or "fake_person" in params or params.get("auto") == "1"
        if shortcut or self.state.auto_approve:
            return self._allow(params, "fake_")
        consent = pages.ConsentRequest(
            action=request.url_for(request.path + "/confirm"),
            appid=params["appid"],
            redirect_uri=params["redirect_uri"],
            scope=params["scope"],
            state=params.get("state", ""),
            person=DEFAULT_PERSON,
            openid=DEFAULT_OPENID,
            double=params.get("double") == "1",
        )
        return Response.html(_PAGES[kind](consent))

    def confirm(self, request: Request, kind: str) -> Response:
        if request.method != "POST":
            return Response.text("POST the consent form here", 405)
        form = {**request.form(), "response_type": "code"}
        error = self._invalid(form, kind)
        if error:
            return Response.html(pages.error_page(error), 400)
        if form.get("decision") != "allow":
            return Response.redirect(self._callback(form, None))
        return self._allow(_chosen_user(form), double=form.get("double") == "1")

    def _allow(self, params: dict[str, str], prefix: str = "", *, double: bool = False) -> Response:
        """Redirect to the callback with a code for the user ``params`` name (an error page if
        they name no valid one); ``double``: through the double callback page."""
        try:
            code = self._issue_code(params, prefix)
        except ValueError as exc:
            return Response.html(pages.error_page(str(exc)), 400)
        url = self._callback(params, code)
        if double:
            return Response.html(pages.double_callback_page(url, add_query(url, resend_params())))
        return Response.redirect(url)

    def _issue_code(self, params: dict[str, str], prefix: str = "") -> str:
        """A code for the user named by ``prefix`` + person, or openid and unionid; snapshot,
        nickname; in the app of ``appid``."""
        return self.state.issue_code(
            params.get(f"{prefix}openid") or None,
            unionid=params.get(f"{prefix}unionid", ""),
            scope=params["scope"],
            snapshot=params.get(f"{prefix}snapshot") == "1",
            nickname=params.get(f"{prefix}nickname") or None,
            app_id=params["appid"],
            person=params.get(f"{prefix}person", "").strip() or None,
        )

    @staticmethod
    def _callback(params: dict[str, str], code: str | None) -> str:
        """redirect_uri plus ``code`` (when consented) and ``state``."""
        extra = [("code", code)] if code else []
        return add_query(params["redirect_uri"], [*extra, ("state", params.get("state", ""))])


def _chosen_user(form: dict[str, str]) -> dict[str, str]:
    """The form without the user field not chosen: the pages pre-fill both a person and
    ``DEFAULT_OPENID``, and the openid counts once changed, the person otherwise."""
    if not form.get("person", "").strip() or not form.get("openid"):
        return form
    ignored = "openid" if form["openid"] == DEFAULT_OPENID else "person"
    return {name: value for name, value in form.items() if name != ignored}
