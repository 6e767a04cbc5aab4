"""The CLI as a real subprocess: the default run, determinism, re-rendering, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from host_trees import HARDENED, WEAK, make_host

TESTS = Path(__file__).parent
# history: each run is recorded, so the second one embeds the first as its previous run.
VOLATILE = {"started_at", "finished_at", "duration_ms", "history"}


def mis_audit(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "audit.cli", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, check=False,
                          env={**os.environ, "MIS_AUDIT_HISTORY": str(cwd / "history.sqlite")})


def offline_inventory(tmp_path: Path) -> Path:
    make_host(tmp_path / "weak", WEAK)
    make_host(tmp_path / "hardened", HARDENED)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("organisation: Offline <clinic> & \"partners\"\ntargets:\n"
                         "  - {name: weak, roles: [host], root: weak}\n"
                         "  - {name: hardened, roles: [host], root: hardened}\n")
    return inventory


def test_default_run_audits_this_machine_and_writes_the_report(tmp_path: Path) -> None:
    done = mis_audit("run", cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr
    runs = list((tmp_path / "mis-audit-runs").iterdir())
    assert len(runs) == 1
    results = json.loads((runs[0] / "results.json").read_text())
    assert results["complete"] is True
    assert results["profiles"][0]["id"] == "kz-mis-baseline"
    assert (runs[0] / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "score" in done.stdout and str(runs[0] / "report.html") in done.stdout
    assert done.returncode == (0 if results["verdict"] == "ready" else 1)


def strip_volatile(value: object) -> object:
    if isinstance(value, dict):
        return {k: strip_volatile(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [strip_volatile(v) for v in value]
    return value


def test_two_runs_differ_only_in_times_and_reports_rerender_identically(tmp_path: Path) -> None:
    inventory = offline_inventory(tmp_path)
    first = mis_audit("run", "-i", str(inventory), "-o", "one", "--quiet", cwd=tmp_path)
    second = mis_audit("run", "-i", str(inventory), "-o", "two", "--quiet", cwd=tmp_path)
    assert first.returncode == second.returncode == 1
    assert first.stdout == "" and second.stdout == ""
    one = json.loads((tmp_path / "one/results.json").read_text())
    two = json.loads((tmp_path / "two/results.json").read_text())
    assert one != two
    assert strip_volatile(one) == strip_volatile(two)

    rerendered = mis_audit("report", "one/results.json", "-o", "again", cwd=tmp_path)
    assert rerendered.returncode == 0, rerendered.stderr
    assert (tmp_path / "again/report.html").read_bytes() == (tmp_path / "one/report.html").read_bytes()


def test_fail_under_decides_the_exit_code(tmp_path: Path) -> None:
    inventory = offline_inventory(tmp_path)
    low = mis_audit("run", "-i", str(inventory), "-o", "a", "-q", "--fail-under", "0", cwd=tmp_path)
    high = mis_audit("run", "-i", str(inventory), "-o", "b", "-q", "--fail-under", "99", cwd=tmp_path)
    assert (low.returncode, high.returncode) == (0, 1)


def test_report_of_a_file_that_is_not_results_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bogus.json").write_text('{"hello": 1}')
    done = mis_audit("report", "bogus.json", cwd=tmp_path)
    assert done.returncode == 2 and "not a mis-audit results.json" in done.stderr
    assert "Traceback" not in done.stderr
    missing = mis_audit("report", "absent.json", cwd=tmp_path)
    assert missing.returncode == 2 and "file not found" in missing.stderr


def test_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    done = mis_audit("run", "--format", "docx", "-o", "x", cwd=tmp_path)
    assert done.returncode == 2 and "unknown format docx" in done.stderr
    assert not (tmp_path / "x").exists()


HANGING_PROFILE = """
id: hanging
title: Hangs
version: "1"
controls:
  - id: t.ok
    title: ok
    severity: low
    checks: [{check: testing.ok_one}]
  - id: t.hangs
    title: hangs
    severity: high
    checks: [{check: testing.hangs}]
"""

RUN_WITH_TEST_CHECKS = (
    "import sys; import audit.registry as registry; "
    "from engine_checks import registry_with_test_checks; "
    "registry._DEFAULT = registry_with_test_checks(); "
    "from audit.cli import main; sys.argv[0] = 'mis-audit'; main()"
)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_valid_partial_results_and_exit_130(tmp_path: Path, signum: int) -> None:
    marker = tmp_path / "hang-started"
    (tmp_path / "profile.yaml").write_text(HANGING_PROFILE)
    (tmp_path / "inventory.yaml").write_text(
        "organisation: Slow clinic\ntargets:\n  - {name: a, roles: [host], transport: local}\n")
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_WITH_TEST_CHECKS, "run", "-p", "./profile.yaml",
         "-i", "inventory.yaml", "-o", "out", "--timeout", "600"],
        cwd=tmp_path, env={**os.environ, "MIS_AUDIT_TEST_HANG_MARKER": str(marker), "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not marker.exists():           # the hanging check has started
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the hanging check never started"
        time.sleep(0.05)
    started = time.monotonic()
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=30)
    assert time.monotonic() - started < 10
    assert process.returncode == 130, stderr
    results = json.loads((tmp_path / "out/results.json").read_text())
    assert results["complete"] is False
    rows = {(r["check"], r["status"]) for r in results["results"]}
    assert rows == {("testing.ok_one", "pass"), ("testing.hangs", "error")}
    hung = next(r for r in results["results"] if r["check"] == "testing.hangs")
    assert hung["error"]["type"] == "interrupted"
    assert "INTERRUPTED" in stdout


def test_starting_loads_no_library_only_some_targets_need() -> None:
    """The CLI and every check load without pynetdicom, pydicom or Celery: a third of a
    second at each start that only a PACS probe or a broker needs."""
    code = ("import sys, audit.cli; from audit.registry import load_registry; load_registry(); "
            "print(sorted(name for name in ('pydicom', 'pynetdicom', 'celery') "
            "if name in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=TESTS.parent)
    assert loaded.stdout.strip() == "[]"
