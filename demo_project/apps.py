from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo_project"
    verbose_name = "django-wechat-oauth demo"
    default_auto_field = "django.db.models.BigAutoField"
