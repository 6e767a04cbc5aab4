"""Hostile peers never print a traceback: silent, garbage, endless, dripping and oversized peers
cost at most the check's timeout and bounded memory, and end as an `error` with a one-line
reason (or the verdict their answer deserves), with nothing on stderr.

Each peer kind gets one whole `mis-audit run` (a subprocess, its peak RSS read from wait4)
against hostile listeners of tests/servers/hostile.py, one target per misbehaviour. Every
address is in 127.74.0.0/24, this module's own range; ports are free ones.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.servers.hostile import HostileListener, Mode, hostile_listener, huge_chain_files

NETWORK = "127.74.0.0/24"
TIMEOUT = 3.0
# Starting the interpreter and importing every probe's library takes seconds on a busy machine.
STARTUP_MARGIN = 6.0
HARD_LIMIT = 120.0           # a run still going by then has hung: kill it and fail
MAX_RSS_MB = 350             # a run holds ~110 MB; an unbounded reader holds gigabytes
ENGINE_TIMEOUT = f"the check did not finish within {TIMEOUT:g} s"

SSH_BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"
# A first packet whose length passes paramiko's blocking check: it then reads that much.
SSH_HUGE_PACKET = SSH_BANNER + b"\x7f\xff\xff\xfc"
HTTP_STATUS = b"HTTP/1.1 200 OK\r\n"
HTTP_HEADER = b"X-Padding: " + b"a" * 200 + b"\r\n"
MLLP_START = b"\x0b"
# An A-ASSOCIATE-AC announcing a PDU of 4 GiB.
DICOM_HUGE_PDU = b"\x02\x00\xff\xff\xff\xff"


@dataclass
class Run:
    """What one `mis-audit run` did: its time, stderr, peak memory and results by target."""

    elapsed: float
    returncode: int
    stderr: str
    max_rss_mb: float
    results: dict[tuple[str, str], dict[str, Any]]
    directory: Path

    def result(self, target: str, check: str) -> dict[str, Any]:
        """The result of `check` on `target`."""
        return self.results[(target, check)]


def mis_audit_run(work: Path, targets: list[str], checks: list[str], credentials: str = "",
                  *extra: str) -> Run:
    """A whole run as a subprocess of this interpreter, its memory measured by wait4."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "inventory.yaml").write_text(
        f"organisation: Hostile peers\nscope: {{networks: [{NETWORK}]}}\n{credentials}"
        "targets:\n" + "".join(f"  - {target}\n" for target in targets))
    controls = "".join(f"  - id: c{index}\n    title: {check}\n    severity: high\n"
                       f"    checks: [{{check: {check}}}]\n" for index, check in enumerate(checks))
    (work / "profile.yaml").write_text(
        f"id: hostile\ntitle: Hostile peers\nversion: '1'\ncontrols:\n{controls}")
    argv = [sys.executable, "-m", "audit.cli", "run", "-p", "./profile.yaml", "-i",
            "inventory.yaml", "-o", "run", "--format", "json", "--history", "off", "--quiet",
            "--timeout", f"{TIMEOUT:g}", "--jobs", "64", *extra]
    started = time.monotonic()
    with open(work / "stderr.txt", "wb") as stderr:
        process = subprocess.Popen(argv, cwd=work, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > HARD_LIMIT:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.02)
    elapsed = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)   # reaped here, not by Popen
    assert elapsed < HARD_LIMIT, f"the run hung: killed after {elapsed:.0f} s"
    results_file = work / "run" / "results.json"
    stderr_text = (work / "stderr.txt").read_text(errors="replace")
    assert results_file.is_file(), f"no results.json (exit {process.returncode}):\n{stderr_text}"
    document = json.loads(results_file.read_text())
    return Run(elapsed, process.returncode, stderr_text,
               usage.ru_maxrss / 1024,     # KiB on Linux
               {(item["target"], item["check"]): item for item in document["results"]},
               work / "run")


def assert_well_behaved(run: Run, bound_memory: bool = True) -> None:
    """Nothing on stderr, within the timeout (plus start-up), memory bounded, every result
    ended by the probe itself with a one-line summary."""
    assert run.stderr == "", f"stderr is not empty:\n{run.stderr[:3000]}"
    assert run.returncode in (0, 1), run.returncode
    assert run.elapsed < TIMEOUT + STARTUP_MARGIN, f"the run took {run.elapsed:.1f} s"
    if bound_memory:
        assert run.max_rss_mb < MAX_RSS_MB, f"peak RSS {run.max_rss_mb:.0f} MB"
    for (target, check), result in run.results.items():
        summary = result["summary"]
        assert "\n" not in summary and len(summary) < 400, (target, check, summary)
        assert "Traceback" not in json.dumps(result), (target, check)
        assert result["duration_ms"] < TIMEOUT * 1000, (target, check, result["duration_ms"])
        message = (result.get("error") or {}).get("message", "")
        assert message != ENGINE_TIMEOUT, f"{check} on {target} was abandoned by the engine"


def assert_error(run: Run, target: str, checks: list[str], reasons: set[str],
                 words: str) -> None:
    """Each check on `target` is an error for one of `reasons`, its summary naming `words`."""
    for check in checks:
        result = run.result(target, check)
        assert result["status"] == "error", (target, check, result["summary"])
        assert result["error"]["type"] in reasons, (target, check, result["error"])
        assert words in result["summary"], (target, check, result["summary"])


Cases = dict[str, tuple[str, dict[str, Any]]]     # name: (address, hostile_listener options)


@contextmanager
def listeners(cases: Cases) -> Iterator[dict[str, HostileListener]]:
    """One hostile listener per case, by name."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(hostile_listener(address, **options))
               for name, (address, options) in cases.items()}


def private_key(path: Path) -> Path:
    """An unencrypted ed25519 key in OpenSSH format (the auditor's key: never used here)."""
    path.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()))
    path.chmod(0o600)
    return path


SSH_CASES: Cases = {
    "ssh-silent": ("127.74.0.10", {"mode": Mode.SILENT}),
    "ssh-garbage": ("127.74.0.11", {"mode": Mode.GARBAGE, "preamble": SSH_BANNER}),
    "ssh-banner-drip": ("127.74.0.12", {"mode": Mode.DRIP, "preamble": b"SSH-2.0-",
                                        "filler": b"x", "interval": 0.05}),
    "ssh-banner-endless": ("127.74.0.13", {"mode": Mode.ENDLESS, "filler": b"x"}),
    "ssh-huge-packet": ("127.74.0.14", {"mode": Mode.ENDLESS, "preamble": SSH_HUGE_PACKET}),
}
SSH_CHECKS = ["host.ssh_root_login", "host.ssh_password_auth"]


def _ssh_run(tmp_path: Path, *extra: str) -> Run:
    key, known_hosts = private_key(tmp_path / "auditor_ed25519"), tmp_path / "known_hosts"
    known_hosts.write_text("")
    with listeners(SSH_CASES) as running:
        credentials = "credentials:\n" + "".join(
            f"  {name}-key: {{type: ssh, user: auditor, key_file: {key}, "
            f"known_hosts: {known_hosts}, port: {listener.port}}}\n"
            for name, listener in running.items())
        targets = [f"{{name: {name}, address: {listener.address}, roles: [host], "
                   f"ssh: {name}-key}}" for name, listener in running.items()]
        return mis_audit_run(tmp_path / "work", targets, SSH_CHECKS, credentials, *extra)


def test_ssh_servers_that_misbehave(tmp_path: Path) -> None:
    run = _ssh_run(tmp_path)
    assert_well_behaved(run)
    assert_error(run, "ssh-silent", SSH_CHECKS, {"timeout"}, "no SSH answer within")
    assert_error(run, "ssh-banner-drip", SSH_CHECKS, {"timeout"}, "no SSH answer within")
    # Garbage after a banner: paramiko's "Invalid packet blocking", or a wait for a packet
    # that never completes; either way one line, and no traceback on the terminal.
    assert_error(run, "ssh-garbage", SSH_CHECKS, {"unreachable", "timeout"}, "127.74.0.11")
    for endless in ("ssh-banner-endless", "ssh-huge-packet"):
        assert_error(run, endless, SSH_CHECKS, {"refused"}, "before the SSH session was set up")


def test_with_debug_library_logs_go_to_a_private_file_not_the_terminal(tmp_path: Path) -> None:
    run = _ssh_run(tmp_path, "--debug")
    assert run.stderr == "", run.stderr[:3000]
    log = run.directory / "mis-audit.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text()
    assert "paramiko.transport" in text      # what paramiko said about the garbage is kept


HTTP_CASES: Cases = {
    "http-drip-headers": ("127.74.0.20", {"mode": Mode.DRIP, "preamble": HTTP_STATUS,
                                          "filler": b"X-A: b\r\n", "interval": 0.02}),
    "http-endless-headers": ("127.74.0.21", {"mode": Mode.ENDLESS, "preamble": HTTP_STATUS,
                                             "filler": HTTP_HEADER}),
    "http-endless-body": ("127.74.0.22", {"mode": Mode.ENDLESS,
                                          "preamble": HTTP_STATUS + b"\r\n"}),
    "http-silent": ("127.74.0.23", {"mode": Mode.SILENT}),
}
WEB_CHECK, FHIR_CHECK = "web.version_disclosure", "fhir.unauthenticated_search"


def test_http_servers_that_drip_or_never_end_their_headers(tmp_path: Path) -> None:
    with listeners(HTTP_CASES) as running:
        targets = []
        for name, listener in running.items():
            targets.append(f"{{name: {name}, address: {listener.address}, roles: [web], "
                           f"services: [{{kind: http, port: {listener.port}}}]}}")
            targets.append(f"{{name: fhir-{name}, address: {listener.address}, roles: [fhir], "
                           f"urls: ['http://{listener.address}:{listener.port}/fhir']}}")
        run = mis_audit_run(tmp_path, targets, [WEB_CHECK, FHIR_CHECK])
    assert_well_behaved(run)
    for prefix, check in (("", WEB_CHECK), ("fhir-", FHIR_CHECK)):
        assert_error(run, f"{prefix}http-drip-headers", [check], {"timeout"},
                     "no complete answer within 1 s")
        assert_error(run, f"{prefix}http-silent", [check], {"timeout"}, "answer within 1 s")
        assert_error(run, f"{prefix}http-endless-headers", [check], {"unreachable"}, "http://")
    # An endless body is cut at the page cap: the headers it sent are judged.
    assert run.result("http-endless-body", WEB_CHECK)["status"] == "pass"


TLS_CHECKS = ["tls.protocol_versions", "tls.certificate"]


def test_tls_servers_with_a_chain_of_megabytes(tmp_path: Path) -> None:
    address = "127.74.0.30"
    chain = huge_chain_files(tmp_path / "pki", address, megabytes=4)
    assert chain.cert.stat().st_size > 4 * 1024 * 1024
    with hostile_listener(address, Mode.HUGE_TLS_CHAIN, tls_files=chain) as listener:
        origin = f"https://{address}:{listener.port}"
        run = mis_audit_run(tmp_path / "work", [
            (f"{{name: tls-huge, address: {address}, roles: [web], "
             f"services: [{{kind: https, port: {listener.port}}}]}}"),
            f"{{name: fhir-huge, address: {address}, roles: [fhir], urls: ['{origin}/fhir']}}",
        ], [*TLS_CHECKS, "web.hsts", FHIR_CHECK])
    assert_well_behaved(run)
    assert_error(run, "tls-huge", TLS_CHECKS, {"refused"}, "larger than clients accept")
    assert_error(run, "tls-huge", ["web.hsts"], {"refused"}, "TLS handshake failed")
    assert_error(run, "fhir-huge", [FHIR_CHECK], {"unreachable"}, "EXCESSIVE_MESSAGE_SIZE")


DICOM_CASES: Cases = {
    "dicom-silent": ("127.74.0.40", {"mode": Mode.SILENT}),
    "dicom-garbage": ("127.74.0.41", {"mode": Mode.GARBAGE}),
    "dicom-drip": ("127.74.0.42", {"mode": Mode.DRIP, "interval": 0.05}),
    "dicom-endless": ("127.74.0.43", {"mode": Mode.ENDLESS}),
    "dicom-huge-pdu": ("127.74.0.44", {"mode": Mode.ENDLESS, "preamble": DICOM_HUGE_PDU}),
}
DICOM_CHECKS = ["pacs.dicom_unknown_ae", "pacs.dicom_called_ae"]


def test_dicom_peers_that_never_answer_or_never_stop(tmp_path: Path) -> None:
    with listeners(DICOM_CASES) as running:
        run = mis_audit_run(tmp_path, [
            f"{{name: {name}, address: {listener.address}, roles: [pacs], "
            f"services: [{{kind: dicom, port: {listener.port}}}]}}"
            for name, listener in running.items()], DICOM_CHECKS)
    assert_well_behaved(run)
    for check in DICOM_CHECKS:     # silence proves nothing: an assessor decides
        silent = run.result("dicom-silent", check)
        assert silent["status"] == "manual", silent
        assert "did not answer the association request" in silent["summary"]
    for name in ("dicom-garbage", "dicom-drip", "dicom-endless", "dicom-huge-pdu"):
        assert_error(run, name, DICOM_CHECKS, {"refused"}, "does not speak DICOM")


MLLP_CASES: Cases = {
    "mllp-endless": ("127.74.0.50", {"mode": Mode.ENDLESS, "preamble": MLLP_START}),
    "mllp-drip": ("127.74.0.51", {"mode": Mode.DRIP, "preamble": MLLP_START,
                                  "interval": 0.05}),
    "mllp-garbage": ("127.74.0.52", {"mode": Mode.GARBAGE}),
    "mllp-silent": ("127.74.0.53", {"mode": Mode.SILENT}),
}


def test_mllp_peers_that_send_without_end(tmp_path: Path) -> None:
    with listeners(MLLP_CASES) as running:
        run = mis_audit_run(tmp_path, [
            f"{{name: {name}, address: {listener.address}, roles: [hl7], "
            f"services: [{{kind: hl7, port: {listener.port}}}]}}"
            for name, listener in running.items()], ["hl7.mllp_plaintext"])
    assert_well_behaved(run)
    # Whatever they send, it is not TLS: MLLP in clear, the verdict the weak server gets.
    for name in ("mllp-endless", "mllp-drip", "mllp-garbage"):
        result = run.result(name, "hl7.mllp_plaintext")
        assert result["status"] == "fail", result
        assert "not tls" in result["summary"], result


QUIET_PROGRAM = textwrap.dedent("""
    import logging, sys, threading, warnings
    from pathlib import Path
    from audit.logs import debug_log, quiet_logging
    quiet_logging()
    if len(sys.argv) > 1:
        debug_log(Path(sys.argv[1]))
    logging.getLogger("paramiko.transport").error("Invalid packet blocking")
    logging.getLogger("pypdf").warning("a quoted line of a patient's document")
    logging.getLogger("unconfigured.library").warning("last resort")
    warnings.warn("a library warning")
    worker = threading.Thread(target=lambda: 1 / 0, name="background")
    worker.start()
    worker.join()
    print("done")
""")


@pytest.mark.parametrize("debug", [False, True])
def test_no_library_log_warning_or_thread_traceback_reaches_the_terminal(
        tmp_path: Path, debug: bool) -> None:
    argv = [sys.executable, "-c", QUIET_PROGRAM, *([str(tmp_path / "run")] if debug else [])]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "done\n", "")
    log = tmp_path / "run" / "mis-audit.log"
    if not debug:
        assert not log.exists()
        return
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text()
    for kept in ("Invalid packet blocking", "last resort", "a library warning",
                 "uncaught exception in thread background", "ZeroDivisionError"):
        assert kept in text, kept
    assert "patient" not in text     # a document's content belongs in no log

