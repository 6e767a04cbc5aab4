"""Every table and listing the CLI prints reads at 80 columns: no line wider, ids whole."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import typer
from test_report_samples import sample_results
from typer.testing import CliRunner

from audit.cli import app
from audit.history import HISTORY_ENV, open_store
from audit.registry import default_registry
from audit.vocabulary import Status

WIDTH = 80


def _narrow(*args: str) -> str:
    done = CliRunner(env={"COLUMNS": str(WIDTH)}).invoke(app, list(args))
    assert done.exit_code in (0, 1), done.output
    wide = [line for line in done.output.splitlines() if len(line) > WIDTH]
    assert wide == [], "\n".join(wide)
    return done.output


def test_checks_list_keeps_every_id_whole() -> None:
    output = _narrow("checks")
    for spec in default_registry().specs():
        assert spec.id in output


def test_profiles_and_a_resolved_profile() -> None:
    assert "kz-mis-baseline" in _narrow("profiles")
    shown = _narrow("profiles", "show", "kz-mis-baseline")
    assert "check host.ssh_root_login" in shown and "check evidence.document" in shown


def test_scan_files(tmp_path: Path) -> None:
    (tmp_path / "a-rather-long-file-name-for-a-patient-export.csv").write_text("id\n1\n")
    output = _narrow("scan-files", str(tmp_path))
    assert "clean" in output


def test_history_and_diff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HISTORY_ENV, str(tmp_path / "history.sqlite"))
    store = open_store()
    store.record(sample_results())
    store.record(sample_results({"NET-01": Status.FAIL, "AUTH-01": Status.PASS}))
    listed = _narrow("history")
    assert "#2" in listed and "City Clinic No. 5" in listed and "MedInfo MIS 4.2" in listed
    assert "kz-mis-baseline 2026.1" in listed and "NOT READY" in listed
    changes = _narrow("diff", "1", "2")
    assert "NET-01  net.db_exposed  web-front: pass -> fail" in changes
    assert "AUTH-01  host.ssh_mfa  db-main: error -> pass" in changes


def test_every_command_is_summed_up_in_one_line() -> None:
    """In the command list typer keeps a summary's own line breaks: a summary broken in its
    docstring shows broken at any width."""
    groups = [typer.main.get_command(app)]
    while groups:
        group = groups.pop()
        for name, command in group.commands.items():        # type: ignore[attr-defined]
            summary = inspect.cleandoc(command.help or "").split("\n\n")[0]
            assert "\n" not in summary, name
            if hasattr(command, "commands"):
                groups.append(command)
    assert "Find the services on the networks named" in _narrow("--help")
