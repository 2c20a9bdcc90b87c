"""Run a fake WeChat until SIGTERM: ``python -m wechat_oauth.testing --port 0 --latency 0.08``.

Prints one line, ``READY http://HOST:PORT``, once it accepts connections. The app secret comes
from ``--app-secret`` or the ``WECHAT_FAKE_APP_SECRET`` environment variable (random if neither);
it is never printed.

``--asgi`` serves the same fake as an ASGI application under uvicorn (one process, each request
in a thread of a pool: :mod:`wechat_oauth.testing.asgi`) instead of the standard library's
threaded WSGI server; its answers, codes and counters are the same.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from wechat_oauth.testing.base import ServeOptions
from wechat_oauth.testing.server import FakeWeChat
from wechat_oauth.testing.state import DEFAULT_APP_ID


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    defaults = ServeOptions()
    parser = argparse.ArgumentParser(prog="python -m wechat_oauth.testing", description="Run a fake WeChat.")
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port, help="0: any free port (default)")
    parser.add_argument(
        "--latency", type=float, default=defaults.latency, help="seconds added to every API answer"
    )
    parser.add_argument(
        "--code-ttl", type=float, default=defaults.code_ttl, help="seconds a code stays valid"
    )
    parser.add_argument("--app-id", default=DEFAULT_APP_ID)
    parser.add_argument("--app-secret", default=os.environ.get("WECHAT_FAKE_APP_SECRET"))
    parser.add_argument(
        "--consent",
        action="store_true",
        help="show the consent page instead of redirecting at once",
    )
    parser.add_argument(
        "--asgi",
        action="store_true",
        help="serve it as an ASGI app under uvicorn (needs uvicorn) instead of wsgiref threads",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.asgi:
        return serve_asgi(args)
    fake = FakeWeChat(
        args.app_id,
        args.app_secret,
        host=args.host,
        port=args.port,
        latency=args.latency,
        code_ttl=args.code_ttl,
        auto_approve=not args.consent,
    )
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with fake:
        print(f"READY {fake.base_url}", flush=True)
        while not stopping.wait(0.5):
            pass
    return 0


def serve_asgi(args: argparse.Namespace) -> int:
    """The fake's state and WSGI app as :class:`~.server.FakeWeChat` builds them, served by
    uvicorn (which stops on SIGTERM or SIGINT)."""
    from wechat_oauth.testing.asgi import WsgiInThreads, serve

    fake = FakeWeChat(
        args.app_id,
        args.app_secret,
        latency=args.latency,
        code_ttl=args.code_ttl,
        auto_approve=not args.consent,
    )  # never started: only its state and app are served
    serve(
        WsgiInThreads(fake.app),
        args.host,
        args.port,
        lambda url: print(f"READY {url}", flush=True),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
