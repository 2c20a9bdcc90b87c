"""Send the stock backends' calls to WeChat's API to a fake WeChat instead.

social-core's weixin backends take their authorize and token URLs from settings, but call
``https://api.weixin.qq.com/sns/userinfo`` as written in their code, and send the code
exchange as a form POST while the fake reads an endpoint's parameters from the query string
(WeChat documents GET). Every request social-core makes goes through ``requests.request``
(``BaseAuth.request``): this wraps it so that a request for WeChat's API host goes to the
fake's, and a form POST to the fake becomes the GET WeChat documents, with the same
parameters. The drop-in never goes through it (its client reads WECHAT_OAUTH's hosts and
sends GETs).
"""

from __future__ import annotations

from typing import Any

import requests

WECHAT_API = "https://api.weixin.qq.com"


def rerouting(original: Any, base_url: str) -> Any:
    base_url = base_url.rstrip("/")

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if isinstance(url, str) and url.startswith(WECHAT_API + "/"):
            url = base_url + url[len(WECHAT_API) :]
        if (
            isinstance(url, str)
            and url.startswith(base_url + "/")
            and method.upper() == "POST"
            and isinstance(kwargs.get("data"), dict)
        ):
            method = "GET"
            kwargs["params"] = {**(kwargs.get("params") or {}), **kwargs.pop("data")}
        return original(method, url, *args, **kwargs)

    request.rerouted = True  # type: ignore[attr-defined]
    return request


def route_stock_backends_to(base_url: str) -> None:
    """For a server process of its own (settings_stock with SOCIAL_SITE_FAKE_WECHAT)."""
    if not getattr(requests.request, "rerouted", False):
        requests.request = rerouting(requests.request, base_url)
