"""WeCom's browser pages: the in-app authorize page and the SSO (QR) login page.

``/connect/oauth2/authorize?appid=CORPID&redirect_uri&response_type=code&scope&state&agentid``
(the WeChat authorize path; an ``agentid`` makes it WeCom's) and ``/wwlogin/sso/login?
login_type=CorpApp&appid=CORPID&agentid&redirect_uri&state`` redirect to
``redirect_uri?code&state`` with a code for the agent. Without auto-approval they show a form
(the SSO page a QR code and the phone that confirms it) asking who logs in: a member's userid,
or a non-member person. ``fake_userid=`` (or ``fake_member=0`` + ``fake_person=``) and
``auto=1`` skip it.
"""

from __future__ import annotations

import re
from html import escape
from string import Template
from urllib.parse import urlsplit

from wechat_oauth.testing import pages
from wechat_oauth.testing.apps import DEFAULT_PERSON
from wechat_oauth.testing.state import FakeState
from wechat_oauth.testing.web import Request, Response, add_query
from wechat_oauth.testing.wecom import DEFAULT_WECOM_USERID, WECOM_SCOPES

_STATE = re.compile(r"[A-Za-z0-9]{0,128}")
_TITLES = {"authorize": "Fake WeCom: authorize", "wwlogin": "Fake WeCom: log in"}

_FORM = Template("""<h1>$title</h1>
<p class="note">A test double of WeCom (企业微信). Nothing here talks to Tencent.</p>
<dl><dt>Corp</dt><dd id="corpid">$appid</dd><dt>Agent</dt><dd id="agentid">$agentid</dd></dl>
$qr<form method="post" action="$action" class="phone">
$hidden<label>Member userid <input type="text" name="userid" value="$userid"></label>
<label><input type="checkbox" name="member" value="0"> Not a member of the corp
(answered by openid and external_userid)</label>
<label>Non-member person <input type="text" name="person" value="$person"></label>
<button type="submit" name="decision" value="allow" class="allow">$allow</button>
<button type="submit" name="decision" value="deny">$deny</button>
</form>
""")
_QR = """<div class="qr" id="qrcode">[QR code]<br>Scan with WeCom to log in</div>
<h2>The phone that scanned it</h2>
"""


def is_wecom(kind: str, params: dict[str, str]) -> bool:
    """Whether a page request is WeCom's: the SSO page, or authorize with an agentid."""
    return kind == "wwlogin" or (kind == "authorize" and "agentid" in params)


class WeComPageViews:
    """GET shows the page (or redirects at once); POST .../confirm is the answer."""

    def __init__(self, state: FakeState) -> None:
        self.state = state

    def _invalid(self, params: dict[str, str], kind: str) -> str | None:
        if self.state.find_wecom_agent(params.get("appid"), params.get("agentid")) is None:
            return "appid (corpid) or agentid is invalid"
        parts = urlsplit(params.get("redirect_uri", ""))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return "redirect_uri is missing or not an absolute http(s) URL"
        if kind == "authorize":
            if params.get("response_type") != "code":
                return "response_type must be code"
            if params.get("scope") not in WECOM_SCOPES:
                return "scope must be snsapi_base or snsapi_privateinfo"
        elif params.get("login_type") != "CorpApp":
            return "login_type must be CorpApp"
        if not _STATE.fullmatch(params.get("state", "")):
            return "state must be at most 128 characters of [a-zA-Z0-9]"
        return None

    def show(self, request: Request, kind: str) -> Response:
        params = request.query
        self.state.record_call(kind)
        agent = self.state.find_wecom_agent(params.get("appid"), params.get("agentid"))
        self.state.record_wecom_call(agent, kind)
        error = self._invalid(params, kind)
        if error:
            return Response.html(pages.error_page(error), 400)
        shortcut = any(name in params for name in ("fake_userid", "fake_person", "fake_member"))
        if shortcut or params.get("auto") == "1" or self.state.auto_approve:
            return self._allow(params, "fake_")
        return Response.html(self._page(request, kind, params))

    def _page(self, request: Request, kind: str, params: dict[str, str]) -> str:
        names = ["appid", "agentid", "redirect_uri", "state"]
        names += ["scope"] if kind == "authorize" else ["login_type"]
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{escape(params.get(name, ""))}">\n' for name in names
        )
        allow, deny = ("Allow", "Deny") if kind == "authorize" else ("Confirm on phone", "Cancel on phone")
        content = _FORM.substitute(
            title=escape(_TITLES[kind]),
            appid=escape(params["appid"]),
            agentid=escape(params["agentid"]),
            qr=_QR if kind == "wwlogin" else "",
            action=escape(request.url_for(request.path + "/confirm")),
            hidden=hidden,
            userid=escape(DEFAULT_WECOM_USERID),
            person=escape(DEFAULT_PERSON),
            allow=allow,
            deny=deny,
        )
        return pages.render(_TITLES[kind], content)

    def confirm(self, request: Request, kind: str) -> Response:
        if request.method != "POST":
            return Response.text("POST the form here", 405)
        form = request.form()
        if kind == "authorize":
            form["response_type"] = "code"
        error = self._invalid(form, kind)
        if error:
            return Response.html(pages.error_page(error), 400)
        if form.get("decision") != "allow":
            return Response.redirect(_callback(form, None))
        return self._allow(form)

    def _allow(self, params: dict[str, str], prefix: str = "") -> Response:
        member = params.get(f"{prefix}member") != "0"
        try:
            code = self.state.issue_wecom_code(
                params["appid"],
                params["agentid"],
                (params.get(f"{prefix}userid", "").strip() or None) if member else None,
                member=member,
                person=(params.get(f"{prefix}person", "").strip() or None) if not member else None,
                scope=params.get("scope", "snsapi_base"),
            )
        except ValueError as exc:
            return Response.html(pages.error_page(str(exc)), 400)
        return Response.redirect(_callback(params, code))


def _callback(params: dict[str, str], code: str | None) -> str:
    """redirect_uri plus ``code`` (when allowed) and ``state``."""
    extra = [("code", code)] if code else []
    return add_query(params["redirect_uri"], [*extra, ("state", params.get("state", ""))])
