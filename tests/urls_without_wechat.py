"""A URLconf that forgot include("wechat_oauth.urls") (system check E008)."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
