"""``python -m bench.asgi.tables [asgi.json] [--out asgi-bench.inc]``: the docs' ASGI table
(docs/benchmarks/asgi-bench.inc) from one run of ``python -m bench.asgi``: a column per serving
(WSGI, ASGI with sync views, ASGI with async views), a block of rows per front."""

from __future__ import annotations

from typing import Any

from bench.rst import list_table, write_include

SERVINGS = (("wsgi", "WSGI"), ("asgi_sync", "ASGI, sync views"), ("asgi_async", "ASGI, async views"))
FRONTS = (("redis", "Redis front"), ("none", "No front"))


def _ms(pair: list[Any]) -> str:
    return " / ".join("—" if value is None else f"{value:.0f}" for value in pair) + " ms"


#: (row label, the cell of one serving's summary).
FIGURES = (
    (
        "plain callback p50 / p99, logins/s",
        lambda s: f"{_ms(s['plain_callback_p50_p99_ms'])}, {s['plain_logins_per_s']}",
    ),
    (
        "``parallel_20`` callback p50 / p99, logins/s",
        lambda s: f"{_ms(s['parallel_20_callback_p50_p99_ms'])}, {s['parallel_20_logins_per_s']}",
    ),
    (
        "burst: threads idle / peak; in a socket wait while waiting",
        lambda s: "{} / {}; {}".format(*s["burst_threads_idle_peak"], s["burst_threads_in_io_while_waiting"]),
    ),
    (
        "burst: DB connections while waiting / peak (the finish)",
        lambda s: (
            f"{s['burst_db_connections_peak_while_waiting']} / {s['burst_db_connections_idle_peak'][1]}"
        ),
    ),
    (
        "burst: redirected to the page and logged in; exchanges of the code",
        lambda s: f"{s['burst_logged_in']}; {s['burst_exchanges_max']}",
    ),
)


def rst(report: dict[str, Any]) -> str:
    machine, setup = report.get("machine", {}), report.get("setup", {})
    summary = report["summary"]
    rounds = setup.get("sizes", {}).get("bursts", "?")
    lines = [
        f"*Run of {report.get('when', '?')[:16].replace('T', ' ')} UTC, ``python -m bench.asgi`` "
        f"({report.get('mode', '?')} run): {machine.get('cpus', '?')} cores ({machine.get('cpu', '?')}), "
        f"PostgreSQL {machine.get('postgres', '?')}, Python {machine.get('python', '?')}, Django "
        f"{machine.get('django', '?')}, asgiref {machine.get('asgiref', '?')}, uvicorn "
        f"{machine.get('uvicorn', '?')}, gunicorn {machine.get('gunicorn', '?')}; "
        f"{setup.get('fake_latency_s', '?')} s upstream; a burst of {setup.get('burst_duplicates', '?')} "
        f"duplicates of one code exchanged in {setup.get('burst_exchange_s', '?')} s, the worst of "
        f"{rounds} rounds.*",
        "",
    ]
    rows = [["Figure", *(label for _, label in SERVINGS)]]
    for front, front_label in FRONTS:
        for label, cell in FIGURES:
            cells = [summary.get(f"{front}/{serving}") for serving, _ in SERVINGS]
            if not any(cells):
                continue
            rows.append([f"{front_label}: {label}", *("—" if c is None else cell(c) for c in cells)])
    lines += list_table(rows, widths=(40, 20, 20, 20))
    met = report.get("targets", {}).get("all_met")
    lines += ["", f"Targets met: {'yes' if met else 'NO'}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return write_include(
        argv, ("asgi.json",), "asgi-bench.inc", lambda reports: rst(reports[0]) if reports else None
    )


if __name__ == "__main__":
    raise SystemExit(main())
