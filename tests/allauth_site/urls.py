from django.urls import include, path

from tests.allauth_site import views

urlpatterns = [
    path("accounts/", include("allauth.urls")),
    path("", views.home, name="home"),
    path("whoami/", views.whoami, name="whoami"),
]
