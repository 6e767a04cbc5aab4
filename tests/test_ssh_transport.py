"""The SSH transport against a real sshd serving weak and hardened host trees."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hosts import (
    EXPECTED,
    HOST_CHECKS,
    LIVE_CHECKS,
    LIVE_EXPECTED,
    MACHINE_LIVE_CHECKS,
    profile_text,
)
from runs import by_target, run_audit

from audit.errors import FactUnavailable
from audit.model.inventory import SshCredential
from audit.model.results import Result
from audit.transports import CommandRefused
from audit.transports.base import MAX_FILE_BYTES
from audit.transports.reads import declared_reads
from audit.transports.ssh import SshTransport
from audit.vocabulary import Reason, Status
from tests.servers.sshd import SshHost, host_tree, keygen, start_ssh_host

pytestmark = pytest.mark.servers
WEAK_ADDRESS, HARDENED_ADDRESS, SILENT_ADDRESS = "127.63.0.11", "127.63.0.12", "127.63.0.20"


@pytest.fixture(scope="module")
def weak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHost]:
    host = start_ssh_host("weak", tmp_path_factory.mktemp("ssh-weak"), WEAK_ADDRESS)
    yield host
    host.stop()


@pytest.fixture(scope="module")
def hardened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHost]:
    host = start_ssh_host("hardened", tmp_path_factory.mktemp("ssh-hardened"), HARDENED_ADDRESS)
    yield host
    host.stop()


def transport(host: SshHost, timeout: float = 20.0, sudo: bool = True,
              known_hosts: Path | None = None, key_file: Path | None = None,
              accept_new: bool = False) -> SshTransport:
    """A transport to `host` as the auditor."""
    credential = SshCredential(type="ssh", user="auditor", sudo=sudo, port=host.port,
                               accept_new_host_keys=accept_new)
    return SshTransport(host.address, credential, key_file or host.key_file,
                        known_hosts or host.known_hosts, timeout)


def _inventory(tmp_path: Path, weak: SshHost, hardened: SshHost, sudo: bool,
               checks: tuple[str, ...]) -> Path:
    credentials = "".join(
        f"  {name}: {{type: ssh, user: auditor, key_file: {host.key_file}, "
        f"known_hosts: {host.known_hosts}, port: {host.port}, sudo: {str(sudo).lower()}}}\n"
        for name, host in (("weak-key", weak), ("hardened-key", hardened)))
    offline = "".join(f"  - {{name: {variant}-offline, roles: [host], root: {variant}}}\n"
                      for variant in ("weak", "hardened") if host_tree(variant, tmp_path / variant))
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "organisation: SSH clinic\nscope: {networks: [127.63.0.0/16]}\n"
        f"credentials:\n{credentials}targets:\n"
        f"  - {{name: weak-ssh, address: {weak.address}, roles: [host], ssh: weak-key}}\n"
        f"  - {{name: hardened-ssh, address: {hardened.address}, roles: [host], "
        f"ssh: hardened-key}}\n{offline}")
    (tmp_path / "profile.yaml").write_text(profile_text(checks))
    return inventory


def _run(tmp_path: Path, weak: SshHost, hardened: SshHost, sudo: bool = True,
         checks: tuple[str, ...] = HOST_CHECKS + LIVE_CHECKS) -> dict[tuple[str, str], Result]:
    inventory = _inventory(tmp_path, weak, hardened, sudo, checks)
    return by_target(run_audit(tmp_path, profile_text(checks), inventory.read_text()))


def test_checks_read_the_remote_host_over_ssh_and_agree_with_offline(
        tmp_path: Path, weak: SshHost, hardened: SshHost) -> None:
    results = _run(tmp_path, weak, hardened)
    for variant, expected in EXPECTED.items():
        for check, status in expected.items():
            for target in (f"{variant}-ssh", f"{variant}-offline"):
                result = results[(target, check)]
                assert result.status is status, (target, check, result.summary)
        for check, status in LIVE_EXPECTED[variant].items():
            assert results[(f"{variant}-ssh", check)].status is status, check
        for check in MACHINE_LIVE_CHECKS:
            assert results[(f"{variant}-ssh", check)].status in (Status.PASS, Status.FAIL)
    # the live answers are the test host's own (its stand-in commands), not this machine's
    for check, source in (("hostsys.audit_rules", "auditctl -l"),
                          ("hostsys.time_sync", "timedatectl show"),
                          ("hostsys.firewall", "nft list ruleset"),
                          ("hostsys.disk_encryption", "lsblk")):
        observed = results[("hardened-ssh", check)].evidence.observed
        assert source in json.dumps(observed), (check, observed)
    # sshd -T ran on the remote host (through sudo), the files gave the Match blocks
    assert "it-admins" in results[("hardened-ssh", "host.role_separation")].evidence.observed[
        "admin_groups"], "a group named as an admin group is one"
    root_login = results[("hardened-ssh", "host.ssh_root_login")]
    assert root_login.evidence.details["location"] == "sshd -T"
    mfa = results[("weak-ssh", "host.ssh_mfa")].evidence.details["problems"]
    assert any("Match User nurse_k" in problem for problem in mfa)
    shadow = results[("weak-ssh", "host.password_max_age")].evidence.details
    # the remote shadow is this machine's accounts plus the tree's: compare without lines
    assert [account.split(" (")[0] for account in shadow["accounts"]] == \
        ["dr_ivanova: 99999", "nurse_k: never"]
    dumped = "".join(result.model_dump_json() for result in results.values())
    assert "fixture-redis-secret-4711" not in dumped and "notarealhash" not in dumped


@pytest.mark.parametrize(("user", "status"), [("auditor", Status.PASS),
                                              ("dr_ivanova", Status.FAIL)])
def test_a_key_only_match_block_is_the_audit_accounts_exemption_or_a_failure(
        tmp_path: Path, weak: SshHost, hardened: SshHost, user: str, status: Status) -> None:
    config = hardened.server.workdir / "remote-etc" / "ssh" / "sshd_config"
    original = config.read_text()
    config.write_text(original + f"Match User {user}\n    AuthenticationMethods publickey\n")
    try:
        mfa = _run(tmp_path, weak, hardened, checks=("host.ssh_mfa",))[
            ("hardened-ssh", "host.ssh_mfa")]
    finally:
        config.write_text(original)
    assert mfa.status is status, mfa.summary
    if status is Status.PASS:
        assert "(the audit's own account)" in mfa.evidence.observed["exemptions"][0]
    else:
        assert f"Match User {user}" in mfa.summary


def test_without_sudo_protected_files_are_errors_not_passes(
        tmp_path: Path, weak: SshHost, hardened: SshHost) -> None:
    results = _run(tmp_path, weak, hardened, sudo=False, checks=HOST_CHECKS)
    role = results[("hardened-ssh", "host.role_separation")]
    assert role.status is Status.ERROR and role.error is not None
    assert role.error.type == Reason.PERMISSION_DENIED.value
    assert "not read" in results[("hardened-ssh", "host.password_max_age")].evidence.details[
        "shadow"]
    # sshd -T needs root: the parsed files are used instead
    assert results[("weak-ssh", "host.ssh_root_login")].evidence.details["location"] == \
        "/etc/ssh/sshd_config:3"


def test_a_missing_file_in_an_unreadable_directory_is_absent_with_sudo_and_unknown_without(
        hardened: SshHost) -> None:
    # /etc/audit is 0750 on the hardened host and holds rules.d but no audit.rules
    with_sudo, without = transport(hardened), transport(hardened, sudo=False)
    try:
        with pytest.raises(FactUnavailable) as absent:
            with_sudo.read_file("/etc/audit/audit.rules")
        assert absent.value.reason is Reason.NOT_FOUND, absent.value.message
        with pytest.raises(FactUnavailable) as unknown:
            without.read_file("/etc/audit/audit.rules")
        assert unknown.value.reason is Reason.PERMISSION_DENIED
        assert "its directory is not readable" in unknown.value.message
        assert b"mis-data" in with_sudo.read_file("/etc/audit/rules.d/mis.rules")
        assert [entry.name for entry in with_sudo.list_dir("/etc/audit/rules.d")] == ["mis.rules"]
        with pytest.raises(FactUnavailable) as listing:
            without.list_dir("/etc/audit/rules.d")
        assert listing.value.reason is Reason.PERMISSION_DENIED
        with pytest.raises(FactUnavailable) as gone:
            with_sudo.list_dir("/etc/audit/nothing.d")
        assert gone.value.reason is Reason.NOT_FOUND
    finally:
        with_sudo.close()
        without.close()


def test_a_whole_review_takes_few_round_trips(hardened: SshHost) -> None:
    remote = transport(hardened)
    remote.prefetch(declared_reads().prefetch())
    assert remote.round_trips == 2          # connect, one batch
    assert b"PermitRootLogin no" in remote.read_file("/etc/ssh/sshd_config")
    assert [e.name for e in remote.list_dir("/etc/sudoers.d")] == ["auditor", "clinic", "it-admins"]
    assert remote.run(["sshd", "-T"]).exit_code == 0
    assert remote.round_trips == 2          # all of it served from the batch
    remote.close()


def test_a_command_outside_the_allow_list_is_refused_without_contacting_the_host(
        hardened: SshHost) -> None:
    remote = transport(hardened)
    for argv in (["rm", "-rf", "/"], ["sshd", "-T", "-f", "/tmp/x"], ["sh", "-c", "id"]):
        with pytest.raises(CommandRefused):
            remote.run(argv)
    assert remote.round_trips == 0


def test_an_unknown_host_key_is_refused(tmp_path: Path, hardened: SshHost) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(FactUnavailable) as caught:
        transport(hardened, known_hosts=empty).read_file("/etc/passwd")
    assert caught.value.reason is Reason.REFUSED
    assert "unknown host key" in caught.value.message


def test_a_changed_host_key_is_refused_even_when_new_keys_are_accepted(
        tmp_path: Path, hardened: SshHost) -> None:
    other = keygen(tmp_path / "impostor")
    known = tmp_path / "known_hosts"
    known.write_text(f"[{hardened.address}]:{hardened.port} {' '.join(other.split()[:2])}\n")
    with pytest.raises(FactUnavailable) as caught:
        transport(hardened, known_hosts=known, accept_new=True).read_file("/etc/passwd")
    assert caught.value.reason is Reason.REFUSED and "CHANGED" in caught.value.message


def test_accept_new_host_keys_remembers_the_key(tmp_path: Path, hardened: SshHost) -> None:
    known = tmp_path / "new_known_hosts"
    assert transport(hardened, known_hosts=known, accept_new=True).read_file("/etc/login.defs")
    assert hardened.host_public_key.split()[1] in known.read_text()


def test_a_key_the_host_does_not_know_is_refused(tmp_path: Path, hardened: SshHost) -> None:
    keygen(tmp_path / "stranger")
    with pytest.raises(FactUnavailable) as caught:
        transport(hardened, key_file=tmp_path / "stranger").read_file("/etc/passwd")
    assert caught.value.reason is Reason.PERMISSION_DENIED


@pytest.fixture
def silent_host() -> Iterator[tuple[str, int]]:
    """A TCP server that accepts connections and never says a word."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((SILENT_ADDRESS, 2222))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield SILENT_ADDRESS, 2222
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_host_that_never_speaks_costs_one_timeout(tmp_path: Path,
                                                    silent_host: tuple[str, int]) -> None:
    address, port = silent_host
    known = tmp_path / "known_hosts"
    known.write_text("")
    key = tmp_path / "key"
    keygen(key)
    inventory = ("organisation: Silent\nscope: {networks: [127.63.0.0/16]}\n"
                 f"credentials:\n  k: {{type: ssh, user: auditor, key_file: {key}, "
                 f"known_hosts: {known}, port: {port}}}\ntargets:\n"
                 f"  - {{name: silent, address: {address}, roles: [host], ssh: k}}\n")
    started = time.monotonic()
    results = run_audit(tmp_path, profile_text(), inventory, timeout=2.0, jobs=8).results
    elapsed = time.monotonic() - started
    assert elapsed < 4.5, elapsed
    assert {r.status for r in results} == {Status.ERROR}
    assert {r.error.type for r in results if r.error} <= {Reason.TIMEOUT.value}, \
        {r.error.message for r in results if r.error}


def test_a_refused_connection_is_an_unreachable_error(tmp_path: Path, hardened: SshHost) -> None:
    credential = SshCredential(type="ssh", user="auditor", port=2299)
    remote = SshTransport("127.63.0.21", credential, hardened.key_file, hardened.known_hosts, 5)
    with pytest.raises(FactUnavailable) as caught:
        remote.read_file("/etc/passwd")
    assert caught.value.reason is Reason.UNREACHABLE


def test_a_dropped_connection_is_unreachable_once_not_per_probe(hardened: SshHost) -> None:
    remote = transport(hardened)
    assert remote.read_file("/etc/login.defs")
    remote._client.get_transport().close()  # type: ignore[union-attr]  # the link drops
    trips = remote.round_trips
    for _ in range(3):
        with pytest.raises(FactUnavailable) as caught:
            remote.read_file("/etc/passwd")
        assert caught.value.reason is Reason.UNREACHABLE
    assert remote.round_trips == trips + 1
    remote.close()


def test_the_ssh_agent_is_used_when_no_key_file_is_named(
        tmp_path: Path, hardened: SshHost, monkeypatch: pytest.MonkeyPatch) -> None:
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not socket_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        subprocess.run(["ssh-add", "-q", str(hardened.key_file)], check=True,
                       env={"SSH_AUTH_SOCK": str(socket_path)}, stderr=subprocess.DEVNULL)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))
        credential = SshCredential(type="ssh", user="auditor", port=hardened.port)
        remote = SshTransport(hardened.address, credential, None, hardened.known_hosts, 10)
        assert b"PASS_MAX_DAYS" in remote.read_file("/etc/login.defs")
        remote.close()
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_mis_audit_run_as_a_subprocess_reads_the_ssh_hosts(
        tmp_path: Path, weak: SshHost, hardened: SshHost) -> None:
    inventory = _inventory(tmp_path, weak, hardened, True, HOST_CHECKS)
    completed = subprocess.run(
        [sys.executable, "-m", "audit.cli", "run", "-p", str(tmp_path / "profile.yaml"), "-i", str(inventory),
         "-o", str(tmp_path / "out"), "--format", "json", "--quiet"],
        capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 1, completed.stderr       # the weak hosts: not ready
    record = json.loads((tmp_path / "out" / "results.json").read_text())
    statuses = {(r["target"], r["check"]): r["status"] for r in record["results"]}
    assert statuses[("hardened-ssh", "host.ssh_mfa")] == "pass"
    assert statuses[("weak-ssh", "host.ssh_mfa")] == "fail"
    assert "fixture-redis-secret-4711" not in completed.stdout + completed.stderr


def test_large_files_stream_over_sftp_and_special_files_are_refused(hardened: SshHost) -> None:
    # /srv of the remote host is the test tree's srv: a file larger than a batch reads whole
    big = hardened.tree / "srv" / "big-export.csv"
    content = b"iin;name\n" + b"0" * (MAX_FILE_BYTES + 1024 * 1024) + b"\nend\n"
    big.write_bytes(content)
    fifo = hardened.tree / "srv" / "pipe"
    os.mkfifo(fifo)
    ssh = transport(hardened)
    try:
        with ssh.open_binary("/srv/big-export.csv") as stream:
            assert stream.read(9) == b"iin;name\n"
            stream.seek(-5, os.SEEK_END)
            assert stream.read() == b"\nend\n"
            stream.seek(0)
            assert hashlib.sha256(stream.read()).digest() == hashlib.sha256(content).digest()
        with pytest.raises(FactUnavailable) as refused:
            ssh.open_binary("/srv/pipe")
        assert refused.value.reason is Reason.REFUSED
        with pytest.raises(FactUnavailable) as missing:
            ssh.open_binary("/srv/absent")
        assert missing.value.reason is Reason.NOT_FOUND
    finally:
        ssh.close()
        big.unlink()
        fifo.unlink()


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHost]:
    """The hardened tree on a host whose running system disagrees with it: chrony enabled
    but stopped, no timedatectl, only PostgreSQL running."""
    host = start_ssh_host("hardened", tmp_path_factory.mktemp("ssh-drifted"), "127.63.0.13",
                          commands="drifted")
    yield host
    host.stop()


def test_configuration_the_running_system_contradicts_is_never_a_pass(
        tmp_path: Path, weak: SshHost, drifted: SshHost) -> None:
    results = _run(tmp_path, weak, drifted, checks=("hostsys.time_sync", "hostdb.redis_auth"))
    time_sync = results[("hardened-ssh", "hostsys.time_sync")]
    assert time_sync.status is Status.FAIL, time_sync.summary
    assert time_sync.summary == "chrony.service enabled but not running (systemctl)"
    assert time_sync.evidence.observed["running"] == []
    # the same files offline: nothing contradicts them
    assert results[("hardened-offline", "hostsys.time_sync")].status is Status.PASS
    # Redis is enabled (its wants link), so its configuration is still judged
    assert results[("hardened-ssh", "hostdb.redis_auth")].status is Status.PASS
