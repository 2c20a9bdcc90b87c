"""The fake's HTML pages: consent, double callback, error. Inline templates, every value escaped."""

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
</style>
</head>
<body>
$content
</body>
</html>
""")

_CONSENT = Template("""<h1>Fake WeChat: authorize a web page</h1>
<p class="note">A test double of WeChat's authorize page. Nothing here talks to Tencent.</p>
<dl>
<dt>App</dt><dd id="appid">$appid</dd>
<dt>Scope</dt><dd id="scope">$scope</dd>
</dl>
<form method="post" action="$action">
<input type="hidden" name="appid" value="$appid">
<input type="hidden" name="redirect_uri" value="$redirect_uri">
<input type="hidden" name="scope" value="$scope">
<input type="hidden" name="state" value="$state">
<label>User openid <input type="text" name="openid" value="$openid"></label>
<label>unionid (optional) <input type="text" name="unionid" value=""></label>
<label>Nickname (optional) <input type="text" name="nickname" value=""></label>
<label><input type="checkbox" name="snapshot" value="1"> Snapshot user (is_snapshotuser)</label>
<label><input type="checkbox" name="double" value="1"$double_checked>
Simulate WeChat's double callback</label>
<button type="submit" name="decision" value="allow" class="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
""")

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


def _script_string(value: str) -> str:
    """A JavaScript string literal safe inside a <script> element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@dataclass(frozen=True)
class ConsentRequest:
    """What the consent page shows and posts back."""

    action: str
    appid: str
    redirect_uri: str
    scope: str
    state: str
    openid: str
    double: bool = False


def consent_page(request: ConsentRequest) -> str:
    content = _CONSENT.substitute(
        action=escape(request.action),
        appid=escape(request.appid),
        redirect_uri=escape(request.redirect_uri),
        scope=escape(request.scope),
        state=escape(request.state),
        openid=escape(request.openid),
        double_checked=" checked" if request.double else "",
    )
    return _page("Fake WeChat authorization", content)


def double_callback_page(first_url: str, second_url: str) -> str:
    content = _DOUBLE.substitute(
        first_json=_script_string(first_url),
        second_json=_script_string(second_url),
        second=escape(second_url),
    )
    return _page("Fake WeChat redirect", content)


def error_page(message: str) -> str:
    return _page("Fake WeChat error", _ERROR.substitute(message=escape(message)))
