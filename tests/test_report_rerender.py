"""A stored run re-renders byte for byte, in every format and language, from results.json alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.vocabulary import Lang

FORMATS = ("html", "sarif", "junit", "csv")
FILES = {"html": "report.html", "sarif": "results.sarif", "junit": "junit.xml",
         "csv": "results.csv"}


def mis_audit(*args: str, cwd: Path, history: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "audit.cli", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=120, check=False,
                          env={**os.environ, "MIS_AUDIT_HISTORY": history})


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs over this machine recorded in one history, all formats, in Kazakh."""
    work = tmp_path_factory.mktemp("rerender")
    history = str(work / "history.sqlite")
    for name in ("one", "two"):
        done = mis_audit("run", "-o", name, "--format", "json," + ",".join(FORMATS),
                         "--lang", "kk", "--quiet", cwd=work, history=history)
        assert done.returncode in (0, 1), done.stderr
    return work


def test_the_second_run_embeds_the_first_as_its_history(two_runs: Path) -> None:
    first = json.loads((two_runs / "one/results.json").read_text())
    second = json.loads((two_runs / "two/results.json").read_text())
    assert first["history"]["run_id"] == 1 and first["history"]["previous"] is None
    assert second["history"]["previous"]["run_id"] == 1
    assert [point["run_id"] for point in second["history"]["trend"]] == [1, 2]
    assert "Алдыңғы тексеру №1" in (two_runs / "two/report.html").read_text()


@pytest.mark.parametrize("lang", list(Lang))
def test_report_command_rerenders_every_format_identically(two_runs: Path, lang: Lang) -> None:
    directories = [two_runs / f"{attempt}-{lang.value}" for attempt in ("first", "again")]
    for directory in directories:
        done = CliRunner(env={"MIS_AUDIT_HISTORY": "off"}).invoke(app, [
            "report", str(two_runs / "two/results.json"), "--format", ",".join(FORMATS),
            "--lang", lang.value, "-o", str(directory)])
        assert done.exit_code == 0, done.output
    for name in FORMATS:
        assert (directories[0] / FILES[name]).read_bytes() == \
            (directories[1] / FILES[name]).read_bytes(), name
        if lang is Lang.KK:     # the run's own Kazakh reports are what `report` gives again
            assert (directories[0] / FILES[name]).read_bytes() == \
                (two_runs / "two" / FILES[name]).read_bytes(), name


def test_an_unavailable_history_only_warns(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")     # a store path below a file cannot be created
    done = mis_audit("run", "-o", "out", "--quiet", cwd=tmp_path,
                     history=str(tmp_path / "a-file" / "history.sqlite"))
    assert done.returncode in (0, 1), done.stderr
    assert "warning: run not recorded in the history" in done.stderr
    assert json.loads((tmp_path / "out/results.json").read_text())["history"] is None
    assert (tmp_path / "out/report.html").exists()
