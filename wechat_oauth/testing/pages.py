"""The fake's HTML pages: consent, QR scan, double callback, error.

Inline templates, every value escaped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from string import Template

_LAYOUT = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.2rem}.note{color:#666;font-size:.85rem}label{display:block;margin:.6rem 0}
input[type=text]{width:100%;box-sizing:border-box;padding:.3rem}
button{padding:.5rem 1.2rem;margin-right:.5rem}.allow{background:#07c160;color:#fff;border:0}
.qr{border:2px dashed #999;padding:2rem 1rem;text-align:center;margin:1rem 0}
.phone{border:1px solid #ccc;border-radius:1rem;padding:0 1rem 1rem}h2{font-size:1rem}
</style>
</head>
<body>
$content
</body>
</html>
""")

_APP = """<dl>
<dt>App</dt><dd id="appid">$appid</dd>
<dt>Scope</dt><dd id="scope">$scope</dd>
</dl>
"""

# Who answers: a person (their own openid in each app, one unionid), or an explicit openid,
# which counts once changed from the one shown (see AuthorizeViews._issue_code).
_FIELDS = """<input type="hidden" name="appid" value="$appid">
<input type="hidden" name="redirect_uri" value="$redirect_uri">
<input type="hidden" name="scope" value="$scope">
<input type="hidden" name="state" value="$state">
<label>Person <input type="text" name="person" value="$person"></label>
<p class="note">The same person in every app: each app sees its own openid for them, and the apps
bound to the Open Platform account one unionid.</p>
<label>Or an explicit openid (used once changed, or with Person empty)
<input type="text" name="openid" value="$openid"></label>
<label>unionid (optional, with an explicit openid) <input type="text" name="unionid" value=""></label>
<label>Nickname (optional) <input type="text" name="nickname" value=""></label>
<label><input type="checkbox" name="snapshot" value="1"> Snapshot user (is_snapshotuser)</label>
"""

_CONSENT = Template(
    """<h1>Fake WeChat: authorize a web page</h1>
<p class="note">A test double of WeChat's authorize page. Nothing here talks to Tencent.</p>
"""
    + _APP
    + """<form method="post" action="$action">
"""
    + _FIELDS
    + """<label><input type="checkbox" name="double" value="1"$double_checked>
Simulate WeChat's double callback</label>
<button type="submit" name="decision" value="allow" class="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
"""
)

# WeChat's website login: the page shows a QR code, the user scans it and confirms on the phone,
# and the page then goes to the callback. Here the phone is a form on the same page.
_SCAN = Template(
    """<h1>Fake WeChat: log in with WeChat</h1>
<p class="note">A test double of WeChat's website login page. Nothing here talks to Tencent.</p>
"""
    + _APP
    + """<div class="qr" id="qrcode">[QR code]<br>Scan with WeChat to log in</div>
<form method="post" action="$action" class="phone">
<h2>The phone that scanned it</h2>
"""
    + _FIELDS
    + """<button type="submit" name="decision" value="allow" class="allow">Confirm on phone</button>
<button type="submit" name="decision" value="deny">Cancel on phone</button>
</form>
"""
)

# The first request to the callback is aborted ~15 ms in, as the WeChat client does, and the
# same URL is then loaded again with the uin/key/pass_ticket it adds (see oauth-40029-origin.md).
_DOUBLE = Template("""<p>Fake WeChat: simulating the double callback&hellip;</p>
<script>
(function () {
  var first = $first_json;
  var second = $second_json;
  var controller = new AbortController();
  fetch(first, {credentials: "include", redirect: "manual", signal: controller.signal})
    .catch(function () {});
  setTimeout(function () {
    controller.abort();
    location.replace(second);
  }, 15);
})();
</script>
<noscript><a href="$second">Continue</a></noscript>
""")

_ERROR = Template("""<h1>Fake WeChat: error</h1>
<p id="error">$message</p>
""")


def _page(title: str, content: str) -> str:
    return _LAYOUT.substitute(title=escape(title), content=content)


def render(title: str, content: str) -> str:
    """A whole page in the fake's layout around ``content`` (HTML, already escaped)."""
    return _page(title, content)


def _script_string(value: str) -> str:
    """A JavaScript string literal safe inside a <script> element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@dataclass(frozen=True)
class ConsentRequest:
    """What the consent and scan pages show and post back."""

    action: str
    appid: str
    redirect_uri: str
    scope: str
    state: str
    person: str
    openid: str
    double: bool = False

    def fields(self) -> dict[str, str]:
        """The values of the form, escaped."""
        return {
            "action": escape(self.action),
            "appid": escape(self.appid),
            "redirect_uri": escape(self.redirect_uri),
            "scope": escape(self.scope),
            "state": escape(self.state),
            "person": escape(self.person),
            "openid": escape(self.openid),
        }


def consent_page(request: ConsentRequest) -> str:
    """The authorize page (in WeChat's browser): allow or deny, as a person or an openid."""
    double_checked = " checked" if request.double else ""
    content = _CONSENT.substitute(request.fields(), double_checked=double_checked)
    return _page("Fake WeChat authorization", content)


def scan_page(request: ConsentRequest) -> str:
    """The qrconnect page (website login): a QR code, and the phone to confirm on."""
    return _page("Fake WeChat login", _SCAN.substitute(request.fields()))


def double_callback_page(first_url: str, second_url: str) -> str:
    content = _DOUBLE.substitute(
        first_json=_script_string(first_url),
        second_json=_script_string(second_url),
        second=escape(second_url),
    )
    return _page("Fake WeChat redirect", content)


def error_page(message: str) -> str:
    return _page("Fake WeChat error", _ERROR.substitute(message=escape(message)))
