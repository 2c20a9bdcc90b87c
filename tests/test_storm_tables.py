"""bench.storm.tables' lines under each storm table: the faults' headline figures, read from the
report's ``faults`` section as bench/storm/faults.py writes it."""

from __future__ import annotations

from bench.storm import tables


def _kill(answered_s: float) -> dict[str, object]:
    return {"killed_worker": "instance A", "duplicates_answered_s_after_kill": answered_s, "logged_in": 1}


def test_the_faults_line_gives_the_kill_and_the_restart_figures():
    faults = {
        "worker_sigkill": {"redis_front_up": [_kill(0.876)], "redis_stopped_database_path": [_kill(0.131)]},
        "database_restart": {
            "down_s": 2.225,
            "recovery_s": 0.218,
            "phases": {
                "before": {"http_503_database_page": 0, "http_500_reached_a_user": 0},
                "down": {"http_503_database_page": 87, "http_500_reached_a_user": 0},
                "after": {"http_503_database_page": 2, "http_500_reached_a_user": 1},
            },
        },
    }
    kill, restart = tables._faults(faults)
    assert "0.88 s after (through the front), 0.13 s after (through the database)" in kill
    assert restart == (
        "Database restarted mid-storm (down 2.2 s): 89 logins got the database page (503), 1 a 500; "
        "logins succeeded again 0.22 s after it was back."
    )


def test_a_skipped_restart_says_why_and_a_run_without_faults_says_nothing():
    faults = {"database_restart": {"skipped": "SQLite has no server"}}
    assert tables._faults(faults) == ["Database restart: skipped (SQLite has no server)."]
    assert tables._faults({}) == []


def _library(failed_by_mode):
    return {
        "library": "a library, its backend",
        "targets": [{"target": "drop-in: 0 failed", "met": failed_by_mode["dropin"] == 0}],
        "patterns": {
            "abort_resend": {
                mode: {"logins": 19, "user_visible_failure_rate": n / 19, "exchanges_per_code": {"max": 1}}
                for mode, n in failed_by_mode.items()
            }
        },
    }


def test_a_library_storm_has_a_column_per_library_and_site():
    report = {
        "when": "2026-01-01T00:00:00+00:00",
        "setup": {"instances": 2, "workers": 2},
        "databases": {
            "postgres": {
                "database": {"version": "15"},
                "libraries": {
                    "social": _library({"stock": 19, "dropin": 0}),
                    "allauth": _library({"stock": 18, "dropin": 1}),
                },
            }
        },
    }
    text = tables.rst([report])
    assert text is not None
    table = text.split("\n\n")[2]  # the facts, the directive's options, the rows
    header, row = (block.split("\n     - ") for block in table.split("   * - ")[1:3])
    assert [cell.strip() for cell in header] == [
        "Pattern",
        "social: stock",
        "social: drop-in",
        "allauth: stock",
        "allauth: drop-in",
    ]
    assert [cell.strip() for cell in row] == [
        "``abort_resend``",
        "19 of 19, 1",
        "0 of 19, 1",
        "18 of 19, 1",
        "1 of 19, 1",
    ]
    assert "Targets missed: allauth: drop-in: 0 failed." in text
