"""A whole `mis-audit run` over the weak and hardened sites: results.json holds the exact
verdict of every TLS and web check on each, and a malformed parameter is exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.servers.nginx import WebServer, site_fixture

WEAK_ADDRESS = "127.61.6.10"
HARDENED_ADDRESS = "127.61.6.11"
CHECKS = ["tls.protocol_versions", "tls.certificate", "web.https_redirect", "web.hsts",
          "web.public_exports", "web.login_bruteforce", "web.version_disclosure",
          "web.security_headers"]
PROFILE = "\n".join([
    "id: tls-web-test", "title: TLS and web", 'version: "1"', "threshold: 80", "controls:",
    *[f"  - {{id: C{i}, title: {check_id}, severity: high, checks: [{{check: {check_id}}}]}}"
      for i, check_id in enumerate(CHECKS)]])

weak_site = site_fixture("weak", WEAK_ADDRESS)
hardened_site = site_fixture("hardened", HARDENED_ADDRESS)


def inventory(sites: list[WebServer], ca_file: Path) -> str:
    targets = "".join(
        f"""  - name: {site.variant}
    address: {site.address}
    roles: [web]
    urls: ["{site.https_url}"]
    login: {{url: "{site.login_url}", username: audit.probe, max_attempts: 4}}
""" for site in sites)
    return (f"organisation: Test clinic\nscope: {{networks: [127.61.6.0/24]}}\n"
            f"trust: {{ca_file: {ca_file}}}\ntargets:\n{targets}")


def mis_audit(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "audit.cli", *arguments], check=False,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.servers
def test_run_over_weak_and_hardened_sites(tmp_path: Path, weak_site: WebServer,
                                          hardened_site: WebServer) -> None:
    (tmp_path / "profile.yaml").write_text(PROFILE)
    (tmp_path / "inventory.yaml").write_text(
        inventory([weak_site, hardened_site], hardened_site.ca_file))
    run = mis_audit("run", "-p", str(tmp_path / "profile.yaml"), "-i",
                    str(tmp_path / "inventory.yaml"), "-o", str(tmp_path / "out"),
                    "--format", "json", "--quiet")
    assert run.returncode == 1, run.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    statuses = {(item["target"], item["check"]): item["status"] for item in results}
    assert statuses == {**{("weak", check_id): "fail" for check_id in CHECKS},
                        **{("hardened", check_id): "pass" for check_id in CHECKS}}
    assert "Traceback" not in run.stderr and "Warning" not in run.stderr


def test_a_misspelt_parameter_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "profile.yaml").write_text(PROFILE.replace(
        "checks: [{check: tls.protocol_versions}]",
        "checks: [{check: tls.protocol_versions, with: {minimum: TLS1.2}}]"))
    result = mis_audit("validate", str(tmp_path / "profile.yaml"))
    assert result.returncode == 2
    assert "minimum" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
