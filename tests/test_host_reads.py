"""The host probes' declared reads, and everything derived from them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.commands.grants import reads_table, sudoers_text, unnamed_directories
from audit.transports import CommandRefused
from audit.transports.filesystem import FilesystemTransport
from audit.transports.reads import HOST_PROBE_MODULES, declared_reads

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_section(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(f"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", text, re.DOTALL)
    assert found, f"README has no {name} section"
    return found.group(1)


def test_every_host_probe_module_declares_what_it_reads() -> None:
    reads = declared_reads()
    assert len(reads.probes) == len(HOST_PROBE_MODULES)
    assert all(probe.purpose for probe in reads.probes)
    prefetch = reads.prefetch()
    assert "/etc/shadow" in prefetch.files and "/etc/sudoers.d" in prefetch.config_dirs
    # the slow apt-get simulation is allowed, but only asked for when a check needs it
    assert reads.allows(("apt-get", "--simulate", "--quiet", "upgrade"))
    assert ("apt-get", "--simulate", "--quiet", "upgrade") not in prefetch.commands
    assert reads.needs_root(("auditctl", "-l")) and not reads.needs_root(("timedatectl", "show"))


def test_a_transport_runs_only_declared_commands(tmp_path: Path) -> None:
    transport = FilesystemTransport(tmp_path)
    for argv in (["auditctl", "-D"], ["sshd", "-T", "-f", "/tmp/x"], ["cat", "/etc/shadow"]):
        with pytest.raises(CommandRefused):
            transport.run(argv)


def test_the_readme_shows_the_declared_reads_and_the_generated_grant() -> None:
    reads = declared_reads()
    assert readme_section("host-reads") == reads_table(reads), \
        "README is stale: regenerate its host-reads section from reads_table()"
    assert readme_section("sudoers") == f"```\n{sudoers_text(reads, 'auditor')}```\n", \
        "README is stale: regenerate its sudoers section from `mis-audit sudoers`"


def test_the_grant_names_exact_commands_and_paths_and_never_a_wildcard() -> None:
    result = CliRunner().invoke(app, ["sudoers", "--user", "mis_audit"])
    assert result.exit_code == 0
    grant = [line for line in result.output.splitlines() if not line.startswith("#")]
    assert "mis_audit ALL=(root) NOPASSWD: MIS_AUDIT_COMMANDS, MIS_AUDIT_FILES" in grant
    assert "    /usr/sbin/auditctl -l, \\" in grant
    assert "    /usr/bin/cat -- /etc/shadow, \\" in grant
    assert not any(char in line for line in grant for char in "*?[")
    assert all(f"u:mis_audit:rX {directory}" in result.output
               for directory in unnamed_directories(declared_reads()))


def test_visudo_accepts_the_grant(tmp_path: Path) -> None:
    visudo = shutil.which("visudo") or "/usr/sbin/visudo"
    if not Path(visudo).exists():
        pytest.fail("visudo (Debian package sudo) is not installed: .ci/run must install it")
    grant = tmp_path / "mis-audit"
    grant.write_text(sudoers_text(declared_reads(), "auditor"))
    checked = subprocess.run([visudo, "-c", "-f", str(grant)], capture_output=True, text=True,
                             check=False, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
