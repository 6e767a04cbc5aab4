"""The engine: concurrency, timeouts, crashes and facts gathered once, through real runs."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest
from engine_checks import PROBE_CALLS, registry_with_test_checks
from runs import run_audit

from audit.engine import run_plan
from audit.errors import FactUnavailable, Unavailable
from audit.facts.context import Environment, ProbeError, TargetContext
from audit.model.inventory import Scope, Target
from audit.model.results import RunResults
from audit.plan import INTERLEAVED_TARGETS, build_plan
from audit.run import RunRequest, execute, prepare
from audit.vocabulary import Reason, Role, Status

PROFILE = """
id: engine-test
title: Engine test
version: "1"
threshold: 50
controls:
  - id: t.ok
    title: ok
    severity: low
    checks: [{check: testing.ok_one}, {check: testing.ok_two}]
  - id: t.raises
    title: raises
    severity: high
    checks: [{check: testing.raises}]
  - id: t.hangs
    title: hangs
    severity: high
    checks: [{check: testing.hangs}]
  - id: t.unsupported
    title: cannot tell
    severity: medium
    checks: [{check: testing.unsupported}]
  - id: t.unreachable
    title: unreachable
    severity: medium
    checks: [{check: testing.unreachable}]
  - id: t.manual
    title: decided by an assessor
    severity: low
"""

INVENTORY = """
organisation: Engine clinic
targets:
  - {name: alpha, roles: [host], transport: local}
  - {name: beta, roles: [host], transport: local}
  - {name: gamma, roles: [host], transport: local}
"""


def run_engine_profile(tmp_path: Path, timeout: float) -> tuple[RunResults, float]:
    registry = registry_with_test_checks()
    started = time.monotonic()
    results = run_audit(tmp_path, PROFILE, INVENTORY, registry=registry, jobs=4, timeout=timeout)
    return results, time.monotonic() - started


@pytest.fixture(scope="module")
def engine_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResults, float]:
    PROBE_CALLS.clear()
    return run_engine_profile(tmp_path_factory.mktemp("engine"), timeout=0.5)


def by(results: RunResults, check: str) -> list[Status]:
    return [r.status for r in results.results if r.check == check]


def test_every_planned_pair_gets_exactly_one_result(engine_run: tuple[RunResults, float]) -> None:
    results, _ = engine_run
    # 6 host checks x 3 targets + 1 manual control on the organisation
    assert len(results.results) == 6 * 3 + 1
    keys = {(r.control, r.check, r.target) for r in results.results}
    assert len(keys) == len(results.results)
    assert results.complete


def test_a_raising_check_is_an_error_with_its_reason(engine_run: tuple[RunResults, float]) -> None:
    results, _ = engine_run
    errors = [r for r in results.results if r.check == "testing.raises"]
    assert [r.status for r in errors] == [Status.ERROR] * 3
    assert all(r.error and r.error.type == "check_failed" for r in errors)
    assert all(r.error and "division by zero in a check" in r.error.message for r in errors)


def test_a_hanging_check_is_an_error_within_the_timeout(engine_run: tuple[RunResults, float]) -> None:
    results, elapsed = engine_run
    hung = [r for r in results.results if r.check == "testing.hangs"]
    assert [r.status for r in hung] == [Status.ERROR] * 3
    assert all(r.error and r.error.type == "timeout" for r in hung)
    assert all(r.duration_ms < 2000 for r in hung)
    assert elapsed < 10, "the run completes although three checks never return"


def test_unobservable_facts_are_not_applicable_and_unreachable_is_error(
        engine_run: tuple[RunResults, float]) -> None:
    results, _ = engine_run
    assert by(results, "testing.unsupported") == [Status.NOT_APPLICABLE] * 3
    assert by(results, "testing.unreachable") == [Status.ERROR] * 3
    assert all(r.error and r.error.type == "unreachable" for r in results.results
               if r.check == "testing.unreachable")


def test_facts_are_gathered_once_per_target(engine_run: tuple[RunResults, float]) -> None:
    # three checks share `counted_probe`: one call per target, not three
    assert dict(PROBE_CALLS) == {"alpha": 1, "beta": 1, "gamma": 1}


def test_control_without_checks_is_manual_and_earns_nothing(
        engine_run: tuple[RunResults, float]) -> None:
    results, _ = engine_run
    manual = next(c for c in results.controls if c.id == "t.manual")
    assert manual.status is Status.MANUAL and not manual.earned
    assert by(results, "manual") == [Status.MANUAL]


def test_engine_scores_the_run(engine_run: tuple[RunResults, float]) -> None:
    results, _ = engine_run
    statuses = {c.id: c.status for c in results.controls}
    assert statuses == {"t.ok": Status.PASS, "t.raises": Status.ERROR, "t.hangs": Status.ERROR,
                        "t.unsupported": Status.NOT_APPLICABLE, "t.unreachable": Status.ERROR,
                        "t.manual": Status.MANUAL}
    # applicable weights: low 1 + high 5 + high 5 + medium 2 + low 1 = 14; earned: 1
    assert results.score == round(100 * 1 / 14, 2)


def test_a_check_may_have_its_own_timeout(tmp_path: Path) -> None:
    (tmp_path / "profile.yaml").write_text("""
id: budgets
title: Budgets
version: "1"
controls:
  - id: t.short
    title: hangs, but only briefly allowed to
    severity: high
    checks: [{check: testing.hangs, timeout: 0.3}]
  - id: t.long
    title: a long scan
    severity: high
    checks: [{check: testing.budget, timeout: 600}]
  - id: t.default
    title: the run's timeout
    severity: low
    checks: [{check: testing.ok_one}]
""")
    (tmp_path / "inventory.yaml").write_text(
        "organisation: Budget clinic\ntargets:\n  - {name: a, roles: [host], transport: local}\n")
    request = RunRequest(profiles=[str(tmp_path / "profile.yaml")],
                         inventory=tmp_path / "inventory.yaml", timeout=20)
    started = time.monotonic()
    results = execute(prepare(request, registry=registry_with_test_checks()))
    assert time.monotonic() - started < 5, "the hung check used its own 0.3 s, not the run's 20 s"
    by_check = {r.check: r for r in results.results}
    assert by_check["testing.hangs"].error is not None
    assert by_check["testing.hangs"].error.message == "the check did not finish within 0.3 s"
    assert by_check["testing.budget"].evidence.observed == 600     # probes see their own budget


def test_a_failed_fact_is_cached_as_a_value_and_raised_anew_for_each_check() -> None:
    calls: list[str] = []

    def unreachable(context: TargetContext) -> str:
        calls.append("probe")
        raise FactUnavailable(Reason.UNREACHABLE, "no route")

    def broken(context: TargetContext) -> str:
        raise ValueError("a bug in a probe")

    context = TargetContext(Target(name="t", roles=[Role.HOST], transport="local"),
                            Environment(base_dir=Path("/"), today=date(2026, 1, 1), scope=Scope()))
    raised = []
    for _ in range(2):
        with pytest.raises(FactUnavailable) as caught:
            context.gather(unreachable)
        raised.append(caught.value)
    assert calls == ["probe"], "gathered once"
    assert raised[0] is not raised[1], "no exception object is shared between callers"
    assert raised[0].unavailable == raised[1].unavailable == Unavailable(Reason.UNREACHABLE,
                                                                         "no route")
    with pytest.raises(ProbeError) as crashed:
        context.gather(broken)
    assert crashed.value.crash.kind == "ValueError" and "a bug" in crashed.value.crash.message
    assert "Traceback" in crashed.value.crash.trace


def test_a_run_holds_the_facts_of_the_targets_in_progress_not_of_all(tmp_path: Path) -> None:
    """Targets are interleaved a window at a time, and a target's facts are let go once its
    last check is done: memory stays flat however many targets the inventory lists."""
    count = INTERLEAVED_TARGETS * 2 + 2
    (tmp_path / "profile.yaml").write_text(
        "id: many\ntitle: Many\nversion: '1'\ncontrols:\n  - {id: t.ok, title: ok, severity: "
        "low, checks: [{check: testing.ok_one}, {check: testing.ok_two}]}\n")
    (tmp_path / "inventory.yaml").write_text("organisation: Many clinic\ntargets:\n" + "".join(
        f"  - {{name: t{n}, roles: [host], transport: local}}\n" for n in range(count)))
    prepared = prepare(RunRequest(profiles=[str(tmp_path / "profile.yaml")],
                                  inventory=tmp_path / "inventory.yaml"),
                       registry=registry_with_test_checks())
    targets = prepared.inventory.inventory.targets
    plan = build_plan(prepared.profile, targets)
    window = {f"t{n}" for n in range(INTERLEAVED_TARGETS)}
    assert {item.target for item in plan[:2 * INTERLEAVED_TARGETS]} == window
    environment = Environment(base_dir=tmp_path, today=date(2026, 1, 1), scope=Scope())
    contexts = {target.name: TargetContext(target, environment) for target in targets}
    holding: list[int] = []

    class Watching:
        def started(self, total: int) -> None:
            assert total == 2 * count

        def finished(self, result: object) -> None:
            holding.append(sum(bool(context._shared.slots) for context in contexts.values()))

    PROBE_CALLS.clear()
    jobs = 4
    outcome = run_plan(plan, contexts, jobs, 5, Watching())
    assert all(result.status is Status.PASS for result in outcome.results)
    assert set(PROBE_CALLS.values()) == {1}, "a target's checks still share its facts"
    assert max(holding) <= INTERLEAVED_TARGETS + jobs < count
    assert all(context._shared.closed and not context._shared.slots
               for context in contexts.values())


def test_a_target_let_go_opens_no_transport_again(tmp_path: Path) -> None:
    """A check still running past its time, after its target is done with, fails: it does
    not open a connection that nothing would close."""
    from audit.transports.filesystem import LocalTransport
    opened: list[LocalTransport] = []

    def factory(target: Target, environment: Environment) -> LocalTransport:
        opened.append(LocalTransport())
        return opened[-1]

    context = TargetContext(Target(name="t", roles=[Role.HOST], transport="local"),
                            Environment(base_dir=tmp_path, today=date(2026, 1, 1),
                                        scope=Scope()), factory)
    assert context.transport is opened[0]
    context.close()
    with pytest.raises(FactUnavailable, match="has finished"):
        _ = context.transport
    assert len(opened) == 1
