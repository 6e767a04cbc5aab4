"""`mis-audit profiles` and `mis-audit profiles show`, through the CLI."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from typer.testing import CliRunner

from audit.cli import app

EXAMPLE = str(files("profiles").joinpath("examples", "clinic-tailored.yaml"))
runner = CliRunner()


def test_list_shows_the_three_profiles_with_control_counts() -> None:
    outcome = runner.invoke(app, ["profiles"], terminal_width=200)
    assert outcome.exit_code == 0, outcome.output
    cells = [line.split("│") for line in outcome.output.splitlines() if line.startswith("│")]
    rows = {cell[1].strip(): cell[3].strip() for cell in cells if cell[1].strip()}
    assert rows == {"gdpr-health": "29", "hipaa-security": "25", "kz-mis-baseline": "41"}


def test_show_prints_references_with_their_kind() -> None:
    outcome = runner.invoke(app, ["profiles", "show", "kz-mis-baseline"], terminal_width=200)
    assert outcome.exit_code == 0, outcome.output
    assert "kz-mis-baseline 2026.1" in outcome.output
    assert "auth.mfa [critical]" in outcome.output
    assert "[recommended practice (proposal, not in force)]" in outcome.output
    assert "[legal requirement] Law of the RK No. 94-V" in outcome.output
    assert "[unconfirmed citation]" in outcome.output


def test_show_in_russian() -> None:
    outcome = runner.invoke(app, ["profiles", "show", "kz-mis-baseline", "--lang", "ru"],
                            terminal_width=200)
    assert "Удалённый и административный доступ требует второго фактора" in outcome.output


def test_show_a_tailored_profile_as_json() -> None:
    outcome = runner.invoke(app, ["profiles", "show", EXAMPLE, "--json"], terminal_width=200)
    assert outcome.exit_code == 0, outcome.output
    document = json.loads(outcome.output)
    assert document["threshold"] == 90
    assert document["disabled"][0]["control"] == "patient.access_alerts"
    controls = {c["id"]: c for c in document["controls"]}
    policy = controls["auth.password_policy"]
    assert policy["severity"] == "critical"
    assert {"check": "host.password_max_age", "with": {"max_days": 60}} in policy["checks"]
    assert controls["ir.plan"]["checks"][0]["with"]["max_age_days"] == 180


def test_show_unknown_profile_exits_2_with_a_clear_error() -> None:
    outcome = runner.invoke(app, ["profiles", "show", "no-such"])
    assert outcome.exit_code == 2
    assert "no built-in profile 'no-such'" in outcome.output
    assert "Traceback" not in outcome.output


def test_show_an_invalid_profile_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text('id: bad\ntitle: B\nversion: "1"\ncontrols:\n  - use: auth.mfa\n',
                    encoding="utf-8")
    outcome = runner.invoke(app, ["profiles", "show", str(path)], terminal_width=300)
    assert outcome.exit_code == 2
    assert f"{path}:5:" in outcome.output
