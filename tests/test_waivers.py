"""Waivers against hand-computed results: expired ones ignored and reported, unmatched ones
reported, target patterns, waived results shown as waived and scored as passed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from runs import run_audit

from audit.errors import InputError
from audit.inventory import load_waivers
from audit.model.profile import Control
from audit.model.results import Result
from audit.model.waiver import RiskRating, Waiver
from audit.profiles import ResolvedControl, ResolvedProfile
from audit.scoring import apply_waivers, score
from audit.vocabulary import DEFAULT_WEIGHTS, Severity, Status, Verdict

TODAY = date(2026, 6, 1)


def result(control: str, target: str, status: Status) -> Result:
    return Result(control=control, check="x.check", target=target, status=status, summary="s")


def waiver(control: str, target: str = "*", expires: date = date(2026, 12, 31),
           risk: RiskRating | None = None) -> Waiver:
    return Waiver(control=control, target=target, reason="accepted", approved_by="CISO",
                  expires=expires, risk=risk)


def profile(severities: dict[str, Severity]) -> ResolvedProfile:
    controls = [ResolvedControl(Control(id=cid, title={"en": cid}, severity=sev), [])
                for cid, sev in severities.items()]
    return ResolvedProfile(id="p", title={"en": "P"}, version="1", threshold=80,
                           weights=dict(DEFAULT_WEIGHTS), controls=controls, records=[])


def test_hand_computed_run() -> None:
    results = [result("A", "web1", Status.FAIL), result("A", "web2", Status.FAIL),
               result("B", "db1", Status.FAIL), result("C", "organisation", Status.PASS),
               result("D", "host1", Status.FAIL)]
    web, app_only, unknown, host = (waiver("A", "web*", risk=RiskRating.MEDIUM),
                                    waiver("B", "app*"), waiver("Z"), waiver("D", "host1"))
    expired = waiver("B", "*", expires=date(2026, 5, 31))
    waived, record = apply_waivers(results, [web, app_only, unknown, host], [expired])

    assert [r.status for r in waived] == [Status.WAIVED, Status.WAIVED, Status.FAIL,
                                          Status.PASS, Status.WAIVED]
    assert waived[0].waiver is not None and waived[0].waiver.target_pattern == "web*"
    assert waived[0].waiver.risk == "medium" and waived[0].waiver.approved_by == "CISO"
    assert waived[2].waiver is None           # the expired waiver is ignored
    assert record.applied == [web, host]
    assert record.unmatched == [app_only, unknown]
    assert record.expired == [expired]

    card = score(profile({"A": Severity.CRITICAL, "B": Severity.HIGH, "C": Severity.MEDIUM,
                          "D": Severity.LOW}), waived)
    statuses = {o.id: (o.status, o.earned) for o in card.controls}
    assert statuses == {"A": (Status.WAIVED, True), "B": (Status.FAIL, False),
                        "C": (Status.PASS, True), "D": (Status.WAIVED, True)}
    assert card.score == round(100 * (10 + 2 + 1) / (10 + 5 + 2 + 1), 2) == 72.22
    assert card.verdict is Verdict.NOT_READY
    assert [b.control for b in card.blockers] == [None]    # only the threshold: A is waived


def test_only_failures_are_waived() -> None:
    results = [result("A", "h", status) for status in
               (Status.ERROR, Status.MANUAL, Status.PASS, Status.NOT_APPLICABLE)]
    waived, record = apply_waivers(results, [waiver("A")], [])
    assert waived == results
    assert record.applied == [] and len(record.unmatched) == 1


@pytest.mark.parametrize(("pattern", "target", "matches"), [
    ("*", "anything", True),
    ("web*", "web-01", True),
    ("web?", "web1", True),
    ("web?", "web12", False),
    ("db[12]", "db2", True),
    ("db[12]", "db3", False),
    ("web*", "WEB1", False),          # target names are case-sensitive
    ("web1", "web1", True),
    ("web1", "web10", False),
])
def test_target_patterns(pattern: str, target: str, matches: bool) -> None:
    waived, _ = apply_waivers([result("A", target, Status.FAIL)], [waiver("A", pattern)], [])
    assert (waived[0].status is Status.WAIVED) is matches


def test_a_waiver_covers_only_its_control() -> None:
    waived, record = apply_waivers([result("A", "h", Status.FAIL)], [waiver("B")], [])
    assert waived[0].status is Status.FAIL and record.unmatched == [waiver("B")]


def test_the_first_matching_waiver_is_used_and_the_other_reported() -> None:
    first, second = waiver("A", "h*"), waiver("A", "*")
    waived, record = apply_waivers([result("A", "h1", Status.FAIL)], [first, second], [])
    assert waived[0].waiver is not None and waived[0].waiver.target_pattern == "h*"
    assert record.applied == [first] and record.unmatched == [second]


def test_a_waived_critical_failure_does_not_block() -> None:
    waived, _ = apply_waivers([result("A", "h", Status.FAIL)], [waiver("A")], [])
    card = score(profile({"A": Severity.CRITICAL}), waived)
    assert (card.score, card.verdict, card.blockers) == (100.0, Verdict.READY, [])


# --- the waivers file -------------------------------------------------------------------------

WAIVERS = """\
- control: auth.mfa
  target: "app-host*"
  reason: OTP rollout scheduled for March
  approved_by: Chief physician
  expires: 2026-12-31
  risk: high
- control: ir.plan
  reason: Plan under revision
  approved_by: CISO
  expires: 2026-05-31
"""


def test_loading_sorts_expired_from_active(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(WAIVERS, encoding="utf-8")
    loaded = load_waivers(path, TODAY)
    assert [w.control for w in loaded.active] == ["auth.mfa"]
    assert [w.control for w in loaded.expired] == ["ir.plan"]
    assert loaded.active[0].target == "app-host*" and loaded.active[0].risk is RiskRating.HIGH
    assert loaded.expired[0].target == "*"            # default: every target


def test_a_waiver_expiring_today_still_applies(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(WAIVERS, encoding="utf-8")
    assert len(load_waivers(path, date(2026, 5, 31)).active) == 2


def test_mapping_form_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text("waivers:\n" + "".join(f"  {line}\n" for line in WAIVERS.splitlines()),
                    encoding="utf-8")
    assert len(load_waivers(path, TODAY).active) == 1


def test_validate_treats_an_expired_waiver_as_an_error_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(WAIVERS, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_waivers(path, TODAY, expired_is_error=True)
    (problem,) = caught.value.problems
    assert problem.line == 7 and "expired on 2026-05-31" in problem.message


@pytest.mark.parametrize(("text", "line", "message"), [
    ("- control: a\n  reason: r\n  approved_by: b\n  expires: someday\n", 4, "expires"),
    ("- control: a\n  reason: r\n  approved_by: b\n  expires: 2026-01-01\n  risk: extreme\n", 5,
     "risk"),
    ("- control: a\n  reason: r\n  expires: 2026-01-01\n", 1, "approved_by"),
    ("- control: a\n  reason: ''\n  approved_by: b\n  expires: 2026-01-01\n", 2, "reason"),
])
def test_bad_waivers_name_the_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_waivers(path, TODAY)
    assert any(p.line == line and message in p.message for p in caught.value.problems), \
        [str(p) for p in caught.value.problems]


def test_a_run_shows_waived_results_and_reports_every_waiver(tmp_path: Path) -> None:
    """End to end: an old evidence document fails, a waiver turns it into `waived`, an
    expired and an unmatched waiver are both reported in the record."""

    (tmp_path / "irp.txt").write_text("isolation, forensics, breach", encoding="utf-8")
    results = run_audit(
        tmp_path,
        'id: p\ntitle: P\nversion: "1"\ncontrols:\n'
        "  - {use: ir.plan, severity: high}\n  - {use: staff.training, severity: low}\n",
        "organisation: Clinic\nevidence:\n"
        "  incident_response_plan: {file: irp.txt, date: 2024-01-01}\n",
        "- {control: ir.plan, target: organisation, reason: r, approved_by: a, "
        "expires: 2026-12-31}\n"
        "- {control: staff.training, reason: r, approved_by: a, expires: 2026-01-01}\n"
        "- {control: auth.mfa, reason: r, approved_by: a, expires: 2026-12-31}\n",
        today=TODAY)
    by_control = {r.control: r for r in results.results}
    assert by_control["ir.plan"].status is Status.WAIVED
    assert "days old" in by_control["ir.plan"].summary       # the failure stays visible
    assert by_control["staff.training"].status is Status.MANUAL   # no document: never pass
    assert [w.control for w in results.waivers.applied] == ["ir.plan"]
    assert [w.control for w in results.waivers.expired] == ["staff.training"]
    assert [w.control for w in results.waivers.unmatched] == ["auth.mfa"]
    assert results.score == round(100 * 5 / 6, 2)
