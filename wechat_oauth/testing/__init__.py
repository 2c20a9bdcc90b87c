"""A fake WeChat for tests, demos and benchmarks: a real HTTP server on 127.0.0.1.

``FakeWeChat`` serves it from a thread of this process; ``FakeWeChatProcess`` runs it as a
child process (``python -m wechat_oauth.testing``) and drives it over HTTP, as does
``RemoteFakeWeChat`` for one started elsewhere. ``FakeWeChatApp`` is the bare WSGI app.

It knows several apps (``FakeApp``, ``add_app``), each with its own openid for a person and,
when bound to the Open Platform account, one unionid per person (``openid_for``,
``unionid_for``).

Mini Program apps are added with ``add_app`` too: ``issue_js_code`` hands out a ``wx.login()``
code for ``/sns/jscode2session``, whose every success rotates the user's ``session_key``
(``session_key_of``).

WeCom (企业微信) corps are added with ``add_corp(corp_id, agent_id, secret=None)``, one agent at
a time, or given at construction (``corps=[FakeAgent(corp_id, agent_id, secret)]``):
``/cgi-bin/gettoken``, ``/cgi-bin/auth/getuserinfo`` (codes of ``issue_wecom_code``),
``/cgi-bin/auth/getuserdetail``, the authorize page with an ``agentid`` and the SSO login page
(``wecom_sso_url``); see :mod:`.wecom`.

Names are imported on first use, so importing this package (as the pytest plugin does) stays
cheap and needs neither Django nor requests.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wechat_oauth.testing.app import FakeWeChatApp as FakeWeChatApp
    from wechat_oauth.testing.apps import DEFAULT_PERSON as DEFAULT_PERSON
    from wechat_oauth.testing.apps import FakeApp as FakeApp
    from wechat_oauth.testing.apps import openid_for as openid_for
    from wechat_oauth.testing.apps import unionid_for as unionid_for
    from wechat_oauth.testing.base import FakeWeChatBase as FakeWeChatBase
    from wechat_oauth.testing.process import FakeWeChatProcess as FakeWeChatProcess
    from wechat_oauth.testing.remote import (
        FakeWeChatControlError as FakeWeChatControlError,
    )
    from wechat_oauth.testing.remote import RemoteFakeWeChat as RemoteFakeWeChat
    from wechat_oauth.testing.server import FakeWeChat as FakeWeChat
    from wechat_oauth.testing.server import ServerThread as ServerThread
    from wechat_oauth.testing.state import DEFAULT_APP_ID as DEFAULT_APP_ID
    from wechat_oauth.testing.state import DEFAULT_OPENID as DEFAULT_OPENID
    from wechat_oauth.testing.state import FakeState as FakeState
    from wechat_oauth.testing.state import Fault as Fault
    from wechat_oauth.testing.state import WeChatError as WeChatError
    from wechat_oauth.testing.wecom import DEFAULT_WECOM_USERID as DEFAULT_WECOM_USERID
    from wechat_oauth.testing.wecom import FakeAgent as FakeAgent
    from wechat_oauth.testing.wecom import external_userid_for as external_userid_for
    from wechat_oauth.testing.wecom import wecom_openid_for as wecom_openid_for

_EXPORTS = {
    "DEFAULT_PERSON": "apps",
    "FakeApp": "apps",
    "openid_for": "apps",
    "unionid_for": "apps",
    "DEFAULT_APP_ID": "state",
    "DEFAULT_OPENID": "state",
    "FakeState": "state",
    "Fault": "state",
    "WeChatError": "state",
    "FakeWeChatApp": "app",
    "FakeWeChatBase": "base",
    "FakeWeChat": "server",
    "ServerThread": "server",
    "RemoteFakeWeChat": "remote",
    "FakeWeChatControlError": "remote",
    "FakeWeChatProcess": "process",
    "DEFAULT_WECOM_USERID": "wecom",
    "FakeAgent": "wecom",
    "external_userid_for": "wecom",
    "wecom_openid_for": "wecom",
}

__all__ = [
    "DEFAULT_APP_ID",
    "DEFAULT_OPENID",
    "DEFAULT_PERSON",
    "DEFAULT_WECOM_USERID",
    "FakeAgent",
    "FakeApp",
    "FakeState",
    "FakeWeChat",
    "FakeWeChatApp",
    "FakeWeChatBase",
    "FakeWeChatControlError",
    "FakeWeChatProcess",
    "Fault",
    "RemoteFakeWeChat",
    "ServerThread",
    "WeChatError",
    "external_userid_for",
    "openid_for",
    "unionid_for",
    "wecom_openid_for",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
