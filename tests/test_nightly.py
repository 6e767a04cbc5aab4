"""Nightly operations: resume after a kill, one run at a time, events for machines, units for
the schedulers, and the regression exit code."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hosts import HOST_CHECKS, profile_text
from tests.servers.sshd import SshHost, start_ssh_host

from audit.journal import JOURNAL_FILE

TESTS = Path(__file__).parent
TARGETS = [f"t{index:02d}" for index in range(12)]
PROFILE = """id: nightly
title: Nightly
version: "1"
controls:
  - {id: n.logged, title: logged, severity: high, checks: [{check: testing.logged}]}
"""
INVENTORY = "organisation: Night clinic\ntargets:\n" + "".join(
    f"  - {{name: {name}, roles: [host], transport: local}}\n" for name in TARGETS)
# The CLI with the test checks registered (the probes log each call to a file).
WITH_TEST_CHECKS = (
    "import sys; import audit.registry as registry; "
    "from engine_checks import registry_with_test_checks; "
    "registry._DEFAULT = registry_with_test_checks(); "
    "from audit.cli import main; sys.argv[0] = 'mis-audit'; main()")


def cli(work: Path, *args: str, hold_after: int | None = None,
        popen: bool = False) -> subprocess.Popen[str] | subprocess.CompletedProcess[str]:
    """mis-audit with the test checks, in `work`, its probes logged to work/probes.log. With
    `hold_after`, probes after that many wait until the test removes work/gate."""
    if hold_after is not None:
        (work / "gate").touch()
    environment = {**os.environ, "MIS_AUDIT_TEST_PROBE_LOG": str(work / "probes.log"),
                   "MIS_AUDIT_TEST_PROBE_GATE": str(work / "gate"),
                   "MIS_AUDIT_TEST_PROBE_FREE": str(hold_after or 0),
                   "MIS_AUDIT_HISTORY": str(work / "history.sqlite"),
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS),
                                                               os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-c", WITH_TEST_CHECKS, *args]
    if popen:
        return subprocess.Popen(command, cwd=work, env=environment, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run(command, cwd=work, env=environment, text=True, capture_output=True,
                          timeout=120, check=False)


def completed(process: subprocess.Popen[str] | subprocess.CompletedProcess[str]
              ) -> subprocess.CompletedProcess[str]:
    assert isinstance(process, subprocess.CompletedProcess)
    return process


def statuses(results_file: Path) -> dict[str, str]:
    record = json.loads(results_file.read_text())
    return {result["target"]: result["status"] for result in record["results"]}


def journal_results(directory: Path) -> list[str]:
    lines = (directory / JOURNAL_FILE).read_text().splitlines()[1:]
    return [json.loads(line)["target"] for line in lines if line.endswith("}")]


def workdir(tmp_path: Path, name: str) -> Path:
    work = tmp_path / name
    work.mkdir()
    (work / "profile.yaml").write_text(PROFILE)
    (work / "inventory.yaml").write_text(INVENTORY)
    return work


RUN = ("run", "-p", "./profile.yaml", "-i", "inventory.yaml", "--jobs", "2", "--format",
       "json,html", "-q")


def test_a_killed_run_resumes_without_probing_what_finished(tmp_path: Path) -> None:
    clean = workdir(tmp_path, "clean")
    assert completed(cli(clean, *RUN, "-o", "out")).returncode == 1
    work = workdir(tmp_path, "killed")
    process = cli(work, *RUN, "-o", "out", hold_after=4, popen=True)
    assert isinstance(process, subprocess.Popen)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
            (work / "out" / JOURNAL_FILE).exists() and len(journal_results(work / "out")) >= 4):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    (work / "gate").unlink()
    kept = journal_results(work / "out")
    assert 4 <= len(kept) < len(TARGETS), "killed half-way"
    assert not (work / "out" / "results.json").exists()

    resumed = completed(cli(work, "run", "--resume", "out", "-q"))
    assert resumed.returncode == 1, resumed.stderr           # odd targets fail: not ready
    assert statuses(work / "out" / "results.json") == statuses(clean / "out" / "results.json")
    probes = Counter((work / "probes.log").read_text().split())
    assert sorted(probes) == TARGETS
    assert all(probes[target] == 1 for target in kept), "nothing finished is probed again"
    assert not (work / "out" / JOURNAL_FILE).exists(), "a finished run keeps no checkpoint"
    assert (work / "out" / "report.html").exists()
    history = completed(cli(work, "history", "--json"))
    runs = json.loads(history.stdout)
    assert len(runs) == 1 and runs[0]["complete"] is True, "the resumed run, recorded once"


def test_resume_refuses_other_inputs_and_an_interrupted_directory_is_not_reused(
        tmp_path: Path) -> None:
    work = workdir(tmp_path, "w")
    out = work / "out"
    out.mkdir(mode=0o700)
    (out / JOURNAL_FILE).write_text("not a journal\n")
    fresh = completed(cli(work, *RUN, "-o", "out"))
    assert fresh.returncode == 2 and "--resume" in fresh.stderr
    garbage = completed(cli(work, "run", "--resume", "out"))
    assert garbage.returncode == 2 and "not a mis-audit journal" in garbage.stderr
    assert "Traceback" not in fresh.stderr + garbage.stderr
    mixed = completed(cli(work, "run", "--resume", "out", "-i", "inventory.yaml"))
    assert mixed.returncode == 2 and "give no -p, -i or -w" in mixed.stderr

    interrupted = workdir(tmp_path, "changed")
    process = cli(interrupted, *RUN, "-o", "out", hold_after=1, popen=True)
    assert isinstance(process, subprocess.Popen)
    while not ((interrupted / "out" / JOURNAL_FILE).exists()
               and journal_results(interrupted / "out")):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    (interrupted / "inventory.yaml").write_text(INVENTORY.replace("Night", "Day"))
    changed = completed(cli(interrupted, "run", "--resume", "out"))
    assert changed.returncode == 2 and "changed since the interrupted run" in changed.stderr


def test_two_runs_of_one_inventory_never_overlap(tmp_path: Path) -> None:
    work = workdir(tmp_path, "w")
    first = cli(work, *RUN, "-o", "first", hold_after=0, popen=True)
    assert isinstance(first, subprocess.Popen)
    while not (work / "first" / JOURNAL_FILE).exists():
        time.sleep(0.02)
    second = completed(cli(work, *RUN, "-o", "second"))
    assert second.returncode == 75, second.stderr
    assert "another mis-audit run is using this inventory" in second.stderr
    assert "Traceback" not in second.stderr
    # another inventory into the same directory is refused too
    (work / "other.yaml").write_text(INVENTORY.replace("Night", "Other"))
    same_directory = completed(cli(work, "run", "-p", "./profile.yaml", "-i", "other.yaml",
                                   "-o", "first", "-q"))
    assert same_directory.returncode == 75 and "this run directory" in same_directory.stderr
    (work / "gate").unlink()
    first.wait(timeout=60)
    assert first.returncode == 1
    # the lock went with the process: the same inventory runs again
    assert completed(cli(work, *RUN, "-o", "third")).returncode == 1


def test_json_events_for_a_log_collector(tmp_path: Path) -> None:
    work = workdir(tmp_path, "w")
    done = completed(cli(work, "run", "-p", "./profile.yaml", "-i", "inventory.yaml", "-o",
                         "out", "--format", "json", "--log-format", "json"))
    assert done.returncode == 1
    events = [json.loads(line) for line in done.stderr.splitlines()]
    kinds = Counter(event["event"] for event in events)
    assert kinds == {"run_started": 1, "target_finished": len(TARGETS), "run_finished": 1}
    assert events[0]["event"] == "run_started" and events[-1]["event"] == "run_finished"
    assert events[-1]["exit_code"] == 1 and events[-1]["verdict"] == "not_ready"
    finished = {event["target"]: event["statuses"] for event in events
                if event["event"] == "target_finished"}
    assert finished["t01"] == {"fail": 1} and finished["t02"] == {"pass": 1}


def test_the_systemd_units_verify_and_cron_gets_one_line(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze (Debian package systemd) is not installed")
    written = completed(cli(tmp_path, "schedule", "-i", str(tmp_path / "inventory.yaml"),
                            "-o", "units"))
    assert written.returncode == 0, written.stderr
    service = (tmp_path / "units" / "mis-audit.service").read_text()
    assert "Persistent=true" in (tmp_path / "units" / "mis-audit.timer").read_text()
    for setting in ("ProtectSystem=strict", "StateDirectory=mis-audit", "User=mis-audit",
                    "Environment=MIS_AUDIT_HISTORY=/var/lib/mis-audit/history.sqlite",
                    "--fail-on-regression", "SuccessExitStatus=1"):
        assert setting in service, setting
    # systemd checks that the program exists: this installation's own script
    program = Path(sys.executable).with_name("mis-audit")
    (tmp_path / "units" / "mis-audit.service").write_text(
        "\n".join(f"ExecStart={program} run -i x" if line.startswith("ExecStart=") else line
                  for line in service.splitlines()) + "\n")
    verified = subprocess.run([analyze, "verify", str(tmp_path / "units" / "mis-audit.service"),
                               str(tmp_path / "units" / "mis-audit.timer")],
                              capture_output=True, text=True, check=False, timeout=60)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    cron = completed(cli(tmp_path, "schedule", "--cron", "--at", "03:05"))
    lines = [line for line in cron.stdout.splitlines() if line and not line.startswith("#")]
    assert len(lines) == 1 and lines[0].startswith("5 3 * * * mis-audit cd /var/lib/mis-audit")


@pytest.fixture(scope="module")
def ssh_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SshHost]]:
    hosts = {variant: start_ssh_host(variant, tmp_path_factory.mktemp(f"night-{variant}"),
                                     address)
             for variant, address in (("weak", "127.66.0.11"), ("hardened", "127.66.0.12"))}
    yield hosts
    for host in hosts.values():
        host.stop()


def test_a_regression_since_the_last_run_exits_3(tmp_path: Path,
                                                 ssh_hosts: dict[str, SshHost]) -> None:
    (tmp_path / "profile.yaml").write_text(profile_text(HOST_CHECKS))

    def run_against(variant: str) -> subprocess.CompletedProcess[str]:
        host = ssh_hosts[variant]
        # one target, one name: last night it was the hardened host, tonight the weak one
        (tmp_path / "inventory.yaml").write_text(
            "organisation: Night clinic\nscope: {networks: [127.66.0.0/24]}\ncredentials:\n"
            f"  k: {{type: ssh, user: auditor, key_file: {host.key_file}, known_hosts: "
            f"{host.known_hosts}, port: {host.port}, sudo: true}}\n"
            f"targets:\n  - {{name: app-host, address: {host.address}, roles: [host], ssh: k}}\n")
        return completed(cli(tmp_path, "run", "-p", "./profile.yaml", "-i", "inventory.yaml",
                             "--format", "json", "-q", "--fail-on-regression"))

    hardened = run_against("hardened")
    assert hardened.returncode == 0, hardened.stderr           # ready, nothing before it
    assert run_against("hardened").returncode == 0             # unchanged: no regression
    weak = run_against("weak")
    assert weak.returncode == 3, weak.stderr
