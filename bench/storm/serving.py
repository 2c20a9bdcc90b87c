"""How the storm serves a site: gunicorn masters with gthread workers (``wsgi``, the default) or
with uvicorn's workers (``asgi``: ``python -m bench.storm --asgi``).

Under ASGI the process model stays gunicorn's (a master per instance, its workers forked from
it, a killed worker replaced by the master), so the fault scenarios find, kill and wait for
workers the same way; only the worker class and the application change. gunicorn's
``--threads`` does not apply to uvicorn workers: Django runs each request's sync code in a
thread of its own (``ThreadSensitiveContext``) and async views on the worker's event loop.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

SERVERS = ("wsgi", "asgi")
#: Every site's ASGI application: its settings module comes from the environment.
ASGI_APPLICATION = "bench.storm.asgi:application"
#: uvicorn's gunicorn worker (the uvicorn-worker package; uvicorn.workers is deprecated).
ASGI_WORKER = "uvicorn_worker.UvicornWorker"


def application(server: str, wsgi: str) -> str:
    """What gunicorn serves: the site's WSGI application, or the storm's ASGI one."""
    return ASGI_APPLICATION if server == "asgi" else wsgi


def worker_arguments(server: str, threads: int) -> list[str]:
    """gunicorn's worker class (and threads per worker, for gthread)."""
    if server == "asgi":
        return ["--worker-class", ASGI_WORKER]
    return ["--worker-class", "gthread", "--threads", str(threads)]


def describe(server: str, threads: int) -> str:
    """The workers, for the report's setup."""
    if server == "asgi":
        return (
            f"worker class {ASGI_WORKER} (uvicorn, loop {_uvicorn_choice('loop')}, http "
            f"{_uvicorn_choice('http')}): the sites' bench/storm/asgi.py; Django runs sync "
            "code in a thread per request"
        )
    return f"worker class gthread, {threads} threads per worker"


def unavailable(server: str) -> str | None:
    """Why ``server`` cannot run here, or None."""
    if server != "asgi":
        return None
    for module, package in (("uvicorn", "uvicorn"), ("uvicorn_worker", "uvicorn-worker")):
        try:
            importlib.import_module(module)
        except ImportError:
            return f'--asgi needs {package} (pip install -e ".[bench]")'
    return None


def versions(server: str) -> dict[str, Any]:
    if server != "asgi":
        return {}
    return {name: _version(name) for name in ("uvicorn", "uvicorn-worker", "asgiref")}


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _uvicorn_choice(what: str) -> str:
    """What uvicorn's "auto" picks here: uvloop/httptools when installed, else asyncio/h11."""
    module = {"loop": "uvloop", "http": "httptools"}[what]
    try:
        importlib.import_module(module)
    except ImportError:
        return {"loop": "asyncio", "http": "h11"}[what]
    return module
