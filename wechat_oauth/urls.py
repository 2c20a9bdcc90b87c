from django.urls import path

from . import views

app_name = "wechat_oauth"

urlpatterns = [
    # DEFAULT_APP's login and callback.
    path("login/", views.login, name="login"),
    path("callback/", views.callback, name="callback"),
    path("confirm/", views.confirm, name="confirm"),
    path("error/", views.error, name="error"),
    path("qr/", views.qr_panel, name="qr"),
    # Any configured app's (WECHAT_OAUTH["APPS"]): reverse("wechat_oauth:login",
    # kwargs={"app": "web"}).
    path("<slug:app>/login/", views.login, name="login"),
    path("<slug:app>/callback/", views.callback, name="callback"),
    path("<slug:app>/qr/", views.qr_panel, name="qr"),
    # A Mini Program's login (KIND "miniprogram"): JSON in, a session token out.
    path("<slug:app>/session/", views.session, name="session"),
    path("<slug:app>/session/revoke/", views.revoke_session, name="session_revoke"),
]
