"""A corpus of malformed profiles, inventories and waivers: each is exit 2 with a message that
names the file and (where the file exists) the line and column, never a traceback, and comes
quickly: control characters, bad encodings, nesting and alias bombs, huge files, wrong types,
truncation, files that are not files."""

from __future__ import annotations

import os
import re
import textwrap
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.errors import InputError
from audit.yamlfile import MAX_ALIASES, MAX_DEPTH, parse_document

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
    """One malformed input: its files, which one is named, the line, a phrase of the message,
    how many seconds the answer may take, and what else to leave in the directory."""

    name: str
    files: dict[str, str | bytes]
    command: tuple[str, ...]
    blamed: str
    line: int | None
    phrase: str
    seconds: float = 10.0
    setup: Callable[[Path], None] | None = None


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


# --- the loader's limits: what a hostile file may not make mis-audit do -------------------

WAIVER = "- {control: auth.mfa, reason: r, approved_by: me, expires: 2099-01-01}\n"
HEADER = "id: broken\ntitle: Broken\nversion: '1'\n"
INVENTORY = "organisation: Test clinic\n"


def laughs(levels: int = 9, width: int = 9, indent: str = "") -> str:
    """A "billion laughs" block: each level is `width` aliases of the level before."""
    lines = [f"{indent}l0: &l0 [{', '.join(['lol'] * width)}]\n"]
    lines += [f"{indent}l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]\n"
              for n in range(1, levels)]
    return "".join(lines)


def merge_laughs(levels: int = 9) -> str:
    """The same explosion through merge keys: each mapping merges the one before, twice over."""
    lines = ["m0: &m0 {a: 1, b: 2, c: 3, d: 4}\n"]
    lines += [f"m{n}: &m{n} {{<<: [*m{n - 1}, *m{n - 1}, *m{n - 1}, *m{n - 1}], k{n}: 1}}\n"
              for n in range(1, levels)]
    return "".join(lines)


def alias_chain(anchors: int = 20, depth: int = 40) -> str:
    """Few nodes, but each anchor wraps the previous one `depth` levels deeper."""
    lines = ["a0: &a0 x\n"]
    lines += [f"a{n}: &a{n} {'[' * depth}*a{n - 1}{']' * depth}\n" for n in range(1, anchors)]
    return "".join(lines)


def make_fifo(name: str) -> Callable[[Path], None]:
    """A setup step that leaves a named pipe: reading one would block forever."""
    return lambda directory: os.mkfifo(directory / name)


def make_loop(name: str) -> Callable[[Path], None]:
    """A setup step that leaves two symbolic links pointing at each other."""
    def setup(directory: Path) -> None:
        (directory / f"{name}.b").symlink_to(directory / name)
        (directory / name).symlink_to(directory / f"{name}.b")
    return setup


def make_directory(name: str) -> Callable[[Path], None]:
    """A setup step that leaves a directory where a file is expected."""
    return lambda directory: (directory / name).mkdir()


FAST = 2.0          # seconds: a limit must answer at once, not after exhausting something

CONTROL_CHARACTER_CASES = [
    Case("raw-nul-in-title", {"p.yaml": b"id: x\ntitle: 'a\x00b'\nversion: '1'\n"},
         ("validate", "p.yaml"), "p.yaml", 2, "control character U+0000"),
    Case("raw-nul-first-byte", {"p.yaml": b"\x00id: x\n"}, ("validate", "p.yaml"), "p.yaml", 1,
         "control character U+0000"),
    Case("raw-nul-in-comment", {"w.yaml": WAIVER.encode() + b"# note\x00\n"},
         ("run", "-w", "w.yaml"), "w.yaml", 2, "control character U+0000"),
    Case("raw-bell-in-organisation", {"i.yaml": b"organisation: Clinic\x07\n"},
         ("validate", "i.yaml"), "i.yaml", 1, "control character U+0007"),
    Case("raw-escape-sequence", {"w.yaml": b"- control: auth.mfa\n  reason: '\x1b[31mok'\n"},
         ("validate", "w.yaml"), "w.yaml", 2, "control character U+001B"),
    Case("raw-del", {"p.yaml": HEADER.encode() + b"description: a\x7f\n"},
         ("validate", "p.yaml"), "p.yaml", 4, "control character U+007F"),
    Case("raw-c1-csi", {"i.yaml": INVENTORY.encode() + "system: MIS\x9b2J\n".encode()},
         ("run", "-i", "i.yaml"), "i.yaml", 2, "control character U+009B"),
    Case("raw-form-feed", {"i.yaml": INVENTORY.encode() + b"\x0csystem: x\n"},
         ("validate", "i.yaml"), "i.yaml", 2, "control character U+000C"),
    Case("raw-vertical-tab", {"p.yaml": HEADER.encode() + b"threshold:\x0b80\n"},
         ("validate", "p.yaml"), "p.yaml", 4, "control character U+000B"),
    Case("raw-noncharacter", {"p.yaml": HEADER.encode() + "description: \ufffe\n".encode()},
         ("validate", "p.yaml"), "p.yaml", 4, "character U+FFFE"),
    Case("raw-control-after-cr-line-ends", {"p.yaml": b"id: x\rtitle: t\rversion: '\x01'\r"},
         ("validate", "p.yaml"), "p.yaml", 3, "control character U+0001"),
    Case("raw-rtl-override-in-title", {"p.yaml": "id: x\ntitle: 'ok \u202e kcehc'\n"},
         ("validate", "p.yaml"), "p.yaml", 2, "bidirectional control character U+202E"),
    Case("raw-rtl-override-in-comment", {"i.yaml": INVENTORY + "# \u202e } scope: all\n"},
         ("validate", "i.yaml"), "i.yaml", 2, "RIGHT-TO-LEFT OVERRIDE"),
    Case("raw-bidi-isolate-in-waiver", {"w.yaml": "- control: auth.mfa\n  reason: 'a\u2066b'\n"},
         ("run", "-w", "w.yaml"), "w.yaml", 2, "bidirectional control character U+2066"),
    Case("escaped-rtl-override", {"p.yaml": 'id: x\ntitle: "ok \\u202e"\n'},
         ("validate", "p.yaml"), "p.yaml", 2, "U+202E (RIGHT-TO-LEFT OVERRIDE) is not allowed"),
    Case("escaped-nul", {"w.yaml": '- {control: auth.mfa, reason: "a\\0b"}\n'},
         ("validate", "w.yaml"), "w.yaml", 1,
         "control character U+0000 is not allowed (in a value)"),
    Case("escaped-ansi", {"i.yaml": 'organisation: "\\e[2JClinic"\n'},
         ("validate", "i.yaml"), "i.yaml", 1, "control character U+001B"),
    Case("escaped-lone-surrogate", {"p.yaml": 'id: x\ntitle: "\\ud800"\nversion: "1"\n'},
         ("validate", "p.yaml"), "p.yaml", 2, "lone surrogate U+D800"),
    Case("escaped-low-surrogate", {"i.yaml": INVENTORY + 'system: "MIS \\udfff"\n'},
         ("run", "-i", "i.yaml"), "i.yaml", 2, "lone surrogate U+DFFF"),
    Case("escaped-long-surrogate",
         {"w.yaml": '- {control: auth.mfa, approved_by: "\\U0000D834"}\n'},
         ("validate", "w.yaml"), "w.yaml", 1, "lone surrogate U+D834"),
    Case("escaped-surrogate-in-key", {"p.yaml": HEADER + '"\\ud83d": 1\n'},
         ("validate", "p.yaml"), "p.yaml", 4, "lone surrogate U+D83D is not a character and "
         "cannot be written out (in a key)"),
    Case("escaped-next-line", {"p.yaml": HEADER + 'description: "a\\Nb"\n'},
         ("validate", "p.yaml"), "p.yaml", 4, "control character U+0085"),
]

ENCODING_CASES = [
    Case("not-utf8", {"p.yaml": b"id: x\ntitle: t\nversion: caf\xe9\n"}, ("validate", "p.yaml"),
         "p.yaml", 3, "not UTF-8 text (byte 0xe9)"),
    Case("utf16-file", {"i.yaml": "organisation: x\n".encode("utf-16")}, ("run", "-i", "i.yaml"),
         "i.yaml", 1, "UTF-16 text"),
    Case("truncated-utf8-sequence", {"w.yaml": WAIVER.encode() + b"# \xd0"},
         ("validate", "w.yaml"), "w.yaml", 2, "not UTF-8 text"),
    Case("utf8-encoded-surrogate", {"i.yaml": INVENTORY.encode() + b"system: \xed\xa0\x80\n"},
         ("validate", "i.yaml"), "i.yaml", 2, "not UTF-8 text (byte 0xed)"),
]

NESTING_CASES = [
    Case("deep-flow-sequences", {"p.yaml": profile("", GOOD_CONTROL + "        with: {max_days: "
                                                   + "[" * 5000 + "]" * 5000 + "}\n")},
         ("validate", "p.yaml"), "p.yaml", 10, "nested more than 64 deep", FAST),
    Case("deep-flow-mappings", {"i.yaml": INVENTORY + "scope: " + "{a: " * 5000 + "1"
                                + "}" * 5000 + "\n"},
         ("validate", "i.yaml"), "i.yaml", 2, "nested more than 64 deep", FAST),
    Case("deep-unclosed-flow", {"w.yaml": "[" * 1_000_000}, ("run", "-w", "w.yaml"), "w.yaml", 1,
         "nested more than 64 deep", FAST),
    Case("deep-block-mappings", {"i.yaml": INVENTORY + "".join(
        f"{' ' * level}k{level}:\n" for level in range(200)) + " " * 200 + "x\n"},
         ("validate", "i.yaml"), "i.yaml", 66, "nested more than 64 deep", FAST),
    Case("deep-block-sequences", {"w.yaml": "- " * 3000 + "x\n"}, ("validate", "w.yaml"), "w.yaml",
         1, "nested more than 64 deep", FAST),
    Case("deep-mixed-nesting", {"p.yaml": HEADER + "tailor: " + "[{a: " * 2000 + "}]" * 2000
                                + "\n"},
         ("validate", "p.yaml"), "p.yaml", 4, "nested more than 64 deep", FAST),
    Case("deep-through-aliases", {"p.yaml": HEADER + alias_chain()}, ("validate", "p.yaml"),
         "p.yaml", 6, "nested more than 64 deep (aliases expanded)", FAST),
]

ALIAS_CASES = [
    Case("billion-laughs-profile", {"p.yaml": HEADER + laughs()}, ("validate", "p.yaml"),
         "p.yaml", 9, "more than 100000 keys and values", FAST),
    Case("billion-laughs-inventory", {"i.yaml": INVENTORY + "targets: &t\n" + "scope:\n"
                                      + laughs(indent="  ")},
         ("run", "-i", "i.yaml"), "i.yaml", 9, "more than 100000 keys and values", FAST),
    Case("billion-laughs-waivers", {"w.yaml": "waivers:\n  - " + laughs(12, 4, "    ").lstrip()},
         ("validate", "w.yaml"), "w.yaml", 9, "more than 100000 keys and values", FAST),
    Case("merge-key-laughs", {"p.yaml": HEADER + merge_laughs()}, ("validate", "p.yaml"),
         "p.yaml", 11, "more than 100000 keys and values", FAST),
    Case("alias-of-itself", {"p.yaml": HEADER + "controls: &c [*c]\n"}, ("validate", "p.yaml"),
         "p.yaml", 4, "alias *c is inside the collection it names", FAST),
    Case("alias-of-enclosing-mapping", {"i.yaml": INVENTORY + "scope: &s {paths: [*s]}\n"},
         ("validate", "i.yaml"), "i.yaml", 2, "alias *s is inside the collection it names", FAST),
    Case("merge-of-itself", {"w.yaml": "- &w {<<: *w, control: auth.mfa}\n"},
         ("validate", "w.yaml"), "w.yaml", 1, "alias *w is inside the collection it names", FAST),
    Case("too-many-aliases", {"p.yaml": HEADER + "x: &x 1\ndescription: ["
                              + ", ".join(["*x"] * 1001) + "]\n"},
         ("validate", "p.yaml"), "p.yaml", 5, "more than 1000 aliases", FAST),
    Case("undefined-alias", {"i.yaml": INVENTORY + "targets: *nowhere\n"}, ("validate", "i.yaml"),
         "i.yaml", 2, "undefined alias"),
    Case("duplicate-anchor", {"p.yaml": HEADER + "a: &x 1\nb: &x 2\n"}, ("validate", "p.yaml"),
         "p.yaml", 5, "duplicate anchor"),
]

SIZE_CASES = [
    Case("larger-than-4-mib", {"p.yaml": HEADER + "description: >\n" + ("  " + "x" * 78 + "\n")
                               * 60_000},
         ("validate", "p.yaml"), "p.yaml", 51_785, "larger than 4194304 bytes", FAST),
    Case("larger-than-4-mib-one-line", {"i.yaml": INVENTORY + "system: " + "y" * 5_000_000},
         ("run", "-i", "i.yaml"), "i.yaml", 2, "larger than 4194304 bytes", FAST),
    Case("too-many-values", {"w.yaml": "[" + "1," * 100_001 + "]\n"}, ("validate", "w.yaml"),
         "w.yaml", 1, "more than 100000 keys and values", 20.0),
    Case("integer-too-long", {"p.yaml": HEADER + "threshold: " + "9" * 5000 + "\n"},
         ("validate", "p.yaml"), "p.yaml", 4, "invalid value"),
]

TYPE_CASES = [
    Case("title-is-a-list", {"p.yaml": "id: x\ntitle: [a, b]\nversion: '1'\n"},
         ("validate", "p.yaml"), "p.yaml", 2, "title"),
    Case("title-unknown-language", {"p.yaml": "id: x\ntitle: {en: a, fr: b}\nversion: '1'\n"},
         ("validate", "p.yaml"), "p.yaml", 2, "title.fr"),
    Case("version-is-a-mapping", {"p.yaml": "id: x\ntitle: t\nversion: {a: 1}\n"},
         ("validate", "p.yaml"), "p.yaml", 3, "version"),
    Case("control-is-a-string", {"p.yaml": profile("", "\n  - just a string\n")},
         ("validate", "p.yaml"), "p.yaml", 5, "controls[0]"),
    Case("checks-is-a-string", {"p.yaml": profile("", GOOD_CONTROL.replace(
        "    checks:\n      - check: host.password_max_age\n",
        "    checks: host.password_max_age\n"))},
         ("validate", "p.yaml"), "p.yaml", 8, "checks"),
    Case("with-is-a-list", {"p.yaml": profile("", GOOD_CONTROL + "        with: [1, 2]\n")},
         ("validate", "p.yaml"), "p.yaml", 10, "with"),
    Case("timeout-not-a-number", {"p.yaml": profile("", GOOD_CONTROL + "        timeout: soon\n")},
         ("validate", "p.yaml"), "p.yaml", 10, "timeout"),
    Case("timeout-nan", {"p.yaml": profile("", GOOD_CONTROL + "        timeout: .nan\n")},
         ("validate", "p.yaml"), "p.yaml", 10, "timeout"),
    Case("threshold-nan", {"p.yaml": profile("threshold: .nan\n")}, ("validate", "p.yaml"),
         "p.yaml", 4, "threshold"),
    Case("threshold-infinite", {"p.yaml": profile("threshold: .inf\n")}, ("run", "-p", "./p.yaml"),
         "p.yaml", 4, "threshold"),
    Case("threshold-is-a-date", {"p.yaml": profile("threshold: 2026-01-01\n")},
         ("validate", "p.yaml"), "p.yaml", 4, "threshold"),
    Case("weights-unknown-severity", {"p.yaml": profile("weights: {urgent: 3}\n")},
         ("validate", "p.yaml"), "p.yaml", 4, "weights"),
    Case("weights-not-a-number", {"p.yaml": profile("weights: {high: lots}\n")},
         ("validate", "p.yaml"), "p.yaml", 4, "weights.high"),
    Case("weights-overflow-the-score", {"p.yaml": profile("weights: {high: " + "9" * 400 + "}\n")},
         ("validate", "p.yaml"), "p.yaml", 4, "weights.high"),
    Case("extends-is-a-mapping", {"p.yaml": profile("extends: {a: 1}\n")}, ("validate", "p.yaml"),
         "p.yaml", 4, "extends"),
    Case("profile-is-a-number", {"p.yaml": "42\n"}, ("run", "-p", "./p.yaml"), "p.yaml", 1,
         "valid dictionary"),
    Case("targets-is-a-mapping", {"i.yaml": inventory("targets: {a: 1}\n")}, ("validate", "i.yaml"),
         "i.yaml", 2, "targets"),
    Case("roles-is-a-string", {"i.yaml": inventory("""
        targets:
          - {name: a, roles: host, transport: local}
        """)}, ("validate", "i.yaml"), "i.yaml", 4, "roles"),
    Case("service-port-not-a-number", {"i.yaml": inventory("""
        targets:
          - name: a
            roles: [db]
            services: [{kind: postgresql, port: eighty}]
        """)}, ("validate", "i.yaml"), "i.yaml", 6, "port"),
    Case("service-port-out-of-range", {"i.yaml": inventory("""
        targets:
          - name: a
            roles: [db]
            services: [{kind: postgresql, port: 70000}]
        """)}, ("run", "-i", "i.yaml"), "i.yaml", 6, "less than or equal to 65535"),
    Case("credentials-is-a-list", {"i.yaml": inventory("credentials: [a, b]\n")},
         ("validate", "i.yaml"), "i.yaml", 2, "credentials"),
    Case("credential-unknown-type", {"i.yaml": inventory("credentials: {a: {type: kerberos}}\n")},
         ("validate", "i.yaml"), "i.yaml", 2, "credentials.a"),
    Case("ssh-port-zero",
         {"i.yaml": inventory("credentials: {a: {type: ssh, user: u, port: 0}}\n")},
         ("validate", "i.yaml"), "i.yaml", 2, "credentials.a.port"),
    Case("networks-is-a-string", {"i.yaml": inventory("scope: {networks: 10.0.0.0/8}\n")},
         ("validate", "i.yaml"), "i.yaml", 2, "networks"),
    Case("url-not-http", {"i.yaml": inventory("""
        targets:
          - {name: w, roles: [web], urls: ['ftp://files.example.org/']}
        """)}, ("validate", "i.yaml"), "i.yaml", 4, "not an http:// or https:// URL"),
    Case("url-bad-port", {"i.yaml": inventory("""
        targets:
          - {name: w, roles: [web], urls: ['http://h:99999/']}
        """)}, ("validate", "i.yaml"), "i.yaml", 4, "not a valid URL"),
    Case("login-too-many-attempts", {"i.yaml": inventory("""
        scope: {hosts: [h]}
        targets:
          - name: w
            roles: [web]
            login: {url: 'https://h/login', username: t, max_attempts: 1000}
        """)}, ("validate", "i.yaml"), "i.yaml", 7, "max_attempts"),
    Case("evidence-date-is-a-number", {"i.yaml": inventory("""
        evidence:
          report: {file: r.pdf, date: 20260101}
        """)}, ("validate", "i.yaml"), "i.yaml", 4, "date"),
    Case("inventory-is-a-string", {"i.yaml": "just text\n"}, ("run", "-i", "i.yaml"), "i.yaml", 1,
         "valid dictionary"),
    Case("inventory-is-null", {"i.yaml": "~\n"}, ("run", "-i", "i.yaml"), "i.yaml", 1,
         "valid dictionary"),
    Case("waiver-expires-is-a-number", {"w.yaml": "- {control: auth.mfa, reason: r, approved_by: "
                                                  "me, expires: 20270101}\n"},
         ("validate", "w.yaml"), "w.yaml", 1, "expires"),
    Case("waiver-unknown-risk", {"w.yaml": WAIVER.replace("}", ", risk: extreme}")},
         ("validate", "w.yaml"), "w.yaml", 1, "risk"),
    Case("waiver-is-a-string", {"w.yaml": WAIVER + "- auth.mfa\n"}, ("run", "-w", "w.yaml"),
         "w.yaml", 2, "[1]"),
    Case("waiver-bad-control-id", {"w.yaml": WAIVER.replace("auth.mfa", "'auth mfa'")},
         ("validate", "w.yaml"), "w.yaml", 1, "control"),
    Case("waiver-empty-target", {"w.yaml": WAIVER.replace("}", ", target: ''}")},
         ("validate", "w.yaml"), "w.yaml", 1, "target"),
    Case("waivers-key-is-null", {"w.yaml": "waivers: ~\n"}, ("run", "-w", "w.yaml"), "w.yaml", 1,
         "expected a list of waivers"),
    Case("waiver-date-out-of-range", {"w.yaml": WAIVER.replace("2099-01-01", "2026-02-30")},
         ("validate", "w.yaml"), "w.yaml", 1, "invalid date"),
    Case("waiver-year-zero", {"w.yaml": WAIVER.replace("2099-01-01", "0000-01-01")},
         ("validate", "w.yaml"), "w.yaml", 1, "invalid date"),
    Case("waiver-offset-out-of-range", {"w.yaml": WAIVER.replace(
        "2099-01-01", "2099-01-01T00:00:00+25:00")},
         ("validate", "w.yaml"), "w.yaml", 1, "invalid date"),
]

KEY_AND_TAG_CASES = [
    Case("key-is-a-list", {"p.yaml": HEADER + "? [a, b]\n: 1\n"}, ("validate", "p.yaml"),
         "p.yaml", 4, "mapping keys must be text, got a collection"),
    Case("key-is-null", {"i.yaml": INVENTORY + "~: x\n"}, ("validate", "i.yaml"), "i.yaml", 2,
         "mapping keys must be text, got None"),
    Case("key-is-a-boolean", {"p.yaml": HEADER + "yes: 1\n"}, ("validate", "p.yaml"), "p.yaml", 4,
         "mapping keys must be text, got True"),
    Case("key-is-a-float", {"w.yaml": "- {1.5: x}\n"}, ("validate", "w.yaml"), "w.yaml", 1,
         "mapping keys must be text, got 1.5"),
    Case("duplicate-key-in-target", {"i.yaml": inventory("""
        targets:
          - name: a
            roles: [host]
            name: b
        """)}, ("validate", "i.yaml"), "i.yaml", 6, "duplicate key 'name'"),
    Case("duplicate-key-in-waiver", {"w.yaml": "- control: auth.mfa\n  reason: r\n  reason: s\n"},
         ("run", "-w", "w.yaml"), "w.yaml", 3, "duplicate key 'reason'"),
    Case("binary-tag", {"p.yaml": "id: x\ntitle: !!binary aGVsbG8=\nversion: '1'\n"},
         ("validate", "p.yaml"), "p.yaml", 2, "binary values"),
    Case("bool-tag-bad-value", {"i.yaml": INVENTORY + "system: !!bool maybe\n"},
         ("validate", "i.yaml"), "i.yaml", 2, "invalid value 'maybe' for tag"),
    Case("int-tag-empty", {"p.yaml": profile("threshold: !!int ''\n")}, ("validate", "p.yaml"),
         "p.yaml", 4, "for tag tag:yaml.org,2002:int"),
    Case("float-tag-bad-value", {"p.yaml": profile("threshold: !!float high\n")},
         ("validate", "p.yaml"), "p.yaml", 4, "invalid value"),
    Case("timestamp-tag-bad-value", {"w.yaml": WAIVER.replace("2099-01-01", "!!timestamp soon")},
         ("validate", "w.yaml"), "w.yaml", 1, "for tag tag:yaml.org,2002:timestamp"),
    Case("python-object-tag", {"p.yaml": HEADER + "x: !!python/object/apply:os.system [id]\n"},
         ("validate", "p.yaml"), "p.yaml", 4, "python/object/apply:os.system is not accepted"),
    Case("python-name-tag", {"p.yaml": HEADER + "x: !!python/name:os.system\n"},
         ("validate", "p.yaml"), "p.yaml", 4, "could not determine a constructor"),
    Case("set-tag", {"i.yaml": INVENTORY + "scope: {hosts: !!set {a, b}}\n"},
         ("validate", "i.yaml"), "i.yaml", 2, "tag tag:yaml.org,2002:set is not accepted"),
    Case("unknown-local-tag", {"i.yaml": INVENTORY + "system: !vault abc\n"},
         ("validate", "i.yaml"), "i.yaml", 2, "could not determine a constructor"),
]

SYNTAX_CASES = [
    Case("truncated-quoted-string", {"p.yaml": 'id: x\ntitle: "never ends\n'},
         ("validate", "p.yaml"), "p.yaml", 3, "YAML syntax"),
    Case("truncated-flow-mapping", {"i.yaml": INVENTORY + "targets:\n  - {name: a, ro"},
         ("validate", "i.yaml"), "i.yaml", 3, "YAML syntax"),
    Case("truncated-block", {"w.yaml": WAIVER + "- control: auth.mfa\n  reason: r\n  expi"},
         ("validate", "w.yaml"), "w.yaml", 4, "YAML syntax"),
    Case("unclosed-flow-sequence-waivers", {"w.yaml": "[" + WAIVER[2:-1] + ",\n"},
         ("run", "-w", "w.yaml"), "w.yaml", 2, "YAML syntax"),
    Case("stray-closing-bracket", {"p.yaml": HEADER + "]\n"}, ("validate", "p.yaml"), "p.yaml", 4,
         "YAML syntax"),
    Case("value-after-value", {"i.yaml": INVENTORY + "system: a: b\n"}, ("validate", "i.yaml"),
         "i.yaml", 2, "mapping values are not allowed here"),
    Case("bad-indentation", {"i.yaml": INVENTORY + "scope:\n    hosts: [a]\n  paths: [/]\n"},
         ("validate", "i.yaml"), "i.yaml", 4, "YAML syntax"),
    Case("tab-indent-inventory", {"i.yaml": INVENTORY + "targets:\n\t- name: a\n"},
         ("run", "-i", "i.yaml"), "i.yaml", 3, "YAML syntax"),
    Case("two-documents", {"p.yaml": HEADER + "---\n" + HEADER}, ("validate", "p.yaml"), "p.yaml",
         4, "expected a single document"),
    Case("yaml-2-directive", {"p.yaml": "%YAML 2.0\n---\n" + HEADER}, ("validate", "p.yaml"),
         "p.yaml", 1, "incompatible YAML document"),
    Case("comments-only", {"w.yaml": "# nothing here\n# at all\n"}, ("run", "-w", "w.yaml"),
         "w.yaml", 1, "empty"),
    Case("blank-lines-only", {"i.yaml": "\n\n   \n"}, ("run", "-i", "i.yaml"), "i.yaml", 1,
         "empty"),
    Case("document-marker-only", {"p.yaml": "---\n"}, ("validate", "p.yaml"), "p.yaml", 2,
         "valid dictionary"),
]

FILE_CASES = [
    Case("profile-is-a-directory", {}, ("run", "-p", "./p.yaml"), "p.yaml", None,
         "is a directory", FAST, make_directory("p.yaml")),
    Case("validate-a-fifo", {}, ("validate", "p.yaml"), "p.yaml", None, "not a regular file",
         FAST, make_fifo("p.yaml")),
    Case("waivers-symlink-loop", {}, ("run", "-w", "w.yaml"), "w.yaml", None,
         "Too many levels of symbolic links", FAST, make_loop("w.yaml")),
    Case("extends-a-fifo", {"p.yaml": profile("extends: [./pipe.yaml]\n")},
         ("validate", "p.yaml"), "p.yaml", 4, "not a regular file", FAST, make_fifo("pipe.yaml")),
    Case("extends-a-device", {"p.yaml": profile("extends: [/dev/zero]\n")},
         ("validate", "p.yaml"), "p.yaml", 4, "not a regular file", FAST),
    Case("extends-a-directory", {"p.yaml": profile("extends: [./sub/]\n")}, ("validate", "p.yaml"),
         "p.yaml", 4, "is a directory", FAST, make_directory("sub")),
    Case("extends-a-symlink-loop", {"p.yaml": profile("extends: [./loop.yaml]\n")},
         ("validate", "p.yaml"), "p.yaml", 4, "Too many levels of symbolic links", FAST,
         make_loop("loop.yaml")),
    Case("extends-unknown-home", {"p.yaml": profile("extends: ['~no-such-user-here/p.yaml']\n")},
         ("validate", "p.yaml"), "p.yaml", 4, "cannot expand '~'"),
    Case("extends-builtin-name-too-long", {"p.yaml": profile(f"extends: [{'x' * 300}]\n")},
         ("validate", "p.yaml"), "p.yaml", 4, "no built-in profile"),
    Case("extends-path-too-long", {"p.yaml": profile(f"extends: [./{'x/' * 3000}p.yaml]\n")},
         ("validate", "p.yaml"), "p.yaml", 4, "File name too long"),
    Case("extends-parent-with-syntax-error", {"p.yaml": profile("extends: [./parent.yaml]\n"),
                                              "parent.yaml": HEADER + "title: [\n"},
         ("validate", "p.yaml"), "parent.yaml", 5, "YAML syntax"),
    Case("extends-parent-with-control-character", {
        "p.yaml": profile("extends: [./parent.yaml]\n"),
        "parent.yaml": HEADER.replace("Broken", "Bro\x00ken").encode()},
         ("validate", "p.yaml"), "parent.yaml", 2, "control character U+0000"),
    Case("offline-root-unknown-home", {"i.yaml": inventory("""
        targets:
          - {name: img, roles: [host], root: '~no-such-user-here/img'}
        """)}, ("validate", "i.yaml"), "i.yaml", 4, "not a directory"),
    Case("offline-root-name-too-long", {"i.yaml": inventory(f"""
        targets:
          - {{name: img, roles: [host], root: {'r' * 5000}}}
        """)}, ("validate", "i.yaml"), "i.yaml", 4, "not a directory"),
]

CLINIC_PROFILE = files("profiles").joinpath("examples/clinic-tailored.yaml").read_bytes()

# Found by tests/test_inputs_fuzz.py on the loader as it was before these limits, as shrunk.
FUZZ_FOUND_CASES = [
    Case("fuzz-nul-for-first-byte-profile", {"p.yaml": b"\x00" + CLINIC_PROFILE[1:]},
         ("validate", "p.yaml"), "p.yaml", 1, "control character U+0000"),
    Case("fuzz-nul-for-first-byte-inventory", {"i.yaml": b"\x00rganisation: City Clinic No. 5\n"
                                               b"system: MedInfo MIS 4.2\n"},
         ("run", "-i", "i.yaml"), "i.yaml", 1, "control character U+0000"),
    Case("fuzz-nul-for-first-byte-waivers", {"w.yaml": b"\x00 {control: auth.password_policy, "
                                             b"reason: r,\n   approved_by: me, expires: "
                                             b"2099-01-31}\n"},
         ("run", "-w", "w.yaml"), "w.yaml", 1, "control character U+0000"),
    Case("fuzz-surrogate-profile-id", {"p.yaml": CLINIC_PROFILE.replace(
        b"id: clinic-tailored", b'id: "\\ud800"')},
         ("validate", "p.yaml"), "p.yaml", 5, "lone surrogate U+D800"),
]

ATTESTATION = ("- {control: audit.ids, status: pass, explanation: Wazuh seen, attested_by: me, "
               "date: 2026-01-01, expires: 2099-01-01}\n")

ATTESTATION_CASES = [
    Case("attestation-unknown-status", {"a.yaml": ATTESTATION.replace("pass", "maybe")},
         ("run", "-a", "a.yaml"), "a.yaml", 1, "status"),
    Case("attestation-missing-explanation", {"a.yaml": "attestations:\n  - control: auth.mfa\n"
                                             "    status: fail\n    attested_by: me\n"
                                             "    date: 2026-01-01\n    expires: 2099-01-01\n"},
         ("validate", "a.yaml"), "a.yaml", 2, "explanation: required key is missing"),
    Case("attestation-no-validity", {"a.yaml": ATTESTATION.replace(", expires: 2099-01-01", "")},
         ("run", "-a", "a.yaml"), "a.yaml", 1, "exactly one of expires or frequency"),
    Case("attestation-both-validities", {"a.yaml": ATTESTATION.replace(
        "}", ", frequency: annually}")},
         ("run", "-a", "a.yaml"), "a.yaml", 1, "exactly one of expires or frequency"),
    Case("attestation-unknown-frequency", {"a.yaml": ATTESTATION.replace(
        "expires: 2099-01-01", "frequency: sometimes")},
         ("validate", "a.yaml"), "a.yaml", 1, "frequency"),
    Case("attestation-expires-before-date", {"a.yaml": ATTESTATION.replace("2099-01-01",
                                                                           "2025-12-31")},
         ("run", "-a", "a.yaml"), "a.yaml", 1, "is before the attestation's date"),
    Case("attestation-expired-on-validate", {"a.yaml": ATTESTATION.replace("2099-01-01",
                                                                           "2026-01-02")},
         ("validate", "a.yaml"), "a.yaml", 1, "expired on 2026-01-02"),
    Case("attestation-evidence-missing", {"a.yaml": ATTESTATION.replace(
        "}", ", evidence: minutes.pdf}")},
         ("run", "-a", "a.yaml"), "a.yaml", 1, "'minutes.pdf' is not a readable file"),
    Case("attestation-evidence-is-a-directory", {"a.yaml": "attestations:\n  - control: auth.mfa"
                                                 "\n    status: fail\n    explanation: e\n"
                                                 "    attested_by: me\n    date: 2026-01-01\n"
                                                 "    frequency: annually\n    evidence: .\n"},
         ("run", "-a", "a.yaml"), "a.yaml", 8, "'.' is not a readable file"),
    Case("attestations-not-a-list", {"a.yaml": "attestations: {control: auth.mfa}\n"},
         ("run", "-a", "a.yaml"), "a.yaml", 1, "expected a list of attestations"),
    Case("attestation-unknown-key", {"a.yaml": ATTESTATION.replace("}", ", approver: x}")},
         ("run", "-a", "a.yaml"), "a.yaml", 1, "approver: unknown key"),
    Case("attestation-yaml-syntax", {"a.yaml": "attestations:\n  - [unclosed\n"},
         ("run", "-a", "a.yaml"), "a.yaml", 3, "YAML syntax"),
]

CASES += (FUZZ_FOUND_CASES + CONTROL_CHARACTER_CASES + ENCODING_CASES + NESTING_CASES + ALIAS_CASES + SIZE_CASES
          + TYPE_CASES + KEY_AND_TAG_CASES + SYNTAX_CASES + FILE_CASES + ATTESTATION_CASES)


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 100
    assert len({case.name for case in CASES}) == len(CASES), "case names are test ids"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_malformed_input_is_exit_2_with_file_and_line(case: Case, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for name, content in case.files.items():
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        else:
            (tmp_path / name).write_text(content, encoding="utf-8")
    if case.setup:
        case.setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    outcome = CliRunner().invoke(app, [*case.command, "-o", str(tmp_path / "run")]
                                 if case.command[0] == "run" else list(case.command))
    elapsed = time.monotonic() - started
    message = outcome.output
    assert outcome.exit_code == 2, message
    assert "Traceback" not in message and outcome.exception is None or \
        isinstance(outcome.exception, SystemExit), message
    where = re.escape(case.blamed) + (rf":{case.line}:\d+\b" if case.line is not None else ":")
    assert re.search(where, message), f"expected {case.blamed}:{case.line} in:\n{message}"
    assert case.phrase in message, message
    assert not (tmp_path / "run").exists(), "nothing may run on bad input"
    assert elapsed < case.seconds, f"took {elapsed:.1f} s"


def test_the_limits_leave_room_for_real_files() -> None:
    # The root mapping is one level: 63 sequences inside it reach the limit, 64 pass it.
    deepest = "a: " + "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1) + "\n"
    assert parse_document(deepest, "d.yaml").data["a"]
    with pytest.raises(InputError, match=f"more than {MAX_DEPTH} deep"):
        parse_document("a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n", "d.yaml")
    aliases = "x: &x {a: [1, 2]}\ny: [" + ", ".join(["*x"] * MAX_ALIASES) + "]\n"
    assert len(parse_document(aliases, "a.yaml").data["y"]) == MAX_ALIASES
    merged = parse_document("base: &b {x: 1}\nd: {<<: *b, y: 2}\n", "m.yaml").data
    assert merged["d"] == {"x": 1, "y": 2}
    assert parse_document("title: 'Ж \u00e9 \u2028 \t'\n", "t.yaml").data["title"]


def test_an_alias_bomb_is_refused_in_bounded_time_and_memory() -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(InputError, match="more than 100000 keys and values") as refused:
            parse_document(HEADER + laughs(levels=12, width=10), "bomb.yaml")
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < FAST, f"took {elapsed:.1f} s"
    assert peak < 64 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"
    assert refused.value.problems[0].line is not None


def test_a_message_holding_markup_is_printed_as_text(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "p.yaml").write_text(profile("", GOOD_CONTROL.replace(
        "host.password_max_age", "'[/x]'")), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    outcome = CliRunner().invoke(app, ["run", "-p", "./p.yaml", "-o", str(tmp_path / "run")])
    assert outcome.exit_code == 2, outcome.output
    assert "unknown check id '[/x]'" in outcome.output
