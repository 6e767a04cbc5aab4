"""The SQLite history store: recording, trend, diff, the commands, and concurrent writers."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_report_samples import sample_results
from typer.testing import CliRunner

from audit.cli import app
from audit.history import (
    HISTORY_ENV,
    TREND_LENGTH,
    HistoryUnavailable,
    default_location,
    open_store,
    redact,
)
from audit.history_diff import diff_snapshots, snapshot
from audit.run import write_results
from audit.vocabulary import Status

TESTS = Path(__file__).parent
IMPROVED = {"AUTH-01": Status.PASS, "NET-01": Status.FAIL, "ORG-01": Status.PASS}


@pytest.fixture(autouse=True)
def _history_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    location = tmp_path / "store" / "history.sqlite"
    monkeypatch.setenv(HISTORY_ENV, str(location))
    return location


def test_default_location_is_per_user_unless_overridden(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    monkeypatch.delenv(HISTORY_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_location() == str(tmp_path / "xdg/mis-audit/history.sqlite")
    monkeypatch.setenv(HISTORY_ENV, "postgresql://audit@db.invalid/history")
    assert default_location() == "postgresql://audit@db.invalid/history"


def test_a_store_path_that_cannot_exist_is_unavailable_not_a_crash() -> None:
    with pytest.raises(HistoryUnavailable):
        open_store("/tmp/bad\x00name/history.sqlite").runs()


def test_redact_hides_a_database_password() -> None:
    assert redact("postgresql://audit:s3cret@db:5432/h") == "postgresql://audit:***@db:5432/h"
    assert redact("postgresql://audit@db/h") == "postgresql://audit@db/h"
    assert redact("/var/lib/history.sqlite") == "/var/lib/history.sqlite"


def test_first_run_has_no_previous_and_the_second_sees_what_changed() -> None:
    store = open_store()
    first = store.record(sample_results())
    assert first.run_id == 1 and first.previous is None and first.regressions == []
    second = store.record(sample_results(IMPROVED))
    assert second.previous is not None and second.previous.run_id == 1
    assert {(c.control, c.target, c.before, c.after) for c in second.regressions} == {
        ("NET-01", "db-main", Status.WAIVED, Status.FAIL),
        ("NET-01", "web-front", Status.PASS, Status.FAIL)}
    assert {(c.control, c.target) for c in second.fixes} == {
        ("AUTH-01", "web-front"), ("AUTH-01", "db-main"), ("ORG-01", "organisation")}
    assert [point.run_id for point in second.trend] == [1, 2]


def test_only_runs_of_the_same_system_and_profiles_compare() -> None:
    store = open_store()
    store.record(sample_results())
    other = sample_results().model_copy(update={"organisation": "Another clinic"})
    assert store.record(other).previous is None
    assert store.record(sample_results()).previous.run_id == 1


def test_trend_is_capped() -> None:
    store = open_store()
    for _ in range(TREND_LENGTH + 3):
        summary = store.record(sample_results())
    assert len(summary.trend) == TREND_LENGTH
    assert summary.trend[-1].run_id == TREND_LENGTH + 3


def test_new_findings_are_results_that_were_not_there_before() -> None:
    old = snapshot(sample_results())
    del old[("AUTH-01", "host.ssh_mfa", "web-front")]
    del old[("NET-01", "net.db_exposed", "web-front")]
    changes = diff_snapshots(old, snapshot(sample_results()))
    assert [(c.control, c.target, c.before) for c in changes.new] == \
        [("AUTH-01", "web-front", None)]       # a new pass is counted, not listed
    assert changes.newly_passing == 1
    assert changes.regressions == [] and changes.fixes == []
    assert not changes.failed() and changes.failed(strict=True)


def test_stored_run_keeps_its_results() -> None:
    store = open_store()
    store.record(sample_results())
    stored, results = store.run(1)
    assert stored.score == 41.2 and stored.profiles == "kz-mis-baseline 2026.1"
    assert results == snapshot(sample_results())
    with pytest.raises(KeyError):
        store.run(99)


def test_history_command_lists_runs(tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "200"})
    empty = runner.invoke(app, ["history"])
    assert empty.exit_code == 0 and "no runs recorded" in empty.output
    store = open_store()
    store.record(sample_results())
    store.record(sample_results(IMPROVED))
    listed = runner.invoke(app, ["history", "--limit", "5"])
    assert listed.exit_code == 0, listed.output
    assert "City Clinic No. 5" in listed.output and "41.2" in listed.output
    assert "NOT READY" in listed.output
    as_json = json.loads(runner.invoke(app, ["history", "--json"]).output)
    assert [(run["run_id"], run["verdict"]) for run in as_json] == [(2, "not_ready"),
                                                                    (1, "not_ready")]
    assert runner.invoke(app, ["history", "--history", "off"]).exit_code == 2


def test_diff_command_on_run_ids_and_on_files(tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "200"})
    store = open_store()
    store.record(sample_results())
    store.record(sample_results(IMPROVED))
    by_id = runner.invoke(app, ["diff", "1", "#2"])
    assert by_id.exit_code == 1, by_id.output          # something regressed
    assert "regressed (2)" in by_id.output and "fixed (3)" in by_id.output
    write_results(sample_results(), tmp_path / "old")
    write_results(sample_results(), tmp_path / "new")
    same = runner.invoke(app, ["diff", str(tmp_path / "old/results.json"),
                               str(tmp_path / "new/results.json")])
    assert same.exit_code == 0 and "no result changed" in same.output
    mixed = runner.invoke(app, ["diff", "2", str(tmp_path / "new/results.json")])
    assert mixed.exit_code == 1 and "regressed" in mixed.output


def test_diff_shows_markup_in_findings_as_text(tmp_path: Path) -> None:
    hostile = sample_results().model_copy(update={"results": [
        result.model_copy(update={"summary": "[/] [bold red]banner[/bold red] [link=x]"})
        for result in sample_results(IMPROVED).results]})
    write_results(sample_results(), tmp_path / "old")
    write_results(hostile, tmp_path / "new")
    done = CliRunner(env={"COLUMNS": "300"}).invoke(app, [
        "diff", str(tmp_path / "old/results.json"), str(tmp_path / "new/results.json")])
    assert done.exit_code == 1, done.output
    assert "[/] [bold red]banner[/bold red] [link=x]" in done.output


@pytest.mark.parametrize("arguments", [["diff", "7", "1"], ["diff", "nonsense", "1"],
                                       ["diff", "README.md", "1"]])
def test_diff_of_what_is_not_a_run_is_exit_2(arguments: list[str]) -> None:
    open_store().record(sample_results())
    done = CliRunner().invoke(app, arguments)
    assert done.exit_code == 2
    assert "error:" in done.output and "Traceback" not in done.output


WRITER = """
import os, sys, time
sys.path.insert(0, sys.argv[2])
from audit.history import open_store
from test_report_samples import sample_results
store = open_store(sys.argv[1])
mine = sample_results().model_copy(update={"system": sys.argv[5]})
runs = [mine] * int(sys.argv[3])
while not os.path.exists(sys.argv[4]):   # both writers start together
    time.sleep(0.01)
last = None
for results in runs:
    summary = store.record(results)
    # The previous run of this system is this writer's last one, whatever the other wrote.
    assert (summary.previous.run_id if summary.previous else None) == last, (summary, last)
    last = summary.run_id
"""


def test_two_concurrent_writers_do_not_corrupt_the_store(_history_in_tmp: Path) -> None:
    runs_each = 25
    go = _history_in_tmp.parent.parent / "go"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(_history_in_tmp), str(TESTS),
                                 str(runs_each), str(go), f"writer-{number}"],
                                stderr=subprocess.PIPE, text=True)
               for number in range(2)]
    time.sleep(1.5)     # both have imported and are waiting
    go.touch()
    for writer in writers:
        _, errors = writer.communicate(timeout=120)
        assert writer.returncode == 0, errors
    with sqlite3.connect(_history_in_tmp) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        ids = [row[0] for row in connection.execute("SELECT id FROM mis_audit_runs ORDER BY id")]
        counts = connection.execute("SELECT run_id, count(*) FROM mis_audit_results "
                                    "GROUP BY run_id").fetchall()
    assert ids == list(range(1, 2 * runs_each + 1))
    assert {count for _, count in counts} == {len(sample_results().results)}
    assert len(open_store(str(_history_in_tmp)).runs(limit=100)) == 2 * runs_each
