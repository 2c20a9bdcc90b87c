"""The ``weixin`` provider's URLs (allauth includes them under ``accounts/``): ``weixin/login/``,
``weixin/login/callback/`` and ``weixin/login/confirm/``, named as allauth names them."""

from .provider import WeixinProvider
from .views import urlpatterns_for

urlpatterns = urlpatterns_for(WeixinProvider)
