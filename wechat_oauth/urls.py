from django.urls import path

from . import views

app_name = "wechat_oauth"

urlpatterns = [
    path("login/", views.login, name="login"),
    path("callback/", views.callback, name="callback"),
    path("confirm/", views.confirm, name="confirm"),
    path("error/", views.error, name="error"),
]
