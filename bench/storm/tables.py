"""``python -m bench.storm.tables [storm.json ...] [--out storm.inc]``: the docs' storm tables
from runs of ``python -m bench.storm``: for each run and database, one table of every kind and
duplicate pattern, guarded / naive (failed logins, exchanges per code, callback p50), the run's
facts above it and its latency probe, throughput and faults below it (of a ``--library``
run: a row per pattern, a column per library and site). By default from
bench/results/storm.json into docs/benchmarks/storm.inc; ``--out`` names the include."""

from __future__ import annotations

from typing import Any

from bench.rst import list_table, write_include
from bench.storm.report import failed_logins

SITES = ("guarded", "naive")


def _pair(figures: dict[str, Any], cell: Any) -> str:
    return " / ".join(str(cell(figures[site])) for site in SITES)


def _failed(site: dict[str, Any]) -> str:
    return f"{failed_logins(site)} of {site['logins']}"


def _exchanges(site: dict[str, Any]) -> str:
    return str(site["exchanges_per_code"].get("max", "—"))


def _p50(site: dict[str, Any]) -> str:
    p50 = site["callback_ms"].get("p50")
    return "—" if p50 is None else f"{p50:.0f}"


def _serving(report: dict[str, Any], section: dict[str, Any]) -> str:
    server = section.get("server", report.get("server", "wsgi"))
    if server != "asgi":
        return "gunicorn gthread workers (WSGI)"
    views = report.get("async_views")
    choice = {True: "async views", False: "sync views"}.get(views, "the views ASYNC_VIEWS picks")
    return f"uvicorn workers (ASGI), {choice}"


def _layout(report: dict[str, Any]) -> str:
    setup = report.get("setup", {})
    return f"{setup.get('instances', '?')} instances x {setup.get('workers', '?')} workers"


def _facts(report: dict[str, Any], db_kind: str, section: dict[str, Any]) -> str:
    machine = report.get("machine", {})
    database = section.get("database", {})
    pool = section.get("pgbouncer")
    load = (section.get("loadavg_at_start", ["?"])[0], section.get("loadavg_at_end", ["?"])[0])
    return (
        f"*Run of {report.get('when', '?')[:16].replace('T', ' ')} UTC,* "
        f"``{report.get('command', 'python -m bench.storm').strip()}`` *: {db_kind} "
        f"({database.get('version', '?')})"
        + (
            f" through PgBouncer (pool_mode {pool.get('pool_mode')}, pool {pool.get('default_pool_size')})"
            if pool
            else ""
        )
        + f", {_serving(report, section)}, {_layout(report)} per site, "
        f"{machine.get('cpus', '?')} CPUs, load average {load[0]} at the start, {load[1]} at the end. "
        "Figures are guarded / naive.*"
    )


def _probe(section: dict[str, Any]) -> list[str]:
    parts = []
    for kind, probes in section.get("latency_probe_80ms", {}).items():
        storm = probes.get("storm_concurrency", {})
        if not storm:
            continue
        guarded, naive = (storm[site]["callback_ms"].get("p50") for site in SITES)
        parts.append(
            f"{kind} {guarded:.1f} / {naive:.1f} ms ({storm['p50_ratio_guarded_over_naive']:.3f}x; "
            f"{probes['one_browser']['p50_ratio_guarded_over_naive']:.3f}x with one browser)"
        )
    lines = []
    if parts:
        lines.append(
            "Latency probe (plain logins at 80 ms, storm concurrency), guarded / naive p50: "
            + "; ".join(parts)
            + "."
        )
    throughput = section.get("throughput_0ms", {})
    if throughput.get("ratio_guarded_over_naive") is not None:
        lines.append(
            f"Throughput at 0 ms upstream ({throughput.get('kind', 'mp')}): guarded / naive "
            f"{throughput['ratio_guarded_over_naive']:.2f}x."
        )
    lines += _faults(section.get("faults", {}))
    targets = section.get("targets", [])
    missed = [target["target"] for target in targets if not target["met"]]
    if targets:
        lines.append(
            "Targets of the run (``targets`` in its JSON): "
            f"{len(targets) - len(missed)} of {len(targets)} met"
            + ("." if not missed else "; missed: " + "; ".join(missed) + ".")
        )
    return lines


def _faults(faults: dict[str, Any]) -> list[str]:
    """The faults' headline figures: how soon a killed holder's duplicates were answered, and
    what a database restart showed the users."""
    lines = []
    kill = faults.get("worker_sigkill", {})
    answered = {
        path: [round(r["duplicates_answered_s_after_kill"], 2) for r in kill.get(key, [])]
        for key, path in (("redis_front_up", "front"), ("redis_stopped_database_path", "database"))
    }
    if any(answered.values()):
        lines.append(
            "Worker SIGKILLed holding an exchange: its duplicates answered "
            + ", ".join(f"{max(s)} s after (through the {path})" for path, s in answered.items() if s)
            + "."
        )
    restart = faults.get("database_restart", {})
    if restart.get("skipped"):
        lines.append(f"Database restart: skipped ({restart['skipped']}).")
    elif restart.get("phases"):
        phases = restart["phases"].values()
        lines.append(
            f"Database restarted mid-storm (down {restart['down_s']:.1f} s): "
            f"{sum(p.get('http_503_database_page', 0) for p in phases)} logins got the database page "
            f"(503), {sum(p.get('http_500_reached_a_user', 0) for p in phases)} a 500; "
            f"logins succeeded again {restart['recovery_s']:.2f} s after it was back."
        )
    return lines


#: A library storm's sites (bench/storm/library_storm.py), in the table's order.
LIBRARY_MODES = (("stock", "stock"), ("dropin", "drop-in"))


def _libraries(report: dict[str, Any], db_kind: str, section: dict[str, Any]) -> str | None:
    """A library storm (``--library``): a row per pattern, a column per library and site
    (stock, drop-in): failed logins and the most exchanges of one code."""
    measured = {name: part for name, part in section.get("libraries", {}).items() if part.get("patterns")}
    if not measured:
        return None
    header = ["Pattern"]
    for name in measured:
        header += [f"{name}: {label}" for _, label in LIBRARY_MODES]
    rows = [header]
    for pattern in next(iter(measured.values()))["patterns"]:
        row = [f"``{pattern}``"]
        for part in measured.values():
            for mode, _ in LIBRARY_MODES:
                figures = part["patterns"].get(pattern, {}).get(mode)
                row.append("—" if figures is None else f"{_failed(figures)}, {_exchanges(figures)}")
        rows.append(row)
    facts = (
        f"*Run of {report.get('when', '?')[:16].replace('T', ' ')} UTC,* "
        f"``{report.get('command', 'python -m bench.storm --library').strip()}`` *: {db_kind} "
        f"({section.get('database', {}).get('version', '?')}), {_layout(report)} per site, "
        f"{report.get('machine', {}).get('cpus', '?')} CPUs. Each cell: failed logins, the most "
        "exchanges of one code.*"
    )
    missed = [
        f"{name}: {target['target']}"
        for name, part in measured.items()
        for target in part.get("targets", [])
        if not target["met"]
    ]
    verdict = "Every target of the run met." if not missed else "Targets missed: " + "; ".join(missed) + "."
    libraries = "; ".join(f"{name}: {part['library']}" for name, part in measured.items())
    widths = (28, *(72 // (len(header) - 1),) * (len(header) - 1))
    return "\n".join([facts, "", *list_table(rows, widths), "", f"{libraries}.", "", verdict])


def rst(reports: list[dict[str, Any]]) -> str | None:
    """The tables of every run and database with patterns (or, of a library storm, with
    libraries); None when there is none."""
    blocks: list[str] = []
    for report in reports:
        for db_kind, section in report.get("databases", {}).items():
            if not isinstance(section, dict):
                continue
            libraries = _libraries(report, db_kind, section)
            if libraries:
                blocks.append(libraries)
            if not section.get("patterns"):
                continue
            rows = [["Kind", "Pattern", "Failed logins", "Exchanges per code (max)", "Callback p50 (ms)"]]
            for kind, by_pattern in section["patterns"].items():
                for name, figures in by_pattern.items():
                    rows.append(
                        [
                            kind,
                            f"``{name}``",
                            _pair(figures, _failed),
                            _pair(figures, _exchanges),
                            _pair(figures, _p50),
                        ]
                    )
            blocks.append(
                "\n".join(
                    [
                        _facts(report, db_kind, section),
                        "",
                        *list_table(rows, widths=(10, 26, 24, 20, 20)),
                        "",
                        *(line + "\n" for line in _probe(section)),
                    ]
                ).rstrip()
            )
    return "\n\n".join(blocks) + "\n" if blocks else None


def main(argv: list[str] | None = None) -> int:
    return write_include(argv, ("storm.json",), "storm.inc", rst)


if __name__ == "__main__":
    raise SystemExit(main())
