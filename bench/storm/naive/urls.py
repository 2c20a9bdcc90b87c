from django.urls import path

from bench.storm.naive import views

urlpatterns = [
    path("wechat/login/", views.login_view),
    path("wechat/callback/", views.callback),
    path("wechat/web/login/", views.login_view, {"app": "web"}),
    path("wechat/web/callback/", views.callback, {"app": "web"}),
    path("wechat/mini/session/", views.mini_session, {"app": "mini"}),
    path("wechat/corp/login/", views.wecom_login, {"app": "corp"}),
    path("wechat/corp/callback/", views.wecom_callback, {"app": "corp"}),
    # Also by the Mini Program's session token (Authorization: Bearer).
    path("whoami/", views.whoami),
]
