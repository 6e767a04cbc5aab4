"""A corpus of malformed profiles, inventories and waivers: each is exit 2 with a message that
names the file and (where the file exists) the line, and never a traceback."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audit.cli import app

GOOD_CONTROL = """
  - id: c.one
    title: A control
    severity: high
    checks:
      - check: host.password_max_age
"""


def profile(body: str, controls: str = GOOD_CONTROL) -> str:
    """A profile with a valid header, `body` appended and the controls given."""
    return f"id: broken\ntitle: Broken\nversion: '1'\n{body}controls:{controls}"


@dataclass(frozen=True)
class Case:
    """One malformed input: its files, which one is named, the line, a phrase of the message."""

    name: str
    files: dict[str, str]
    command: tuple[str, ...]
    blamed: str
    line: int | None
    phrase: str


def inventory(body: str) -> str:
    """An inventory with an organisation and `body`."""
    return "organisation: Test clinic\n" + textwrap.dedent(body)


CASES = [
    # --- profiles ----------------------------------------------------------------------
    Case("yaml-unclosed-bracket", {"p.yaml": "id: x\ntitle: [unclosed\nversion: '1'\n"},
         ("validate", "p.yaml"), "p.yaml", 3, "YAML syntax"),
    Case("yaml-tab-indent", {"p.yaml": "id: x\ncontrols:\n\t- id: a\n"},
         ("validate", "p.yaml"), "p.yaml", 3, "YAML syntax"),
    Case("empty-file", {"p.yaml": ""}, ("run", "-p", "./p.yaml"), "p.yaml", 1, "empty"),
    Case("profile-is-a-list", {"p.yaml": "- id: x\n"}, ("run", "-p", "./p.yaml"), "p.yaml", 1,
         "valid dictionary"),
    Case("unknown-top-key", {"p.yaml": profile("colour: red\n")}, ("validate", "p.yaml"),
         "p.yaml", 4, "colour: unknown key"),
    Case("missing-id", {"p.yaml": "title: t\nversion: '1'\ncontrols: []\n"},
         ("validate", "p.yaml"), "p.yaml", 1, "id: required key is missing"),
    Case("threshold-not-a-number", {"p.yaml": profile("threshold: high\n")},
         ("validate", "p.yaml"), "p.yaml", 4, "threshold"),
    Case("threshold-out-of-range", {"p.yaml": profile("threshold: 150\n")},
         ("validate", "p.yaml"), "p.yaml", 4, "less than or equal to 100"),
    Case("unknown-severity", {"p.yaml": profile("", GOOD_CONTROL.replace("high", "urgent"))},
         ("validate", "p.yaml"), "p.yaml", 7, "severity"),
    Case("unknown-check-id", {"p.yaml": profile("", GOOD_CONTROL.replace(
        "host.password_max_age", "host.no_such_check"))},
         ("validate", "p.yaml"), "p.yaml", 9, "unknown check id 'host.no_such_check'"),
    Case("with-unknown-parameter", {"p.yaml": profile("", GOOD_CONTROL + "        with: {max_dayz: 3}\n")},
         ("validate", "p.yaml"), "p.yaml", 10, "max_dayz: unknown key"),
    Case("with-wrong-type", {"p.yaml": profile("", GOOD_CONTROL + "        with: {max_days: ninety}\n")},
         ("validate", "p.yaml"), "p.yaml", 10, "max_days"),
    Case("control-without-title", {"p.yaml": profile("", GOOD_CONTROL.replace("    title: A control\n", ""))},
         ("validate", "p.yaml"), "p.yaml", 5, "title: required key is missing"),
    Case("duplicate-key", {"p.yaml": "id: x\nid: y\ntitle: t\nversion: '1'\n"},
         ("validate", "p.yaml"), "p.yaml", 2, "duplicate key 'id'"),
    Case("cyclic-extends", {"a.yaml": profile("extends: [b.yaml]\n"),
                            "b.yaml": profile("extends: [a.yaml]\n").replace("id: broken", "id: b")},
         ("validate", "a.yaml"), "b.yaml", 4, "cyclic extends"),
    Case("self-extends", {"a.yaml": profile("extends: [a.yaml]\n")},
         ("validate", "a.yaml"), "a.yaml", 4, "cyclic extends"),
    Case("extends-missing-file", {"a.yaml": profile("extends: [nowhere.yaml]\n")},
         ("validate", "a.yaml"), "a.yaml", 4, "file not found"),
    Case("extends-unknown-builtin", {"a.yaml": profile("extends: [no-such-profile]\n")},
         ("validate", "a.yaml"), "a.yaml", 4, "no built-in profile"),
    Case("disable-unknown-control", {"a.yaml": profile("extends: [kz-mis-baseline]\n"
                                                      "disable: [{control: zz.none, reason: r}]\n")},
         ("validate", "a.yaml"), "a.yaml", 5, "no inherited control 'zz.none'"),
    Case("disable-without-reason", {"a.yaml": profile("extends: [kz-mis-baseline]\n"
                                                     "disable: [{control: auth.mfa}]\n")},
         ("validate", "a.yaml"), "a.yaml", 5, "reason: required key is missing"),
    Case("tailor-unknown-control", {"a.yaml": profile("extends: [kz-mis-baseline]\n"
                                                     "tailor:\n  zz.none: {severity: low}\n")},
         ("validate", "a.yaml"), "a.yaml", 6, "no inherited control 'zz.none'"),
    Case("tailor-check-not-used", {"a.yaml": profile(
        "extends: [kz-mis-baseline]\ntailor:\n  auth.mfa:\n    with:\n      host.password_max_age: {max_days: 30}\n")},
         ("validate", "a.yaml"), "a.yaml", 8, "does not use check"),
    Case("tailor-bad-parameter", {"a.yaml": profile(
        "extends: [kz-mis-baseline]\ntailor:\n  auth.password_policy:\n    with:\n"
        "      host.password_max_age: {max_days: -1}\n")},
         ("validate", "a.yaml"), "a.yaml", 8, "greater than or equal to 1"),
    Case("law-reference-without-source", {"p.yaml": profile("", GOOD_CONTROL.replace(
        "    severity: high\n", "    severity: high\n    references: [{text: Some Act, kind: law}]\n"))},
         ("validate", "p.yaml"), "p.yaml", 8, "needs a source"),
    Case("reference-unknown-kind", {"p.yaml": profile("", GOOD_CONTROL.replace(
        "    severity: high\n", "    severity: high\n    references: [{text: Some Act, kind: rumour}]\n"))},
         ("validate", "p.yaml"), "p.yaml", 8, "kind"),
    Case("controls-not-a-list", {"p.yaml": "id: x\ntitle: t\nversion: '1'\ncontrols: {a: 1}\n"},
         ("validate", "p.yaml"), "p.yaml", 4, "controls"),
    Case("control-id-with-spaces", {"p.yaml": profile("", GOOD_CONTROL.replace("c.one", "'c one'"))},
         ("validate", "p.yaml"), "p.yaml", 5, "id"),
    Case("negative-weight", {"p.yaml": profile("weights: {high: -5}\n")},
         ("validate", "p.yaml"), "p.yaml", 4, "weights"),
    Case("profile-not-found", {}, ("run", "-p", "./absent.yaml"), "absent.yaml", None,
         "file not found"),
    # --- inventories --------------------------------------------------------------------
    Case("inventory-unknown-target-key", {"i.yaml": inventory("""
        targets:
          - {name: a, roles: [host], transport: local, colour: red}
        """)}, ("validate", "i.yaml"), "i.yaml", 4, "colour: unknown key"),
    Case("target-outside-scope", {"i.yaml": inventory("""
        scope: {networks: [127.70.0.0/24]}
        targets:
          - name: db
            address: 127.71.0.5
            roles: [db]
        """)}, ("run", "-i", "i.yaml"), "i.yaml", 6, "outside the inventory's scope"),
    Case("scope-bad-network", {"i.yaml": inventory("""
        scope: {networks: [10.0.0.300/24]}
        """)}, ("validate", "i.yaml"), "i.yaml", 3, "networks"),
    Case("unknown-role", {"i.yaml": inventory("""
        targets:
          - {name: a, roles: [mainframe], transport: local}
        """)}, ("validate", "i.yaml"), "i.yaml", 4, "roles"),
    Case("inline-password", {"i.yaml": inventory("""
        credentials:
          pacs: {type: basic, user: admin, password: hunter2}
        """)}, ("validate", "i.yaml"), "i.yaml", 4, "password: unknown key"),
    Case("missing-ssh-credential", {"i.yaml": inventory("""
        scope: {networks: [127.70.0.0/24]}
        targets:
          - {name: a, address: 127.70.0.1, roles: [host], ssh: nobody}
        """)}, ("validate", "i.yaml"), "i.yaml", 5, "no credential named 'nobody'"),
    Case("evidence-bad-date", {"i.yaml": inventory("""
        evidence:
          pentest_report: {file: report.pdf, date: 2026-13-45}
        """)}, ("validate", "i.yaml"), "i.yaml", 4, "date"),
    Case("duplicate-target-names", {"i.yaml": inventory("""
        targets:
          - {name: a, roles: [host], transport: local}
          - {name: a, roles: [host], transport: local}
        """)}, ("validate", "i.yaml"), "i.yaml", 5, "duplicate target name 'a'"),
    Case("url-outside-scope", {"i.yaml": inventory("""
        scope: {networks: [127.70.0.0/24]}
        targets:
          - name: web
            address: 127.70.0.2
            roles: [web]
            urls: [https://portal.example.org/]
        """)}, ("validate", "i.yaml"), "i.yaml", 8, "outside the inventory's scope"),
    Case("path-outside-scope", {"i.yaml": inventory("""
        scope: {paths: [/srv/share]}
        targets:
          - {name: share, roles: [fileshare], transport: local, paths: [/home]}
        """)}, ("validate", "i.yaml"), "i.yaml", 5, "outside the inventory's scope"),
    Case("offline-root-missing", {"i.yaml": inventory("""
        targets:
          - {name: img, roles: [host], root: ./no-such-root}
        """)}, ("validate", "i.yaml"), "i.yaml", 4, "not a directory"),
    Case("basic-credential-two-secrets", {"i.yaml": inventory("""
        credentials:
          pacs: {type: basic, user: admin, password_env: A, password_file: b}
        """)}, ("validate", "i.yaml"), "i.yaml", 4, "exactly one"),
    Case("inventory-missing-organisation", {"i.yaml": "targets: []\n"},
         ("run", "-i", "i.yaml"), "i.yaml", 1, "organisation: required key is missing"),
    # --- waivers ------------------------------------------------------------------------
    Case("expired-waiver", {"w.yaml": "- {control: auth.mfa, reason: r, approved_by: me, "
                                      "expires: 2020-01-01}\n"},
         ("validate", "w.yaml"), "w.yaml", 1, "expired on 2020-01-01"),
    Case("waiver-bad-date", {"w.yaml": "- {control: auth.mfa, reason: r, approved_by: me, "
                                       "expires: someday}\n"},
         ("run", "-w", "w.yaml"), "w.yaml", 1, "expires"),
    Case("waiver-missing-approver", {"w.yaml": "- control: auth.mfa\n  reason: r\n"
                                               "  expires: 2099-01-01\n"},
         ("validate", "w.yaml"), "w.yaml", 1, "approved_by: required key is missing"),
    Case("waivers-not-a-list", {"w.yaml": "waivers: {control: auth.mfa}\n"},
         ("run", "-w", "w.yaml"), "w.yaml", 1, "expected a list of waivers"),
    Case("waiver-unknown-key", {"w.yaml": "waivers:\n  - {control: auth.mfa, reason: r, approved_by: me,"
                                          " expires: 2099-01-01, colour: red}\n"},
         ("validate", "w.yaml"), "w.yaml", 2, "colour: unknown key"),
]


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_malformed_input_is_exit_2_with_file_and_line(case: Case, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for name, text in case.files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    outcome = CliRunner().invoke(app, [*case.command, "-o", str(tmp_path / "run")]
                                 if case.command[0] == "run" else list(case.command))
    message = outcome.output
    assert outcome.exit_code == 2, message
    assert "Traceback" not in message and outcome.exception is None or \
        isinstance(outcome.exception, SystemExit), message
    where = re.escape(case.blamed) + (rf":{case.line}\b" if case.line is not None else "")
    assert re.search(where, message), f"expected {case.blamed}:{case.line} in:\n{message}"
    assert case.phrase in message, message
    assert not (tmp_path / "run").exists(), "nothing may run on bad input"
