from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WeChatOAuthConfig(AppConfig):
    name = "wechat_oauth"
    verbose_name = _("WeChat login")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .redact import install_url_log_redaction

        install_url_log_redaction()
