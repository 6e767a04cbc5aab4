"""Inheritance, the control library, tailoring and their errors, against hand-computed
results; every error names the file and the line."""

from __future__ import annotations

import textwrap
from importlib.resources import files
from pathlib import Path

import pytest

from audit.errors import InputError, Problem
from audit.profiles import ResolvedProfile, load_profiles
from audit.registry import Registry, load_registry
from audit.vocabulary import Severity

EXAMPLE = str(files("profiles").joinpath("examples", "clinic-tailored.yaml"))
HEADER = 'version: "1"\n'


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(["checks.host", "checks.evidence"], include_entry_points=False)


def write(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return path


def load(path: Path | str, registry: Registry) -> ResolvedProfile:
    return load_profiles([str(path)], registry)


def problems(path: Path, registry: Registry) -> list[Problem]:
    with pytest.raises(InputError) as caught:
        load(path, registry)
    return caught.value.problems


def control(profile: ResolvedProfile, control_id: str):  # type: ignore[no-untyped-def]
    return next(item for item in profile.controls if item.control.id == control_id)


# --- the shipped example: a clinic tailoring the baseline --------------------------------------

def test_clinic_example_against_hand_computed_result(registry: Registry) -> None:
    from audit.registry import default_registry
    baseline = load_profiles(["kz-mis-baseline"], default_registry())
    clinic = load_profiles([EXAMPLE], default_registry())
    ids = [item.control.id for item in clinic.controls]
    # 41 baseline controls, one disabled, one clinic control added.
    assert len(baseline.controls) == 41 and len(ids) == 41
    assert "patient.access_alerts" not in ids and "clinic.offsite_backup_courier" in ids
    assert [(d.control, d.profile) for d in clinic.disabled] == \
        [("patient.access_alerts", "clinic-tailored")]
    assert "medical director" in clinic.disabled[0].reason
    assert (baseline.threshold, clinic.threshold) == (80, 90)
    policy = control(clinic, "auth.password_policy")
    assert policy.control.severity is Severity.CRITICAL
    ages = {c.spec.id: c.params for c in policy.checks}
    assert ages["host.password_max_age"].max_days == 60      # type: ignore[attr-defined]
    plan = control(clinic, "ir.plan").checks[0].params
    assert plan.max_age_days == 180                           # type: ignore[attr-defined]
    assert plan.document == "incident_response_plan"          # type: ignore[attr-defined]
    assert set(plan.sections) == {"breach", "isolation", "forensics"}  # type: ignore[attr-defined]
    # The baseline itself is unchanged by its child.
    assert control(baseline, "ir.plan").checks[0].params.max_age_days == 365  # type: ignore[attr-defined]
    assert [r.id for r in clinic.records][:2] == ["kz-mis-baseline", "clinic-tailored"]


# --- extends ----------------------------------------------------------------------------------

def test_extends_by_relative_path_and_later_values_win(tmp_path: Path, registry: Registry) -> None:
    write(tmp_path, "base.yaml", """
        id: base
        title: Base
        version: "1"
        threshold: 70
        weights: {low: 3}
        controls:
          - use: ir.plan
            severity: medium
            references: [{text: Internal policy, kind: external}]
        """)
    child = write(tmp_path, "child.yaml", """
        id: child
        title: Child
        version: "2"
        extends: [base.yaml]
        weights: {high: 7}
        tailor:
          ir.plan: {severity: low}
        """)
    profile = load(child, registry)
    assert profile.threshold == 70
    assert profile.weights == {Severity.CRITICAL: 10, Severity.HIGH: 7, Severity.MEDIUM: 2,
                               Severity.LOW: 3}
    assert control(profile, "ir.plan").control.severity is Severity.LOW
    assert profile.version == "2"


def test_extends_a_builtin_by_id(tmp_path: Path, registry: Registry) -> None:
    from audit.registry import default_registry
    child = write(tmp_path, "child.yaml", """
        id: child
        title: Child
        version: "1"
        extends: [hipaa-security]
        disable:
          - {control: org.documentation_retention, reason: kept by the parent company}
        """)
    profile = load_profiles([str(child)], default_registry())
    assert len(profile.controls) == 24   # hipaa-security has 25, one disabled


def test_cyclic_extends_is_an_error_with_file_and_line(tmp_path: Path,
                                                        registry: Registry) -> None:
    write(tmp_path, "a.yaml", 'id: a\ntitle: A\nversion: "1"\nextends: [b.yaml]\n')
    write(tmp_path, "b.yaml", 'id: b\ntitle: B\nversion: "1"\nextends:\n  - a.yaml\n')
    found = problems(tmp_path / "a.yaml", registry)
    assert len(found) == 1
    assert found[0].file.endswith("b.yaml") and found[0].line == 5
    assert "cyclic extends" in found[0].message


def test_missing_extends_is_an_error_with_file_and_line(tmp_path: Path,
                                                         registry: Registry) -> None:
    path = write(tmp_path, "a.yaml", 'id: a\ntitle: A\nversion: "1"\nextends: [no-such-profile]\n')
    (found,) = problems(path, registry)
    assert (found.file, found.line) == (str(path), 4)
    assert "no built-in profile 'no-such-profile'" in found.message


# --- the control library ----------------------------------------------------------------------

def test_use_takes_the_library_and_adds_references(tmp_path: Path, registry: Registry) -> None:
    path = write(tmp_path, "p.yaml", """
        id: p
        title: P
        version: "1"
        controls:
          - use: ir.plan
            severity: high
            references: [{text: Clinic policy IS-01, kind: external}]
            with:
              evidence.document: {max_age_days: 90}
        """)
    item = control(load(path, registry), "ir.plan")
    assert item.control.title["en"].startswith("An incident response plan")
    assert [r.text for r in item.control.references] == ["Clinic policy IS-01"]
    assert item.checks[0].params.max_age_days == 90             # type: ignore[attr-defined]
    assert item.checks[0].params.document == "incident_response_plan"  # type: ignore[attr-defined]


def test_use_may_replace_the_checks(tmp_path: Path, registry: Registry) -> None:
    path = write(tmp_path, "p.yaml", """
        id: p
        title: P
        version: "1"
        controls:
          - use: auth.mfa
            severity: critical
            references: [{text: Policy, kind: external}]
            checks:
              - check: evidence.document
                with: {document: mfa_policy}
        """)
    item = control(load(path, registry), "auth.mfa")
    assert [c.spec.id for c in item.checks] == ["evidence.document"]


@pytest.mark.parametrize(("entry", "line", "message"), [
    ("  - use: no.such_control\n    severity: low\n", 5, "no library control 'no.such_control'"),
    ("  - use: auth.mfa\n", 5, "the profile must"),
    ("  - use: auth.mfa\n    id: auth.mfa\n    severity: low\n", 5, "either 'use'"),
    ("  - id: x.y\n    severity: low\n", 5, "title: required key is missing"),
    ("  - use: ir.plan\n    severity: low\n    with:\n      host.ssh_root_login: {}\n", 8,
     "does not use check 'host.ssh_root_login'"),
    (("  - use: ir.plan\n    severity: low\n    with:\n      evidence.document:\n"
     "        max_age_days: -1\n"), 9, "greater than or equal to 1"),
    ("  - use: ir.plan\n    severity: low\n  - use: ir.plan\n    severity: high\n", 7,
     "listed twice"),
    ("  - use: ir.plan\n    severity: low\n    references: [{text: An act, kind: law}]\n", 7,
     "needs a source"),
    ("  - id: x.y\n    title: X\n    severity: low\n    checks:\n      - check: no.such\n", 9,
     "unknown check id 'no.such'"),
    (("  - id: x.y\n    title: X\n    severity: low\n    checks:\n      - check: evidence.document\n"
     "        with: {document: d, colour: red}\n"), 10, "colour: unknown key"),
])
def test_control_errors_name_the_line(tmp_path: Path, registry: Registry, entry: str,
                                      line: int, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(f'id: p\ntitle: P\n{HEADER}controls:\n{entry}', encoding="utf-8")
    found = problems(path, registry)
    assert any(p.file == str(path) and p.line == line and message in p.message
               for p in found), [str(p) for p in found]


# --- tailoring --------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "line", "message"), [
    ("disable:\n  - {control: no.such, reason: x}\n", 6, "disable: no inherited control"),
    ("disable:\n  - {control: ir.plan}\n", 6, "reason"),
    ("tailor:\n  no.such: {severity: low}\n", 6, "tailor: no inherited control"),
    ("tailor:\n  ir.plan:\n    with:\n      evidence.document: {max_age_days: zero}\n", 8,
     "valid integer"),
    ("tailor:\n  ir.plan:\n    with:\n      host.ssh_root_login: {}\n", 8,
     "does not use check"),
])
def test_tailoring_errors_name_the_line(tmp_path: Path, registry: Registry, body: str,
                                        line: int, message: str) -> None:
    write(tmp_path, "base.yaml", 'id: base\ntitle: B\nversion: "1"\ncontrols:\n'
                                 '  - {use: ir.plan, severity: high}\n')
    path = tmp_path / "child.yaml"
    path.write_text(f'id: child\ntitle: C\nextends: [base.yaml]\n{HEADER}{body}',
                    encoding="utf-8")
    found = problems(path, registry)
    assert any(p.file == str(path) and p.line == line and message in p.message
               for p in found), [str(p) for p in found]


def test_tailored_parameters_layer_per_parameter(tmp_path: Path, registry: Registry) -> None:
    write(tmp_path, "a.yaml", """
        id: a
        title: A
        version: "1"
        controls:
          - use: ir.plan
            severity: high
            with:
              evidence.document: {max_age_days: 200}
        """)
    write(tmp_path, "b.yaml", """
        id: b
        title: B
        version: "1"
        extends: [a.yaml]
        tailor:
          ir.plan:
            with:
              evidence.document: {sections: [isolation]}
        """)
    params = control(load(tmp_path / "b.yaml", registry), "ir.plan").checks[0].params
    assert params.max_age_days == 200                       # type: ignore[attr-defined]
    assert params.sections == {"isolation": ["isolation"]}  # type: ignore[attr-defined]


def test_combining_profiles_later_ones_override(registry: Registry) -> None:
    from audit.registry import default_registry
    combined = load_profiles(["kz-mis-baseline", "gdpr-health"], default_registry())
    assert combined.id == "kz-mis-baseline+gdpr-health"
    ids = {item.control.id for item in combined.controls}
    assert {"data.dpia", "patient.access_alerts"} <= ids
    assert control(combined, "auth.mfa").control.severity is Severity.HIGH   # GDPR's
