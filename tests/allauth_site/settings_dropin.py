"""The allauth site after the README's change: allauth's Weixin provider replaced by the
drop-in (``wechat_oauth`` for the fence's table, ``wechat_oauth.contrib.allauth`` for the
providers ``weixin`` and ``weixin_mp``). Nothing else differs from settings_stock."""

from tests.allauth_site.settings import *  # noqa: F403
from tests.allauth_site.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "wechat_oauth", "wechat_oauth.contrib.allauth"]
