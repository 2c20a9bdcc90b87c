"""The social-auth site with social-core's own WeChat backends (before the change)."""

from tests.social_site.settings import *  # noqa: F403
from tests.social_site.settings import FAKE_WECHAT

AUTHENTICATION_BACKENDS = [
    "social_core.backends.weixin.WeixinOAuth2APP",
    "social_core.backends.weixin.WeixinOAuth2",
    "django.contrib.auth.backends.ModelBackend",
]

if FAKE_WECHAT:  # a server of its own, against a fake WeChat (see settings.py)
    from tests.social_site.fake_routes import route_stock_backends_to

    route_stock_backends_to(FAKE_WECHAT)
    SOCIAL_AUTH_WEIXINAPP_AUTHORIZATION_URL = f"{FAKE_WECHAT}/connect/oauth2/authorize"
    SOCIAL_AUTH_WEIXINAPP_ACCESS_TOKEN_URL = f"{FAKE_WECHAT}/sns/oauth2/access_token"
    SOCIAL_AUTH_WEIXIN_AUTHORIZATION_URL = f"{FAKE_WECHAT}/connect/qrconnect"
    SOCIAL_AUTH_WEIXIN_ACCESS_TOKEN_URL = f"{FAKE_WECHAT}/sns/oauth2/access_token"

# wechat_oauth is installed (unused) only so that one database serves both modes; this site
# logs in through neither it nor a drop-in, so its checks of an app of its own stay quiet.
SILENCED_SYSTEM_CHECKS = [
    *SILENCED_SYSTEM_CHECKS,  # noqa: F405
    "wechat_oauth.E001",
    "wechat_oauth.E004",
    "wechat_oauth.E008",
]
