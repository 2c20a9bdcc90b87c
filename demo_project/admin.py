from django.contrib import admin

from demo_project.models import NaiveAttempt


@admin.register(NaiveAttempt)
class NaiveAttemptAdmin(admin.ModelAdmin):
    list_display = ("created_at", "resent", "outcome", "errcode", "errmsg", "openid")
    list_filter = ("outcome", "resent")
