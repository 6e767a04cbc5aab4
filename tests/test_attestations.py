"""Attestations: an assessor's verdicts turn named manual results into attested pass or fail,
never an automated result; expired ones leave the result manual and say so; the score and the
verdict move exactly as computed by hand. Partial controls stay manual until attested."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest
from runs import run_audit
from typer.testing import CliRunner

from audit.attestations import apply_attestations, partial_results
from audit.cli import app
from audit.errors import InputError
from audit.inventory import load_attestations
from audit.model.attestation import AttestationRecord, AttestedStatus
from audit.model.profile import CheckRef, Control
from audit.model.results import Result, RunResults
from audit.profiles import ResolvedControl, ResolvedProfile, control_library
from audit.scoring import score
from audit.vocabulary import DEFAULT_WEIGHTS, Lang, Severity, Status, Verdict

TODAY = date(2026, 6, 1)

# Weights: critical 10, high 5, medium 2. M* have no checks (manual on `organisation`);
# E1 names a document that is on file (an automated pass), E2 one that is not (manual).
PROFILE = """id: p
title: P
version: "1"
threshold: 80
controls:
  - {id: M1, title: Backups are tested, severity: critical}
  - {id: M2, title: Staff are trained, severity: high}
  - {id: M3, title: Visitors are logged, severity: medium}
  - id: E1
    title: A policy is on file
    severity: high
    checks: [{check: evidence.document, with: {document: policy}}]
  - id: E2
    title: A plan is on file
    severity: medium
    checks: [{check: evidence.document, with: {document: plan}}]
"""
INVENTORY = "organisation: Clinic\nevidence:\n  policy: {file: policy.txt, date: 2026-05-01}\n"


def attestation(control: str, status: str, *, expires: str = "2026-12-31",
                evidence: str = "") -> str:
    return (f"  - {{control: {control}, status: {status}, explanation: reviewed on site, "
            f"attested_by: A. Assessor, date: 2026-01-10, expires: {expires}{evidence}}}\n")


def run(tmp_path: Path, attestations: str | None) -> RunResults:
    (tmp_path / "policy.txt").write_text("the policy", encoding="utf-8")
    (tmp_path / "minutes.txt").write_text("backup restore test minutes", encoding="utf-8")
    path = None
    if attestations is not None:
        path = tmp_path / "attestations.yaml"
        path.write_text("attestations:\n" + attestations, encoding="utf-8")
    return run_audit(tmp_path, PROFILE, INVENTORY, today=TODAY, attestations=path)


def by_control(results: RunResults) -> dict[str, Result]:
    return {result.control: result for result in results.results}


def test_without_attestations_the_manual_controls_hold_the_score_down(tmp_path: Path) -> None:
    results = run(tmp_path, None)
    assert {c: r.status for c, r in by_control(results).items()} == {
        "M1": Status.MANUAL, "M2": Status.MANUAL, "M3": Status.MANUAL, "E1": Status.PASS,
        "E2": Status.MANUAL}
    assert results.score == round(100 * 5 / 24, 2)     # only E1 (high, 5) of 24 earned
    assert results.verdict is Verdict.NOT_READY


def test_attested_results_turn_pass_or_fail_and_automated_ones_stay(tmp_path: Path) -> None:
    results = run(tmp_path, attestation("M1", "pass", evidence=", evidence: minutes.txt")
                  + attestation("M2", "fail") + attestation("M3", "pass", expires="2026-05-31")
                  + attestation("E1", "fail") + attestation("E2", "pass"))
    found = by_control(results)
    assert {c: r.status for c, r in found.items()} == {
        "M1": Status.PASS, "M2": Status.FAIL, "M3": Status.MANUAL, "E1": Status.PASS,
        "E2": Status.PASS}
    m1 = found["M1"].attestation
    assert m1 is not None and not m1.expired and m1.attested_by == "A. Assessor"
    assert m1.evidence is not None and m1.evidence.sha256 == hashlib.sha256(
        b"backup restore test minutes").hexdigest()
    assert found["M1"].summary.startswith("attested pass by A. Assessor")
    expired = found["M3"].attestation
    assert expired is not None and expired.expired and "expired on 2026-05-31" in \
        found["M3"].summary
    assert found["E1"].attestation is None        # the document check decided: not overridden
    assert [a.control for a in results.attestations.applied] == ["M1", "M2", "E2"]
    assert [a.control for a in results.attestations.expired] == ["M3"]
    assert [a.control for a in results.attestations.unmatched] == ["E1"]
    assert any("E1" in w and "matched no manual result" in w for w in results.warnings)
    # earned: M1 10 + E1 5 + E2 2 of 24; M2 failed, M3 still manual.
    assert results.score == round(100 * 17 / 24, 2)
    assert [b.control for b in results.blockers] == [None]      # only the threshold now
    assert results.verdict is Verdict.NOT_READY


def test_attesting_every_open_control_makes_the_run_ready(tmp_path: Path) -> None:
    results = run(tmp_path, attestation("M1", "pass") + attestation("M2", "pass")
                  + attestation("E2", "pass"))
    # earned 22 of 24 (M3, medium, still manual: not a blocker) = 91.67 >= 80
    assert results.score == round(100 * 22 / 24, 2)
    assert results.blockers == [] and results.verdict is Verdict.READY


def test_a_frequency_gives_the_validity(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("- {control: M1, status: pass, explanation: e, attested_by: b, "
                    "date: 2026-01-10, frequency: quarterly}\n", encoding="utf-8")
    loaded = load_attestations(path, TODAY)
    assert loaded.active == [] and loaded.expired[0].valid_until == date(2026, 4, 12)


@pytest.mark.parametrize(("text", "line", "message"), [
    (("- {control: M1, status: maybe, explanation: e, attested_by: b, date: 2026-01-10, "
     "expires: 2026-12-31}\n"), 1, "status"),
    ("- control: M1\n  status: pass\n  explanation: e\n  attested_by: b\n  date: 2026-01-10\n",
     1, "exactly one of expires or frequency"),
    (("- control: M1\n  status: pass\n  explanation: e\n  attested_by: b\n  date: 2026-01-10\n"
     "  expires: 2026-12-31\n  evidence: missing.pdf\n"), 7, "not a readable file"),
])
def test_bad_attestations_name_the_line(tmp_path: Path, text: str, line: int,
                                        message: str) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_attestations(path, TODAY)
    assert any(p.line == line and message in p.message for p in caught.value.problems), \
        [str(p) for p in caught.value.problems]


def test_validate_recognises_an_attestations_file(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("attestations:\n" + attestation("M1", "pass", expires="2099-01-01"),
                    encoding="utf-8")
    outcome = CliRunner().invoke(app, ["validate", str(path)])
    assert outcome.exit_code == 0 and "(attestations)" in outcome.output, outcome.output


# --- partial controls -------------------------------------------------------------------------

def partial_profile() -> ResolvedProfile:
    control = Control(id="P1", title={"en": "IDS and central logs"}, severity=Severity.HIGH,
                      checks=[CheckRef(check="hostsys.time_sync")],
                      partial={"en": "no IDS and no log shipping is looked at"})
    return ResolvedProfile(id="p", title={"en": "P"}, version="1", threshold=80,
                           weights=dict(DEFAULT_WEIGHTS), controls=[ResolvedControl(control, [])],
                           records=[])


def automated(status: Status) -> Result:
    return Result(control="P1", check="hostsys.time_sync", target="h1", status=status,
                  summary="clock")


def attested(status: AttestedStatus, until: date = date(2026, 12, 31)) -> AttestationRecord:
    return AttestationRecord(control="P1", target="*", status=status, explanation="Wazuh seen",
                             attested_by="CISO", date=date(2026, 1, 1), valid_until=until)


@pytest.mark.parametrize(("checks", "attestations", "control"), [
    (Status.PASS, [], Status.MANUAL),                       # the checks alone never pass it
    (Status.PASS, [attested(AttestedStatus.PASS)], Status.PASS),        # both: pass
    (Status.FAIL, [attested(AttestedStatus.PASS)], Status.FAIL),        # the checks still fail
    (Status.PASS, [attested(AttestedStatus.FAIL)], Status.FAIL),
])
def test_a_partial_control_passes_only_when_checks_and_attestation_do(
        checks: Status, attestations: list[AttestationRecord], control: Status) -> None:
    profile = partial_profile()
    rows = partial_results(profile)
    assert [(r.check, r.target, r.status) for r in rows] == [
        ("manual", "organisation", Status.MANUAL)]
    assert "hostsys.time_sync" in rows[0].summary and "no IDS" in rows[0].summary
    decided, _ = apply_attestations([automated(checks), *rows], attestations, [])
    assert decided[0].status is checks                      # automated result kept as it was
    card = score(profile, decided)
    assert card.controls[0].status is control
    assert card.controls[0].partial == {"en": "no IDS and no log shipping is looked at"}


def test_the_library_marks_the_controls_its_checks_only_partly_cover() -> None:
    partial = {cid for cid, entry in control_library().controls.items()
               if entry.control.partial}
    assert "audit.ids" in partial


# --- how attested results and the plan are shown ----------------------------------------------

def test_every_format_marks_the_attested_results_and_plan_lists_the_failures(
        tmp_path: Path) -> None:
    from audit.commands.plan import plan_csv, plan_text
    from reports import RENDERERS
    from reports.register import findings_register, remediation_plan

    results = run(tmp_path, attestation("M1", "pass") + attestation("M2", "fail"))
    for name in ("html", "csv", "sarif", "junit"):
        rendered = str(RENDERERS[name].render(results, Lang.EN))
        assert "attested pass by A. Assessor on 2026-01-10" in rendered, name
    assert [(r.control, r.target) for r in findings_register(results)] == [("M2", "organisation")]
    steps = remediation_plan(results)
    assert [(s.control.id, s.gain, s.lifts_blocker) for s in steps] == [
        ("M2", round(100 * 5 / 24, 2), False)]
    text = plan_text(results, steps)
    assert "M2: Staff are trained" in text and max(map(len, text.splitlines())) <= 80
    assert plan_csv(steps).splitlines()[1].startswith("1,M2,Staff are trained,high,fail,20.83")
