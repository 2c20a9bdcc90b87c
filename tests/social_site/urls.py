from django.urls import include, path

from tests.social_site import views

urlpatterns = [
    path("", views.home),
    path("login/", views.login_page),
    path("login-error/", views.login_error),
    path("whoami/", views.whoami),
    path("logout/", views.log_out),
    path("", include("social_django.urls", namespace="social")),
]
