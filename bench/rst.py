"""The docs' benchmark tables (docs/benchmarks/*.inc) as reStructuredText, written from a run's
JSON by the bench itself, so that a table holds the figures of one run and nothing typed by
hand."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
INCLUDES = ROOT / "docs" / "benchmarks"


def list_table(rows: Sequence[Sequence[str]], widths: Sequence[int] | None = None) -> list[str]:
    """A ``list-table`` directive: the first row is the header."""
    lines = [".. list-table::", "   :header-rows: 1"]
    if widths:
        lines.append(f"   :widths: {' '.join(str(w) for w in widths)}")
    lines.append("")
    for row in rows:
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {cell}" for cell in row[1:])
    return lines


def write_include(
    argv: list[str] | None,
    default_sources: Sequence[str],
    default_target: str,
    render: Callable[[list[dict[str, Any]]], str | None],
) -> int:
    """The command line of a table writer: ``[run.json ...] [--out file.inc]``, by default the
    bench's latest results (bench/results/) into docs/benchmarks/. ``render`` answers None when
    the runs hold nothing for its table."""
    argv = sys.argv[1:] if argv is None else list(argv)
    target = INCLUDES / default_target
    if "--out" in argv:
        at = argv.index("--out")
        target = Path(argv[at + 1])
        del argv[at : at + 2]
    sources = [Path(a) for a in argv] or [
        path for path in (ROOT / "bench" / "results" / name for name in default_sources) if path.exists()
    ]
    text = render([json.loads(path.read_text()) for path in sources])
    if text is None:
        print(f"nothing for {target.name} in {', '.join(map(str, sources)) or 'no run'}", file=sys.stderr)
        return 1
    target.write_text(text)
    print(f"wrote {target}", file=sys.stderr)
    return 0
