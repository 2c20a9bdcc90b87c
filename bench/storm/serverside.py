"""What both storm sites run besides their login views: ``/whoami/`` and the SQL counter."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse

from bench.storm import phases

#: Request header (as sent by the load generator) that asks for the SQL count, and its META key.
COUNT_HEADER = "X-Storm-Count-SQL"
COUNT_META = phases.meta_key(COUNT_HEADER)
#: Response headers: SQL statements, wall time and CPU time of this request inside Django.
SQL_HEADER = "X-Storm-SQL"
TIME_HEADER = "X-Storm-Time-Ms"
CPU_HEADER = "X-Storm-CPU-Ms"
SQL_TIME_HEADER = "X-Storm-SQL-Ms"


def whoami(request: HttpRequest) -> JsonResponse:
    """The logged-in user's name, or null."""
    user = request.user
    return JsonResponse({"user": user.get_username() if user.is_authenticated else None})


class SQLCountMiddleware:
    """For a request carrying ``X-Storm-Count-SQL``, answer ``X-Storm-SQL: <n>``: the SQL
    statements Django sent on the default connection during the whole request, as Django's
    debug cursor logs them: every ``execute``/``executemany`` plus the ``BEGIN``/``COMMIT``/
    ``ROLLBACK`` of transactions (Django >= 4.2 logs those too), session load and save
    included. Redis commands are not SQL and are not counted. Other requests pay nothing.

    Also ``X-Storm-Time-Ms`` (wall time inside Django, this middleware to this middleware) and
    ``X-Storm-CPU-Ms`` (CPU time of the worker thread serving the request in that span: Django,
    the app and the client libraries it calls; not the CPU of PostgreSQL, Redis or the fake),
    and ``X-Storm-SQL-Ms`` (the sum of the logged statements' durations, as Django times them).

    A request also carrying ``X-Storm-Profile`` gets ``X-Storm-Phases``: the same span cut
    into the phases of bench/storm/phases.py (their SQL adds up to ``X-Storm-SQL``).
    ``STORM_COUNT_DATABASE`` (default ``"default"``) names the connection counted.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.alias = getattr(settings, "STORM_COUNT_DATABASE", "default")
        phases.install()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if COUNT_META not in request.META:
            return self.get_response(request)
        connection = connections[self.alias]
        previous = connection.force_debug_cursor
        connection.force_debug_cursor = True
        connection.queries_log.clear()
        started, cpu = time.perf_counter(), time.thread_time()
        profiler = phases.start(connection) if phases.PROFILE_META in request.META else None
        try:
            response = self.get_response(request)
            if profiler is not None:
                response[phases.PHASES_HEADER] = profiler.finish()
        finally:
            phases.stop()
            connection.force_debug_cursor = previous
        response[TIME_HEADER] = f"{(time.perf_counter() - started) * 1000:.2f}"
        response[CPU_HEADER] = f"{(time.thread_time() - cpu) * 1000:.2f}"
        response[SQL_HEADER] = str(len(connection.queries_log))
        response[SQL_TIME_HEADER] = f"{sum(float(q['time']) for q in connection.queries_log) * 1000:.2f}"
        connection.queries_log.clear()
        return response
