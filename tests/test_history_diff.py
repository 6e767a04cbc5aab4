"""The three kinds of change `diff` tells apart, and when it fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_report_samples import sample_results
from typer.testing import CliRunner

from audit.cli import app
from audit.history_diff import Snapshot, diff_snapshots
from audit.run import write_results
from audit.vocabulary import Status

KEY = ("NET-01", "net.db_exposed", "db-main")


def _one(status: Status | None) -> Snapshot:
    return {} if status is None else {KEY: (status, "summary")}


@pytest.mark.parametrize(("before", "after", "kind"), [
    (Status.PASS, Status.FAIL, "regressed"),
    (Status.WAIVED, Status.ERROR, "regressed"),
    (Status.PASS, Status.MANUAL, None),
    (Status.FAIL, Status.ERROR, None),
    (Status.ERROR, Status.FAIL, None),
    (Status.PASS, Status.NOT_APPLICABLE, None),
    (Status.FAIL, Status.NOT_APPLICABLE, None),
    (None, Status.FAIL, "new"),
    (None, Status.MANUAL, "new"),
    (Status.NOT_APPLICABLE, Status.FAIL, "new"),
    (Status.NOT_APPLICABLE, Status.ERROR, "new"),
    (Status.NOT_APPLICABLE, Status.PASS, "newly_passing"),
    (None, Status.NOT_APPLICABLE, None),
    (Status.FAIL, Status.PASS, "fixed"),
    (Status.ERROR, Status.WAIVED, "fixed"),
    (Status.MANUAL, Status.PASS, "fixed"),
    (Status.PASS, Status.PASS, None),
])
def test_each_move_is_told_apart(before: Status | None, after: Status, kind: str | None) -> None:
    changes = diff_snapshots(_one(before), _one(after))
    found = {"regressed": len(changes.regressions), "new": len(changes.new),
             "fixed": len(changes.fixes), "newly_passing": changes.newly_passing}
    assert found == {name: int(name == kind) for name in found}
    assert changes.failed() == (kind == "regressed")
    assert changes.failed(strict=True) == (kind in ("regressed", "new"))


def test_vanished_results_are_not_listed() -> None:
    assert diff_snapshots(_one(Status.FAIL), {}).unchanged


def _write(name: str, statuses: dict[str, Status]) -> str:
    results = sample_results(statuses)
    results = results.model_copy(update={"results": [
        r.model_copy(update={"status": statuses.get(r.control, r.status)})
        for r in results.results]})
    write_results(results, Path(name))
    return f"{name}/results.json"


def test_diff_exit_is_1_only_for_regressions_unless_strict(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)     # short paths: the header fits 80 columns
    runner = CliRunner(env={"COLUMNS": "80"})
    # WEB-01 was not applicable: now failing is newly judged, not a regression.
    old = _write("old", {})
    judged = _write("judged", {"WEB-01": Status.FAIL})
    done = runner.invoke(app, ["diff", old, judged])
    assert done.exit_code == 0, done.output
    assert "newly judged, not passing (1)" in done.output and "regressed" not in done.output
    assert "WEB-01  web.hsts  web-front: not_applicable -> fail" in done.output
    assert runner.invoke(app, ["diff", "--strict", old, judged]).exit_code == 1
    regressed = _write("regressed", {"NET-01": Status.FAIL})
    done = runner.invoke(app, ["diff", old, regressed])
    assert done.exit_code == 1 and "regressed (2)" in done.output
    assert all(len(line) <= 80 for line in done.output.splitlines()), done.output
    fixed = runner.invoke(app, ["diff", regressed, old])
    assert fixed.exit_code == 0 and "fixed (2)" in fixed.output
