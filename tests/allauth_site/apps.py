import os

from django.apps import AppConfig, apps


class AllauthSiteConfig(AppConfig):
    name = "tests.allauth_site"
    label = "allauth_site"

    def ready(self) -> None:
        fake = os.environ.get("ALLAUTH_SITE_FAKE_WECHAT", "").rstrip("/")
        if fake and apps.is_installed("allauth.socialaccount.providers.weixin"):
            send_stock_provider_to(fake)


def send_stock_provider_to(base_url: str) -> None:
    """allauth's Weixin provider takes its authorize page from its settings (AUTHORIZE_URL) but
    calls ``https://api.weixin.qq.com/sns/oauth2/access_token`` and ``/sns/userinfo`` as written
    in its adapter: point those two at the fake WeChat. And it POSTs the exchange's parameters
    as a form (OAuth2Adapter's default method), where WeChat documents a GET with a query string,
    the only form the fake reads: the same parameters go in the query. Nothing else of it
    changes (its state, its session, its completion: what the tests measure)."""
    from allauth.socialaccount.providers.weixin.views import WeixinOAuth2Adapter

    WeixinOAuth2Adapter.access_token_url = f"{base_url}/sns/oauth2/access_token"
    WeixinOAuth2Adapter.profile_url = f"{base_url}/sns/userinfo"
    WeixinOAuth2Adapter.access_token_method = "GET"  # nosec (an HTTP method)
