"""The providers: ``weixin`` (allauth's id, so its ``SocialApp``/``SocialAccount`` rows, URL
names and ``{% provider_login_url "weixin" %}`` keep working) and ``weixin_mp``.

allauth allows one (visible) app per provider, and a site that logs people in both inside
WeChat (an Official Account's web authorisation) and on desktops (a website app's QR login) has
two WeChat apps, with two app ids and secrets. ``weixin`` is whichever one the site had on
allauth's provider (by its scope: ``snsapi_login`` the website app, as allauth's default, or
``snsapi_base``/``snsapi_userinfo`` an Official Account); ``weixin_mp`` is an Official Account
beside a ``weixin`` website app: its own ``SocialApp`` (provider ``weixin_mp``), its own
settings key, its own URLs (``/accounts/weixin_mp/login/``) and template name
(``{% provider_login_url "weixin_mp" %}``).

Both keep the openid as ``SocialAccount.uid`` and WeChat's userinfo answer (or openid, unionid
and scope under ``snsapi_base``) as ``extra_data``, as allauth's provider does.
"""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.providers.base import ProviderAccount
from allauth.socialaccount.providers.oauth2.provider import OAuth2Provider
from allauth.socialaccount.providers.oauth2.views import OAuth2Adapter
from django.http import HttpRequest, HttpResponse

from .compat import allauth_state


class WeixinAccount(ProviderAccount):
    def get_avatar_url(self) -> str | None:
        return self.account.extra_data.get("headimgurl")

    def to_str(self) -> str:
        return str(self.account.extra_data.get("nickname", super().to_str()))


class WeixinOAuth2Adapter(OAuth2Adapter):
    """What allauth's login view and URL helpers need of an adapter (the callback URL). The code
    is never exchanged here: the drop-in's callback view does it through the fence."""

    provider_id = "weixin"
    access_token_url = "https://api.weixin.qq.com/sns/oauth2/access_token"  # nosec (a URL)
    access_token_method = "GET"  # nosec (an HTTP method)

    def complete_login(self, request: HttpRequest, app: Any, token: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the drop-in's callback view completes Weixin logins")


class WeixinMPOAuth2Adapter(WeixinOAuth2Adapter):
    provider_id = "weixin_mp"


class WeixinProvider(OAuth2Provider):
    """WeChat login, by the kind of app its scope names (see the module's docstring)."""

    id = "weixin"
    name = "Weixin"
    account_class = WeixinAccount
    oauth2_adapter_class = WeixinOAuth2Adapter
    #: Unionid linking, off unless the provider's settings say ``"LINK_BY_UNIONID": True``.
    link_by_unionid_default = False

    def get_default_scope(self) -> list[str]:
        return ["snsapi_login"]

    @classmethod
    def kind_for(cls, scope: str) -> str:
        """``open`` (a website app: qrconnect) for ``snsapi_login``, else ``mp``."""
        return "open" if scope == "snsapi_login" else "mp"

    def links_by_unionid(self) -> bool:
        return bool(self.get_settings().get("LINK_BY_UNIONID", self.link_by_unionid_default))

    def extract_uid(self, data: dict[str, Any]) -> str:
        return str(data["openid"])

    def extract_common_fields(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"username": data.get("nickname"), "name": data.get("nickname")}

    def redirect(
        self, request: HttpRequest, process: str, next_url: str | None = None, data: Any = None, **kwargs: Any
    ) -> HttpResponse:
        """The login start (allauth's login view and headless redirect call it): the scope is
        the configured one (a WeChat app asks for one), allauth's ``auth_params`` do not apply."""
        from .views import start_or_error_page

        state = allauth_state(
            process=process, next_url=next_url, data=data, headless=bool(kwargs.get("headless"))
        )
        return start_or_error_page(request, self, state)


class WeixinMPProvider(WeixinProvider):
    """An Official Account (the authorize page inside WeChat) beside a ``weixin`` website app."""

    id = "weixin_mp"
    name = "Weixin Official Account"
    #: Its URLs are its own module's (allauth imports ``<package>.urls`` once per provider).
    package = "wechat_oauth.contrib.allauth.mp"
    oauth2_adapter_class = WeixinMPOAuth2Adapter

    def get_default_scope(self) -> list[str]:
        return ["snsapi_base"]

    @classmethod
    def kind_for(cls, scope: str) -> str:
        return "mp"


provider_classes = [WeixinProvider, WeixinMPProvider]
