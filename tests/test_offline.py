"""The offline transport (a host's file system in a directory), alone and through a run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from host_trees import HARDENED, WEAK, make_host
from runs import run_audit, statuses

from audit.errors import FactUnavailable, Unavailable
from audit.transports import CommandRefused, FilesystemTransport
from audit.vocabulary import Reason, Status


def test_absolute_symlinks_resolve_inside_the_root(tmp_path: Path) -> None:
    root = make_host(tmp_path / "host", HARDENED)
    transport = FilesystemTransport(root)
    assert b"PermitRootLogin no" in transport.read_file("/etc/ssh/sshd_config")


def test_symlinks_and_dotdot_never_leave_the_root(tmp_path: Path) -> None:
    root = tmp_path / "host"
    (root / "etc").mkdir(parents=True)
    (tmp_path / "secret").write_text("outside")
    os.symlink("../../secret", root / "etc/escape")
    os.symlink("/../../../secret", root / "etc/escape-abs")
    transport = FilesystemTransport(root)
    for path in ("/etc/escape", "/etc/escape-abs", "/../secret"):
        with pytest.raises(FactUnavailable) as caught:
            transport.read_file(path)
        assert caught.value.reason is Reason.NOT_FOUND


def test_a_symlink_loop_is_an_error_not_a_hang(tmp_path: Path) -> None:
    root = tmp_path / "host"
    (root / "etc").mkdir(parents=True)
    os.symlink("/etc/b", root / "etc/a")
    os.symlink("/etc/a", root / "etc/b")
    content = FilesystemTransport(root).read_files(["/etc/a"])["/etc/a"]
    assert isinstance(content, Unavailable)
    assert "symbolic links" in content.message


def test_commands_outside_the_allow_list_are_refused_by_the_transport(tmp_path: Path) -> None:
    transport = FilesystemTransport(tmp_path)
    with pytest.raises(CommandRefused):
        transport.run(["rm", "-rf", "/"])
    with pytest.raises(CommandRefused):
        transport.run(["sshd", "-T", "-f", "/tmp/x"])
    with pytest.raises(FactUnavailable) as caught:
        transport.run(["sshd", "-T"])
    assert caught.value.reason is Reason.UNSUPPORTED


def test_list_dir_is_sorted_and_typed(tmp_path: Path) -> None:
    root = make_host(tmp_path / "host", WEAK)
    names = [(e.name, e.is_dir) for e in FilesystemTransport(root).list_dir("/etc/ssh")]
    assert names == [("sshd_config", False), ("sshd_config.d", True)]


PROFILE = """
id: offline-test
title: Offline test
version: "1"
controls:
  - id: ssh.root
    title: root
    severity: high
    checks: [{check: host.ssh_root_login}]
  - id: ssh.password
    title: password
    severity: high
    checks: [{check: host.ssh_password_auth}]
  - id: pw.age
    title: age
    severity: medium
    checks: [{check: host.password_max_age, with: {max_days: 90}}]
  - id: db.listen
    title: listening
    severity: critical
    checks: [{check: host.db_listening}]
"""


def test_offline_run_weak_fails_hardened_passes(tmp_path: Path) -> None:
    make_host(tmp_path / "weak", WEAK)
    make_host(tmp_path / "hardened", HARDENED)
    results = run_audit(tmp_path, PROFILE, "organisation: Offline clinic\ntargets:\n"
                        "  - {name: weak, roles: [host], root: weak}\n"
                        "  - {name: hardened, roles: [host], root: hardened}\n")
    status = statuses(results)
    assert status == {
        ("host.ssh_root_login", "weak"): Status.FAIL,
        ("host.ssh_root_login", "hardened"): Status.PASS,
        ("host.ssh_password_auth", "weak"): Status.FAIL,
        ("host.ssh_password_auth", "hardened"): Status.PASS,
        ("host.password_max_age", "weak"): Status.FAIL,
        ("host.password_max_age", "hardened"): Status.PASS,
        # live sockets cannot be observed in an image
        ("host.db_listening", "weak"): Status.NOT_APPLICABLE,
        ("host.db_listening", "hardened"): Status.NOT_APPLICABLE,
    }
    evidence = {(r.check, r.target): r.evidence for r in results.results}
    assert evidence[("host.ssh_root_login", "weak")].observed == "yes"
    assert evidence[("host.password_max_age", "weak")].observed == 99999
    assert evidence[("host.password_max_age", "hardened")].observed == 60
