"""The allauth site as it is: allauth's own Weixin provider."""

from tests.allauth_site.settings import *  # noqa: F403
from tests.allauth_site.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "allauth.socialaccount.providers.weixin"]
