"""WeChat's ``wxLogin.js`` and the QR panel it draws inside a site's page, faked.

A page loads ``<fake>/connect/wxLogin.js`` (the site's ``WXLOGIN_JS_URL``) and calls
``new WxLogin({id, appid, scope, redirect_uri, state, self_redirect, style, href})``, as with
WeChat's script. This one draws, in the element ``id``, the iframe WeChat's draws, of the fake's
own qrconnect page, with the same parameters: ``login_type=jssdk``, no ``response_type``, and
the values pasted in as given (``redirect_uri`` arrives URL-encoded).

Opened with ``login_type=jssdk``, the qrconnect page is a compact scan page that fits the
300x400 iframe. "Confirm on phone" sends the *top* window to ``redirect_uri?code&state``
(``self_redirect`` false or absent), or the iframe itself (``self_redirect=true``), as WeChat
does. An approval without the page (``auto_approve``, ``fake_person=``) answers with a page that
moves the top window there: a browser allows that from a cross-origin iframe only after a user
gesture, so a site on another origin than the fake needs the page (``auto_approve=False``).
"""

from __future__ import annotations

import copy
import json
from html import escape
from string import Template

from wechat_oauth.testing import pages
from wechat_oauth.testing.apps import DEFAULT_PERSON
from wechat_oauth.testing.authorize import AuthorizeViews
from wechat_oauth.testing.base import QRCONNECT_PATH
from wechat_oauth.testing.state import DEFAULT_OPENID
from wechat_oauth.testing.web import Request, Response

#: Where the fake serves its wxLogin.js (under its root, beside QRCONNECT_PATH).
WXLOGIN_JS_PATH = "/connect/wxLogin.js"
JAVASCRIPT = "application/javascript; charset=utf-8"

# The iframe address as WeChat's wxLogin.js builds it; the qrconnect page is found relative to
# the script's own address (both are under <fake>/connect/).
SCRIPT = """\
/* Fake WeChat: wxLogin.js (a test double of WeChat's; draws the fake's qrconnect page). */
(function () {
  "use strict";
  var script = document.currentScript;
  var qrconnect = new URL("qrconnect", script ? script.src : location.href).href;
  window.WxLogin = function WxLogin(options) {
    var selfRedirect = options.self_redirect === true ? "true"
      : options.self_redirect === false ? "false" : "default";
    var src = qrconnect + "?appid=" + options.appid + "&scope=" + options.scope +
      "&redirect_uri=" + options.redirect_uri + "&state=" + options.state +
      "&login_type=jssdk&self_redirect=" + selfRedirect +
      "&styletype=" + (options.styletype || "") + "&sizetype=" + (options.sizetype || "") +
      "&bgcolor=" + (options.bgcolor || "") + "&rst=" + (options.rst || "");
    if (options.style) { src += "&style=" + options.style; }
    if (options.href) { src += "&href=" + options.href; }
    var frame = document.createElement("iframe");
    frame.src = src;
    frame.frameBorder = "0";
    frame.allowTransparency = "true";
    frame.scrolling = "no";
    frame.width = "300px";
    frame.height = "400px";
    frame.title = "WeChat login";
    var container = document.getElementById(options.id);
    container.innerHTML = "";
    container.appendChild(frame);
  };
})();
"""

_PANEL = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Fake WeChat login</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;padding:.5rem;color:#222;text-align:center}
.qr{border:2px dashed #999;padding:1.6rem .5rem;margin:0 auto .6rem;width:10rem}
.note{color:#666;font-size:.8rem;margin:.3rem 0;word-break:break-all}
.phone{border:1px solid #ccc;border-radius:1rem;padding:.4rem .8rem .8rem;text-align:left}
h2{font-size:.9rem;margin:.3rem 0}label{display:block;margin:.4rem 0}
input[type=text]{width:100%;box-sizing:border-box;padding:.25rem}
button{padding:.4rem .8rem;margin:.3rem .3rem 0 0}.allow{background:#07c160;color:#fff;border:0}
</style>
</head>
<body>
<div class="qr" id="qrcode">[QR code]<br>Scan with WeChat to log in</div>
<p class="note">Fake WeChat (a test double): app <span id="appid">$appid</span></p>
<form method="post" action="$action" target="$target" class="phone">
<h2>The phone that scanned it</h2>
<input type="hidden" name="appid" value="$appid">
<input type="hidden" name="redirect_uri" value="$redirect_uri">
<input type="hidden" name="scope" value="$scope">
<input type="hidden" name="state" value="$state">
<label>Person <input type="text" name="person" value="$person"></label>
<button type="submit" name="decision" value="allow" class="allow">Confirm on phone</button>
<button type="submit" name="decision" value="deny">Cancel on phone</button>
</form>
</body>
</html>
""")

_TOP_REDIRECT = Template("""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Fake WeChat redirect</title></head>
<body>
<script>window.top.location.replace($url_json);</script>
<noscript><a href="$url" target="_top">Continue</a></noscript>
</body>
</html>
""")


def script_response() -> Response:
    return Response(200, SCRIPT.encode("utf-8"), JAVASCRIPT)


def is_jssdk(request: Request) -> bool:
    """The qrconnect page as wxLogin.js's iframe opens it."""
    return request.path == QRCONNECT_PATH and request.query.get("login_type") == "jssdk"


class JssdkViews:
    """The qrconnect page inside wxLogin.js's iframe: checked, counted and approved by the
    authorize views, shown compact, answered in the top window."""

    def __init__(self, views: AuthorizeViews) -> None:
        self.views = views

    def show(self, request: Request) -> Response:
        # wxLogin.js sends no response_type; WeChat's qrconnect takes the iframe's address as is.
        request = copy.copy(request)
        request.query = {"response_type": "code", **request.query}
        answer = self.views.show(request, "qrconnect")
        in_frame = request.query.get("self_redirect") == "true"
        if answer.location is not None:  # approved at once (auto_approve, fake_person=...)
            return answer if in_frame else Response.html(top_redirect_page(answer.location))
        if answer.status != 200:  # WeChat's error page, inside the iframe
            return answer
        consent = pages.ConsentRequest(
            action=request.url_for(QRCONNECT_PATH + "/confirm"),
            appid=request.query["appid"],
            redirect_uri=request.query["redirect_uri"],
            scope=request.query["scope"],
            state=request.query.get("state", ""),
            person=DEFAULT_PERSON,
            openid=DEFAULT_OPENID,
        )
        return Response.html(panel_page(consent, target="_self" if in_frame else "_top"))


def panel_page(consent: pages.ConsentRequest, *, target: str) -> str:
    """The compact scan page; its form answers in ``target`` (``_top``: the site's page)."""
    return _PANEL.substitute(consent.fields(), target=escape(target))


def top_redirect_page(url: str) -> str:
    """A page that moves the top window to ``url``."""
    url_json = json.dumps(url).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return _TOP_REDIRECT.substitute(url_json=url_json, url=escape(url))
