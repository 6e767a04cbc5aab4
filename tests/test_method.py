"""The report says where the audit looked from and with what: the scanner host, the address
each target is reached from, the tools and versions, the ports scanned, the host commands."""

from __future__ import annotations

import socket
from pathlib import Path

from hosts import profile_text
from runs import run_audit

from audit.facts.services import COMMON_PORTS
from audit.method import source_address, tool_versions
from reports.html import render_html
from tests.servers.sshd import host_tree


def test_the_run_records_its_method_and_each_targets_vantage(tmp_path: Path) -> None:
    host_tree("hardened", tmp_path / "image")
    results = run_audit(tmp_path, profile_text(("hostsys.firewall",)),
                        "organisation: Method clinic\nscope: {networks: [127.0.0.0/8]}\n"
                        "targets:\n"
                        "  - {name: image, roles: [host], root: image}\n"
                        "  - {name: portal, address: 127.0.0.9, roles: [web]}\n")
    method = results.method
    assert method is not None and method.scanner_host == socket.gethostname()
    assert method.ports_scanned == sorted(COMMON_PORTS)
    assert "auditctl -l (root: sudo -n)" in method.host_commands
    assert method.tools["nmap"][0].isdigit() and method.tools["sslyze"] != "not installed"
    records = {target.name: target for target in results.targets}
    assert records["portal"].source_address == "127.0.0.1"
    assert records["image"].account == "none: files of a copy"
    assert records["image"].source_address is None
    page = render_html(results)
    assert f"Scanner host: {socket.gethostname()}" in page
    assert "<td>127.0.0.9</td><td>127.0.0.1</td>" in page


def test_the_vantage_is_found_without_contacting_anyone() -> None:
    assert source_address("::1") == "::1"
    assert source_address("[::1]") == "::1"
    assert source_address(None) is None
    assert tool_versions()["python"].count(".") == 2
