"""``python -m bench.tables [latest.json] [--out-dir folder]``: the docs' micro-benchmark
tables from one run of ``python -m bench`` (by default bench/results/latest.json):
docs/benchmarks/micro-exchange.inc, micro-front.inc and purge-admin.inc, each from the suites
of that run it needs (a table whose suites the run left out is not written)."""

from __future__ import annotations

import functools
import platform
import sys
from collections.abc import Callable
from typing import Any

from bench.rst import list_table, write_include


def _ms(figure: dict[str, Any] | float | None, key: str = "p50") -> str:
    value = figure.get(key) if isinstance(figure, dict) else figure
    return "" if value is None else f"{value:.2f} ms"


def _exchange(suite: dict[str, Any]) -> list[list[str]]:
    bare, overhead = suite["bare_exchange_code_ms"], suite["overhead_ms"]
    wake = suite["waiting_duplicate_wakeup_after_commit_ms"]
    return [
        ["Measure", "p50", "p99"],
        ["``client.exchange_code`` alone (HTTP to the fake)", _ms(bare), _ms(bare, "p99")],
        ["``exchange_once`` overhead over it (database guard)", _ms(overhead), _ms(overhead, "p99")],
        [
            "Waiting duplicate answered after the first request commits (database only)",
            _ms(wake),
            _ms(wake, "p99"),
        ],
    ]


def _front(suite: dict[str, Any]) -> list[list[str]]:
    late, sql = suite["late_duplicate_ms"], suite["late_duplicate_sql_queries"]
    wake = suite["in_flight_duplicate_wakeup_after_commit_ms_with_front"]
    return [
        ["Measure", "p50", "p99"],
        [
            "Waiting duplicate answered after the first request commits, with the Redis front",
            _ms(wake),
            _ms(wake, "p99"),
        ],
        [
            f"Late duplicate, database only ({sql['without_front']} SQL statements)",
            _ms(late["without_front"]),
            _ms(late["without_front"], "p99"),
        ],
        [
            f"Late duplicate, Redis front ({sql['with_front']} SQL statements)",
            _ms(late["with_front"]),
            _ms(late["with_front"], "p99"),
        ],
        [
            "Extra cost of the Redis front to the first request",
            _ms(suite["first_request_extra_cost_of_front_ms_p50"]),
            "",
        ],
    ]


def _purge_admin(purge: dict[str, Any], admin: dict[str, Any]) -> list[list[str]]:
    runs = sorted(purge["runs"].items(), key=lambda item: int(item[0].split("_")[0]))
    header = ["Measure", *(f"{int(name.split('_')[0]):,} expired rows" for name, _ in runs)]
    purged = [
        f"{run['seconds']:.2f} s ({run['rows_per_second'] / 1e6:.2f} million rows/s)" for _, run in runs
    ]
    rows = [
        header,
        [f"``purge_oauth_codes`` beside {purge['live_rows']:,} live rows", *purged],
        ["Peak RSS of the purge", *(f"{run['peak_rss_mb']:.1f} MB" for _, run in runs)],
    ]
    if admin:
        pages = admin["pages"]
        # The admin's table of `admin["rows"]` rows sits in the column of that many expired rows.
        at = [f"{int(name.split('_')[0])}" == str(admin["rows"]) for name, _ in runs]
        sql = f"{_most(pages['first_page']['sql_queries'])} ({_most(pages['search_openid']['sql_queries'])})"
        render = (
            f"{pages['first_page']['render_ms']['p50']:.0f} ms / "
            f"{pages['filter_failed']['render_ms']['p50']:.0f} ms"
        )
        rows.append(["Admin changelist: SQL queries (with a search)", *(sql if a else "" for a in at)])
        rows.append(
            ["Admin changelist: render p50, first page / *failed* filter", *(render if a else "" for a in at)]
        )
    return rows


def _most(count: int | list[int]) -> int:
    return max(count) if isinstance(count, list) else count


def _facts(report: dict[str, Any], suites: list[str]) -> str:
    machine = report.get("machine", {})
    names = " and ".join(f"``{name}``" for name in suites)
    return (
        f"*Run of {report.get('when', '?')[:16].replace('T', ' ')} UTC,* ``python -m bench`` *, the* "
        f"{names} *suite{'s' if len(suites) > 1 else ''}: {machine.get('cpus', '?')} cores, Python "
        f"{machine.get('python', platform.python_version())}, loopback, fake WeChat at 0 ms, "
        "PostgreSQL and Redis on this host.*"
    )


def _table(
    report: dict[str, Any], suites: tuple[str, ...], render: Callable[..., list[list[str]]]
) -> str | None:
    if suites[0] not in report:
        return None
    present = [name for name in suites if name in report]
    rows = render(*(report.get(name, {}) for name in suites))
    widths = (60, 20, 20) if len(rows[0]) == 3 else None
    targets = [_targets(name, report[name]) for name in present]
    return "\n".join([_facts(report, present), "", *list_table(rows, widths), "", *targets]) + "\n"


def _targets(name: str, suite: dict[str, Any]) -> str:
    """The suite's own targets, as its JSON states them, and whether this run met them."""
    bounds = ", ".join(f"``{key}`` {value}" for key, value in suite.get("targets", {}).items())
    return f"``{name}`` targets ({bounds}): {'met' if suite.get('targets_met') else '**not met**'}.\n"


#: (include file, the suites of its table, the first of them required, its rows).
TABLES: tuple[tuple[str, tuple[str, ...], Callable[..., list[list[str]]]], ...] = (
    ("micro-exchange.inc", ("exchange",), _exchange),
    ("micro-front.inc", ("front",), _front),
    ("purge-admin.inc", ("purge", "admin_changelist"), _purge_admin),
)


def includes(report: dict[str, Any]) -> dict[str, str]:
    """The include files this run has the suites for: file name, text."""
    texts = {target: _table(report, suites, render) for target, suites, render in TABLES}
    return {target: text for target, text in texts.items() if text is not None}


def _include(target: str, reports: list[dict[str, Any]]) -> str | None:
    return includes(reports[0]).get(target) if reports else None


def main(argv: list[str] | None = None) -> int:
    """``[latest.json] [--out-dir folder]`` (by default docs/benchmarks/)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    folder = None
    if "--out-dir" in argv:
        at = argv.index("--out-dir")
        folder = argv[at + 1]
        del argv[at : at + 2]
    written = [
        write_include(
            [*argv, *(["--out", f"{folder}/{target}"] if folder else [])],
            ("latest.json",),
            target,
            functools.partial(_include, target),
        )
        for target, _, _ in TABLES
    ]
    return 0 if 0 in written else 1


if __name__ == "__main__":
    sys.exit(main())
