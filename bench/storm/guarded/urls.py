from django.urls import include, path

from bench.storm.serverside import whoami

urlpatterns = [
    path("wechat/", include("wechat_oauth.urls")),
    path("whoami/", whoami),
]
