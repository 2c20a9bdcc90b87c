"""Run the benchmarks and print one JSON summary (also written to bench/results/latest.json).

    python -m bench                 # every suite
    python -m bench --only exchange # one suite

Needs PostgreSQL at 127.0.0.1:5432 (user postgres) and, for "front", Redis at 127.0.0.1:6379;
see bench/settings.py to point them elsewhere.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

SUITES = ("exchange", "front", "purge", "admin_changelist")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=SUITES, action="append", help="run only this suite")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument(
        "--results",
        type=Path,
        default=Path(__file__).parent / "results",
        help="folder of latest.json (default bench/results; python -m bench.tables reads it there)",
    )
    args = parser.parse_args(argv)

    from bench.environment import point_settings_at, setup_django

    setup_django()
    from wechat_oauth.testing import FakeWeChat

    report: dict[str, object] = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": _cpus()},
    }
    with FakeWeChat(app_id="wxbench", app_secret="bench-secret") as fake:
        point_settings_at(fake)
        for suite in args.only or SUITES:
            module = importlib.import_module(f"bench.{suite}")
            sizes = {"iterations": 50, "wakeups": 20} if args.quick else {}
            report[suite] = module.run(fake, **sizes)
    text = json.dumps(report, indent=2)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "latest.json").write_text(text + "\n")
    print(text)
    return 0


def _cpus() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
