"""Run a fake WeChat until SIGTERM: ``python -m wechat_oauth.testing --port 0 --latency 0.08``.

Prints one line, ``READY http://HOST:PORT``, once it accepts connections. The app secret comes
from ``--app-secret`` or the ``WECHAT_FAKE_APP_SECRET`` environment variable (random if neither);
it is never printed.
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
    parser = argparse.ArgumentParser(
        prog="python -m wechat_oauth.testing", description="Run a fake WeChat."
    )
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument(
        "--port", type=int, default=defaults.port, help="0: any free port (default)"
    )
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
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
