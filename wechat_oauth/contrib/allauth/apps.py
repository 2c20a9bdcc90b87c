from django.apps import AppConfig


class AllauthDropInConfig(AppConfig):
    name = "wechat_oauth.contrib.allauth"
    label = "wechat_oauth_allauth"
    verbose_name = "WeChat login for django-allauth"

    def ready(self) -> None:
        from . import checks, completion  # noqa: F401  (system checks; signal receivers)

        completion.connect_receivers()
