"""The bare fence of the per-phase profile's floor (views.py, requests with ``X-Storm-Floor``)."""

from django.db import models


class CodeFence(models.Model):
    """One row per code: inserted before the exchange, updated with WeChat's answer, in one
    transaction. All that exactly-once needs (a twin's INSERT waits on the uncommitted row,
    then fails on the unique code), and nothing else the guard adds: no wait bounds, no Redis,
    no budget, no binding. The profile runs the naive site's callback with it to measure the
    guarantee's floor (bench/storm/phases.py)."""

    code_hash = models.CharField(max_length=64, unique=True)
    answer = models.TextField(blank=True)

    class Meta:
        # Also importable where the naive site's app is not installed (the suite's in-process
        # profile creates the table itself).
        app_label = "naive"
