"""`mis-audit scan-files` and a whole `mis-audit run` over a share full of generated files:
exit codes, and not one raw identifier in any output (stdout, stderr, results, reports)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audit.cli import app
from tests.test_pii_corpus import (
    EVERY_RAW,
    IINS,
    delimited,
    docx_bytes,
    odf_bytes,
    xlsx_bytes,
    zip_bytes,
)


@pytest.fixture
def leaky_share(tmp_path: Path) -> Path:
    """A share with a patient list in several formats, one file named after a patient."""
    share = tmp_path / "share"
    (share / "2026").mkdir(parents=True)
    (share / "patients.csv").write_bytes(delimited(";"))
    (share / "2026" / "book.xlsx").write_bytes(xlsx_bytes())
    (share / "2026" / "letter.docx").write_bytes(docx_bytes())
    (share / "2026" / "calc.ods").write_bytes(odf_bytes("spreadsheet"))
    (share / "bundle.zip").write_bytes(zip_bytes({f"{IINS[0]}.csv": delimited(",")}))
    (share / f"Пациент {IINS[1]}.txt").write_text("выписка без номеров\n")
    return share


@pytest.fixture
def clean_share(tmp_path: Path) -> Path:
    share = tmp_path / "clean"
    share.mkdir()
    (share / "readme.txt").write_text("contract 123456789012, nothing personal\n")
    return share


def assert_no_raw_identifier(*texts: str) -> None:
    for text in texts:
        for raw in EVERY_RAW:
            assert raw not in text, f"raw identifier ...{raw[-2:]} in output"


def test_leaks_are_exit_1_with_masked_samples(leaky_share: Path) -> None:
    result = CliRunner().invoke(app, ["scan-files", str(leaky_share)])
    assert result.exit_code == 1, result.output
    assert "LEAK" in result.output and "**********" in result.output
    assert_no_raw_identifier(result.output)


def test_json_output_lists_every_file(leaky_share: Path) -> None:
    result = CliRunner().invoke(app, ["scan-files", "--json", str(leaky_share)])
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["status"] == "fail"
    by_name = {Path(entry["name"]).name: entry for entry in document["files"]}
    assert by_name["patients.csv"]["identifiers"] == {"kz_iin": 3, "kz_bin": 1}
    assert by_name["bundle.zip"]["members_scanned"] == 1
    assert_no_raw_identifier(result.output)


def test_a_clean_share_is_exit_0(clean_share: Path) -> None:
    result = CliRunner().invoke(app, ["scan-files", str(clean_share)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args", [[], ["/no/such/share"], ["--max-files", "0", "."],
                                  ["--bogus", "."]])
def test_bad_usage_is_exit_2(args: list[str]) -> None:
    assert CliRunner().invoke(app, ["scan-files", *args]).exit_code == 2


def test_as_a_real_process(leaky_share: Path, clean_share: Path) -> None:
    def scan(*paths: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "audit.cli", "scan-files",
                               *map(str, paths)], capture_output=True, text=True, timeout=120,
                              check=False)
    leaky, clean = scan(leaky_share, clean_share), scan(clean_share)
    assert (leaky.returncode, clean.returncode) == (1, 0), leaky.stderr + clean.stderr
    assert_no_raw_identifier(leaky.stdout, leaky.stderr, clean.stdout, clean.stderr)


def test_a_whole_run_proves_the_leak_without_repeating_it(tmp_path: Path,
                                                          leaky_share: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(f"organisation: Clinic\nscope:\n  paths: [{leaky_share}]\n"
                         f"targets:\n  - {{name: share, roles: [fileshare], "
                         f"paths: [{leaky_share}]}}\n")
    output = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "audit.cli", "run", "-i", str(inventory),
                           "-o", str(output), "--format", "html,json,sarif,junit,csv"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "MIS_AUDIT_HISTORY": str(tmp_path / "h.sqlite")},
                          check=False)
    assert done.returncode == 1, done.stderr
    results = json.loads((output / "results.json").read_text())
    finding, = [r for r in results["results"] if r["check"] == "data.personal_data_files"]
    assert finding["status"] == "fail"
    leaking = {Path(r["file"]).name: r for r in finding["evidence"]["details"]["leaking"]}
    assert leaking["patients.csv"]["identifiers"]["kz_iin"] == 3
    written = [path.read_text(errors="replace") for path in output.rglob("*") if path.is_file()]
    assert len(written) >= 4
    assert_no_raw_identifier(done.stdout, done.stderr, *written,
                             (tmp_path / "h.sqlite").read_bytes().decode("latin-1")
                             if (tmp_path / "h.sqlite").exists() else "")
