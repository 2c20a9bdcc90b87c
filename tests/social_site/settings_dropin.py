"""The same site after the README's change ("Already on allauth / social-auth?"): the two
backend paths, and the unionid pipeline step. "wechat_oauth" is in INSTALLED_APPS already."""

from tests.social_site.settings import *  # noqa: F403

AUTHENTICATION_BACKENDS = [
    "wechat_oauth.contrib.social.backends.WeixinOAuth2APP",
    "wechat_oauth.contrib.social.backends.WeixinOAuth2",
    "django.contrib.auth.backends.ModelBackend",
]

#: social-core's default pipeline with the unionid step after social_user.
SOCIAL_AUTH_PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_names",
    "social_core.pipeline.social_auth.social_uid",
    "social_core.pipeline.social_auth.auth_allowed",
    "social_core.pipeline.social_auth.social_user",
    "wechat_oauth.contrib.social.pipeline.associate_by_unionid",
    "social_core.pipeline.user.get_username",
    "social_core.pipeline.user.create_user",
    "social_core.pipeline.social_auth.associate_user",
    "social_core.pipeline.social_auth.load_extra_data",
    "social_core.pipeline.user.user_details",
)
