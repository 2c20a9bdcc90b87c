from django.urls import path

from bench.storm.naive import views
from bench.storm.serverside import whoami

urlpatterns = [
    path("wechat/login/", views.login_view),
    path("wechat/callback/", views.callback),
    path("wechat/web/login/", views.login_view, {"app": "web"}),
    path("wechat/web/callback/", views.callback, {"app": "web"}),
    path("whoami/", whoami),
]
