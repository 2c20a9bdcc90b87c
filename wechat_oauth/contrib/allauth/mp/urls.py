"""The ``weixin_mp`` provider's URLs: ``weixin_mp/login/``, ``.../callback/``, ``.../confirm/``."""

from ..provider import WeixinMPProvider
from ..views import urlpatterns_for

urlpatterns = urlpatterns_for(WeixinMPProvider)
