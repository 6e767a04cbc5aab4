"""Warnings for declared credentials, evidence entries and waivers that nothing used."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from runs import run_audit

from audit.model.inventory import Inventory
from audit.model.results import WaiverRecord
from audit.model.waiver import Waiver
from audit.plan import build_plan
from audit.profiles import load_profiles
from audit.registry import default_registry
from audit.usage import expected_documents, unused_inputs
from audit.vocabulary import Lang
from reports.html import render_html

PROFILE = """id: usage-test
title: Usage
version: "1"
controls:
  - id: T-HOST
    title: Root login
    severity: high
    checks: [{check: host.ssh_root_login}]
  - id: T-DB
    title: Databases need a password
    severity: high
    checks: [{check: db.unauthenticated_access}]
  - id: T-DOC
    title: A penetration test
    severity: medium
    checks: [{check: evidence.document, with: {document: pentest_report}}]
  - id: T-DOC2
    title: The same report, again
    severity: low
    checks: [{check: evidence.document, with: {document: pentest_report}}]
"""

INVENTORY = {
    "organisation": "Clinic",
    "scope": {"networks": ["10.20.0.0/24"]},
    "credentials": {
        "ops-ssh": {"type": "ssh", "user": "auditor"},
        "web-ssh": {"type": "ssh", "user": "auditor"},
        "db-root": {"type": "basic", "user": "root", "password_env": "DB_PASSWORD"},
        "pacs-admin": {"type": "basic", "user": "admin", "password_env": "PACS_PASSWORD"},
        "fhir-token": {"type": "token", "token_env": "FHIR_TOKEN"},
    },
    "targets": [
        {"name": "app", "address": "10.20.0.40", "roles": ["host"], "ssh": "ops-ssh"},
        {"name": "portal", "address": "10.20.0.10", "roles": ["web"], "ssh": "web-ssh"},
        {"name": "db", "address": "10.20.0.20", "roles": ["db"],
         "services": [{"kind": "MariaDB", "port": 3306, "credential": "db-root"}]},
        {"name": "pacs", "address": "10.20.0.30", "roles": ["pacs"],
         "services": [{"kind": "dicom", "port": 104, "credential": "pacs-admin"}]},
    ],
    "evidence": {"pentest_report": {"file": "pentest.pdf"}, "old_plan": {"file": "irp.pdf"}},
}


def _profile(tmp_path: Path) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(PROFILE, encoding="utf-8")
    return path


def test_only_what_no_planned_check_reaches_is_warned_about(tmp_path: Path) -> None:
    profile = load_profiles([str(_profile(tmp_path))], default_registry())
    inventory = Inventory.model_validate(INVENTORY)
    unmatched = Waiver(control="T-HOST", target="gone-*", reason="r", approved_by="CISO",
                       expires=date(2030, 1, 1))
    warnings = unused_inputs(build_plan(profile, inventory.targets), inventory,
                             WaiverRecord(unmatched=[unmatched]))
    unused = "is declared but no planned check uses it"
    assert warnings == [
        f"credential 'fhir-token' {unused} (no target refers to it)",
        (f"credential 'pacs-admin' {unused} (no check logs in to dicom; service logins: "
         "memcached, mysql, postgresql, redis)"),
        f"credential 'web-ssh' {unused} (no check reads that host)",
        "evidence 'old_plan' is declared but no evidence check of the profile reads it",
        "waiver for T-HOST (gone-*) matched no failure",
    ]


def test_a_host_check_disabled_leaves_the_ssh_credential_unused(tmp_path: Path) -> None:
    text = PROFILE.replace("checks: [{check: host.ssh_root_login}]", "checks: []")
    (tmp_path / "profile.yaml").write_text(text, encoding="utf-8")
    profile = load_profiles([str(tmp_path / "profile.yaml")], default_registry())
    inventory = Inventory.model_validate(INVENTORY)
    warnings = unused_inputs(build_plan(profile, inventory.targets), inventory, WaiverRecord())
    assert any(w.startswith("credential 'ops-ssh'") for w in warnings)


def test_expected_documents_name_the_controls_that_need_them(tmp_path: Path) -> None:
    profile = load_profiles([str(_profile(tmp_path))], default_registry())
    assert expected_documents(profile) == {"pentest_report": ["T-DOC", "T-DOC2"]}
    baseline = expected_documents(load_profiles(["kz-mis-baseline"], default_registry()))
    assert len(baseline) >= 10 and all(baseline.values())


ORGANISATION_ONLY = """organisation: Clinic
credentials:
  spare: {type: basic, user: u, password_env: SPARE}
evidence:
  pentest_report: {file: pentest.txt}
  unread: {file: unread.txt}
"""


def test_warnings_reach_results_the_report_and_stderr(tmp_path: Path) -> None:
    (tmp_path / "pentest.txt").write_text("report", encoding="utf-8")
    results = run_audit(tmp_path, PROFILE, ORGANISATION_ONLY)
    assert results.warnings == [
        "credential 'spare' is declared but no planned check uses it (no target refers to it)",
        "evidence 'unread' is declared but no evidence check of the profile reads it"]
    html = render_html(results, Lang.EN)
    assert "Unused inputs (2)" in html and "evidence &#39;unread&#39;" in html
    done = subprocess.run([sys.executable, "-m", "audit.cli", "run", "-p", "profile.yaml", "-i",
                           "inventory.yaml", "-o", "out", "--history", "off", "--quiet"],
                          cwd=tmp_path, text=True, capture_output=True, timeout=120, check=False,
                          env={**os.environ, "COLUMNS": "80"})
    assert done.returncode in (0, 1), done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert lines == [f"warning: {warning}" for warning in results.warnings]

