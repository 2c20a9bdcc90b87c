"""What the naive callback (``/naive/callback/``) did, one row per request it handled."""

from __future__ import annotations

from django.db import models


class NaiveAttempt(models.Model):
    """One request to the naive callback and its outcome (the guarded side has OAuthCodeUse)."""

    class Outcome(models.TextChoices):
        LOGGED_IN = "logged_in", "logged in"
        STATE = "state", "state check failed"
        UPSTREAM = "upstream", "WeChat refused the code"
        UNAVAILABLE = "unavailable", "WeChat did not answer"
        DENIED = "denied", "consent refused"

    created_at = models.DateTimeField(auto_now_add=True)
    #: The request carried WeChat's uin/key/pass_ticket: the re-sent callback, the one the user sees.
    resent = models.BooleanField(default=False)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    errcode = models.IntegerField(null=True, blank=True)
    errmsg = models.CharField(max_length=255, blank=True)
    openid = models.CharField(max_length=128, blank=True)
    #: Keyed hash of the code (wechat_oauth.hashing.code_hash), never the code itself.
    code_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%H:%M:%S} {self.get_outcome_display()}"

    @property
    def failed(self) -> bool:
        return self.outcome != self.Outcome.LOGGED_IN
