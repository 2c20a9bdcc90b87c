"""``{% load wechat_oauth %}``: the embedded QR panel of a website app's login.

.. code-block:: django

    {% load wechat_oauth %}
    {% wechat_qr_panel "web" next="/shop/" %}

draws WeChat's QR code inside the page (``wxLogin.js``); scanning it logs the person in through
the app's callback, exactly as the qrconnect redirect does. The panel asks ``<app>/qr/`` for its
parameters, which issues the login's state and sets the binding cookie.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils.crypto import get_random_string

from ..conf import app_settings
from ..registry import default_app_name, get_app

register = template.Library()


@register.inclusion_tag("wechat_oauth/qr_panel.html")
def wechat_qr_panel(
    app: str | None = None, next: str = "", style: str = "", href: str = ""
) -> dict[str, Any]:
    """The QR panel of website app ``app`` (default: DEFAULT_APP); ``next``: where the login
    goes; ``style`` (``black``/``white``) and ``href`` (a stylesheet URL): wxLogin.js's own."""
    wechat_app = get_app(app)
    kwargs = {} if wechat_app.name == default_app_name() else {"app": wechat_app.name}
    url = reverse("wechat_oauth:qr", kwargs=kwargs)
    return {
        "element_id": f"wechat-oauth-qr-{get_random_string(8)}",
        "parameters_url": f"{url}?{urlencode({'next': next})}" if next else url,
        "wxlogin_js": app_settings.WXLOGIN_JS_URL,
        "style": style,
        "href": href,
    }
