"""How long does the cache front's wait for an exchange in flight really last?

    python -m bench.storm.redis_wait_probe --port 6379 --socket-timeout 0.05

``CacheFront.wait(up_to=...)`` blocks on BLPOP in slices of 0.8 x the cache's SOCKET_TIMEOUT.
Redis resolves blocked-command timeouts at its ``hz`` (10 by default: ~100 ms), so a slice
shorter than that returns only after ~100 ms; with SOCKET_TIMEOUT 0.05 (the README's
recommendation) the client gives up first, the front logs "unusable" and the waiter goes to
the database path after ~50 ms, whatever ``up_to`` says. This probe measures both, on a
Redis given by port (the storm passes its private one; keys are under a random prefix).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import time
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--socket-timeout", type=float, action="append")
    parser.add_argument("--up-to", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    timeouts = args.socket_timeout or [0.05, 0.5]

    import redis

    raw = redis.Redis(port=args.port, socket_timeout=2)
    hz = raw.config_get("hz").get("hz")
    blpop_ms = {}
    for timeout in (0.01, 0.04, 0.2):
        samples = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            raw.blpop([f"storm-probe:{secrets.token_hex(8)}"], timeout=timeout)
            samples.append(round((time.perf_counter() - started) * 1000, 1))
        blpop_ms[str(timeout)] = samples

    from django.conf import settings

    caches: dict[str, dict[str, Any]] = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    for db, timeout in enumerate(timeouts):
        caches[f"t{timeout}"] = {
            "BACKEND": "django_redis.cache.RedisCache",
            # One database number per alias: django-redis shares a connection pool (and so its
            # socket timeout) between aliases with the same URL.
            "LOCATION": f"redis://127.0.0.1:{args.port}/{db}",
            "KEY_PREFIX": f"storm-probe-{secrets.token_hex(4)}",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.05, "SOCKET_TIMEOUT": timeout},
        }
    settings.configure(SECRET_KEY="probe", USE_TZ=True, DATABASES={}, CACHES=caches,
                       INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                                       "wechat_oauth"],
                       WECHAT_OAUTH={"APP_ID": "wxprobe", "APP_SECRET": "probe"})
    import django

    django.setup()
    from django.utils import timezone

    from wechat_oauth.guard.cache import CacheFront

    warnings: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            warnings.append(record.getMessage()[:160])

    logging.getLogger("wechat_oauth.cache").addHandler(Collect())
    fronts = {}
    for timeout in timeouts:
        front = CacheFront(f"t{timeout}")
        waited = []
        for i in range(args.rounds):
            keys = front.keys("wxprobe", f"nobody-publishes-{secrets.token_hex(6)}-{i}")
            started = time.perf_counter()
            front.wait(keys, arrival=timezone.now(), resent=False, up_to=args.up_to)
            waited.append(round((time.perf_counter() - started) * 1000))
        fronts[str(timeout)] = {"wait_slice_s": round(front.wait_slice, 3),
                                f"wait_up_to_{args.up_to}s_returned_after_ms": waited}
    print(json.dumps({"redis_hz": hz, "blpop_timeout_s_to_observed_ms": blpop_ms,
                      "cache_front_wait_by_socket_timeout_s": fronts,
                      "warnings_logged": warnings}))


if __name__ == "__main__":
    main()
