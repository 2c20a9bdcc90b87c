"""URLs of the benchmarks: the admin (bench/admin_changelist.py) and the app's own views."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("wechat/", include("wechat_oauth.urls")),
]
