from django.urls import path

from bench.storm.naive import views
from bench.storm.serverside import whoami

urlpatterns = [
    path("wechat/login/", views.login_view),
    path("wechat/callback/", views.callback),
    path("wechat/web/login/", views.login_view, {"app": "web"}),
    path("wechat/web/callback/", views.callback, {"app": "web"}),
    path("wechat/mini/session/", views.mini_session, {"app": "mini"}),
    path("wechat/corp/login/", views.wecom_login, {"app": "corp"}),
    path("wechat/corp/callback/", views.wecom_callback, {"app": "corp"}),
    path("whoami/", whoami),
]
