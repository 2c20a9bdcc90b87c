from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from demo_project import views

urlpatterns = [
    path("", views.home, name="home"),
    path("scan/", views.scan, name="scan"),
    path("mini/", views.mini, name="mini"),
    path("mini/report/", views.mini_report, name="mini_report"),
    path("logout/", views.logout_view, name="logout"),
    path("naive/login/", views.naive_login, name="naive_login"),
    path("naive/callback/", views.naive_callback, name="naive_callback"),
    path("naive/mini/session/", views.naive_session, name="naive_session"),
    path("wechat/", include("wechat_oauth.urls")),
    path("admin/", admin.site.urls),
]

# Drop-in mode (demo_project/drop_in.py): the library's URLs, as its documentation mounts them.
if getattr(settings, "DEMO_DROP_IN", "") == "allauth":
    urlpatterns.append(path("accounts/", include("allauth.urls")))
elif getattr(settings, "DEMO_DROP_IN", "") == "social":
    urlpatterns.append(path("social/", include("social_django.urls", namespace="social")))
