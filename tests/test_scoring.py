"""Score, verdict, blockers and waivers against hand-computed figures (DESIGN.md)."""

from __future__ import annotations

from datetime import date

from audit.model.profile import Control
from audit.model.results import Result
from audit.model.waiver import Waiver
from audit.profiles import ResolvedControl, ResolvedProfile
from audit.scoring import apply_waivers, control_status, score
from audit.vocabulary import DEFAULT_WEIGHTS, Severity, Status, Verdict

S = Status


def make_profile(severities: dict[str, Severity], threshold: float = 80.0,
                 weights: dict[Severity, int] | None = None) -> ResolvedProfile:
    controls = [ResolvedControl(Control(id=cid, title=cid, severity=sev), [])  # type: ignore[arg-type]
                for cid, sev in severities.items()]
    return ResolvedProfile(id="p", title={"en": "p"}, version="1", threshold=threshold,  # type: ignore[dict-item]
                           weights={**DEFAULT_WEIGHTS, **(weights or {})}, controls=controls,
                           records=[])


def result(control: str, target: str, status: Status) -> Result:
    return Result(control=control, check="x.y", target=target, status=status, summary="s")


def test_control_status_is_the_worst_across_targets() -> None:
    assert control_status([S.PASS, S.FAIL, S.ERROR]) is S.FAIL
    assert control_status([S.PASS, S.MANUAL, S.ERROR]) is S.ERROR
    assert control_status([S.PASS, S.MANUAL]) is S.MANUAL
    assert control_status([S.PASS, S.WAIVED]) is S.WAIVED
    assert control_status([S.NOT_APPLICABLE, S.PASS]) is S.PASS
    assert control_status([S.NOT_APPLICABLE]) is S.NOT_APPLICABLE
    assert control_status([]) is S.NOT_APPLICABLE


def test_weights_error_and_manual_earn_nothing_na_is_ignored() -> None:
    profile = make_profile({"crit": Severity.CRITICAL, "high": Severity.HIGH,
                            "med": Severity.MEDIUM, "low": Severity.LOW,
                            "high2": Severity.HIGH, "na": Severity.MEDIUM})
    results = [result("crit", "a", S.PASS), result("crit", "b", S.PASS),
               result("high", "a", S.PASS), result("high", "b", S.FAIL),
               result("med", "a", S.ERROR),
               result("low", "organisation", S.MANUAL),
               result("high2", "a", S.PASS),
               result("na", "a", S.NOT_APPLICABLE)]
    card = score(profile, results)
    # applicable: 10 + 5 + 2 + 1 + 5 = 23; earned: crit 10 + high2 5 = 15
    assert card.score == 65.22
    assert card.verdict is Verdict.NOT_READY
    assert [b.summary for b in card.blockers] == ["score 65.22 is below the threshold 80"]
    statuses = {c.id: c.status for c in card.controls}
    assert statuses == {"crit": S.PASS, "high": S.FAIL, "med": S.ERROR, "low": S.MANUAL,
                        "high2": S.PASS, "na": S.NOT_APPLICABLE}
    assert next(c for c in card.controls if c.id == "high").targets == {"a": S.PASS, "b": S.FAIL}


def test_a_failed_critical_control_blocks_ready_despite_the_score() -> None:
    profile = make_profile({"crit": Severity.CRITICAL, **{f"h{i}": Severity.HIGH for i in range(10)}},
                           threshold=50)
    results = [result("crit", "a", S.FAIL)] + [result(f"h{i}", "a", S.PASS) for i in range(10)]
    card = score(profile, results)
    assert card.score == 83.33          # 50 / 60
    assert card.verdict is Verdict.NOT_READY
    assert [(b.control, b.status) for b in card.blockers] == [("crit", S.FAIL)]


def test_critical_error_or_manual_also_blocks() -> None:
    profile = make_profile({"c1": Severity.CRITICAL, "c2": Severity.CRITICAL,
                            "l": Severity.LOW}, threshold=0)
    card = score(profile, [result("c1", "a", S.ERROR), result("c2", "o", S.MANUAL),
                           result("l", "a", S.PASS)])
    assert card.verdict is Verdict.NOT_READY
    assert {(b.control, b.status) for b in card.blockers} == {("c1", S.ERROR), ("c2", S.MANUAL)}


def test_all_passing_is_ready_with_100() -> None:
    profile = make_profile({"c": Severity.CRITICAL, "l": Severity.LOW})
    card = score(profile, [result("c", "a", S.PASS), result("l", "a", S.PASS)])
    assert (card.score, card.verdict, card.blockers) == (100.0, Verdict.READY, [])


def test_custom_weights_change_the_score() -> None:
    profile = make_profile({"c": Severity.CRITICAL, "l": Severity.LOW}, threshold=0,
                           weights={Severity.CRITICAL: 3, Severity.LOW: 1})
    card = score(profile, [result("c", "a", S.PASS), result("l", "a", S.FAIL)])
    assert card.score == 75.0


def test_nothing_applicable_scores_zero_and_is_not_ready() -> None:
    profile = make_profile({"c": Severity.HIGH})
    card = score(profile, [result("c", "a", S.NOT_APPLICABLE)])
    assert (card.score, card.verdict) == (0.0, Verdict.NOT_READY)


def test_waived_failure_counts_as_passed_and_stays_visible() -> None:
    profile = make_profile({"c": Severity.CRITICAL, "h": Severity.HIGH})
    waiver = Waiver(control="c", target="app-*", reason="legacy", approved_by="CISO",
                    expires=date(2099, 1, 1))
    unused = Waiver(control="h", target="nothing-*", reason="r", approved_by="CISO",
                    expires=date(2099, 1, 1))
    expired = Waiver(control="h", target="*", reason="old", approved_by="CISO",
                     expires=date(2020, 1, 1))
    results = [result("c", "app-1", S.FAIL), result("c", "app-2", S.PASS),
               result("c", "db-1", S.PASS), result("h", "app-1", S.FAIL)]
    waived, record = apply_waivers(results, [waiver, unused], [expired])
    assert [r.status for r in waived] == [S.WAIVED, S.PASS, S.PASS, S.FAIL]
    assert waived[0].waiver is not None and waived[0].waiver.approved_by == "CISO"
    assert (record.applied, record.unmatched, record.expired) == ([waiver], [unused], [expired])
    card = score(profile, waived)
    control = next(c for c in card.controls if c.id == "c")
    assert control.status is S.WAIVED and control.earned
    assert card.score == round(100 * 10 / 15, 2)
    assert [b.control for b in card.blockers] == [None]   # only the threshold, not the waived critical


def test_a_waiver_never_hides_an_error() -> None:
    waiver = Waiver(control="c", reason="r", approved_by="me", expires=date(2099, 1, 1))
    waived, record = apply_waivers([result("c", "a", S.ERROR)], [waiver], [])
    assert waived[0].status is S.ERROR and record.unmatched == [waiver]
