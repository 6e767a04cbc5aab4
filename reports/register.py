"""What to fix, computed from results.json alone: the findings register (every failed and
errored result), a one-line summary per target, and the remediation plan (failed controls
ordered by how much fixing each raises the score). The HTML/PDF report and `mis-audit plan`
show the same lists."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from audit.fix import plan_fixes
from audit.model.results import ControlOutcome, RunResults
from audit.vocabulary import Lang, Severity, Status, localized
from reports.i18n import summary_of
from reports.text import clean

# Most severe first; the register and the plan sort on it.
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(Severity)}
FINDING = frozenset({Status.FAIL, Status.ERROR})
ONE_LINE = 180
REGISTER_LINE = 120     # a register row stays two or three lines high in A4


def one_line(text: str, limit: int = ONE_LINE) -> str:
    """The first line of `text`, cut to `limit` characters with an ellipsis."""
    first = clean(text).strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[:limit - 1].rstrip() + "…"


def first_sentence(text: str, limit: int = ONE_LINE) -> str:
    """The first sentence of a remediation text: the one-line fix."""
    flat = " ".join(clean(text).split())
    end = flat.find(". ")
    return one_line(flat[:end + 1] if 0 <= end else flat, limit)


def score_gains(results: RunResults) -> dict[str, float]:
    """Score points each control would add if it passed (0 for one already earned)."""
    applicable = [c for c in results.controls if c.status is not Status.NOT_APPLICABLE]
    total = sum(c.weight for c in applicable)
    return {c.id: round(100.0 * c.weight / total, 2) if total and not c.earned else 0.0
            for c in applicable}


@dataclass(frozen=True)
class RegisterRow:
    """One failed or errored result, as the register lists it."""

    index: int              # position in results.json's `results`: the evidence anchor
    severity: Severity
    control: str
    title: str
    target: str
    check: str
    status: Status
    finding: str
    fix: str
    gain: float


def findings_register(results: RunResults, lang: Lang = Lang.EN) -> list[RegisterRow]:
    """Every failed and errored result, most severe first, then by score gain."""
    controls = {control.id: control for control in results.controls}
    gains = score_gains(results)
    rows = []
    for index, result in enumerate(results.results):
        control = controls.get(result.control)
        if result.status not in FINDING or control is None:
            continue
        rows.append(RegisterRow(
            index=index, severity=control.severity, control=control.id,
            title=localized(control.title, lang), target=result.target, check=result.check,
            status=result.status, finding=one_line(summary_of(result, lang), REGISTER_LINE),
            fix=first_sentence(localized(control.remediation, lang), REGISTER_LINE),
            gain=gains.get(control.id, 0.0)))
    return sorted(rows, key=lambda r: (SEVERITY_RANK[r.severity], -r.gain, r.control,
                                       r.target, r.check))


@dataclass(frozen=True)
class TargetLine:
    """One target in one line: its counts and its worst finding."""

    target: str
    counts: Counter[Status]
    worst: RegisterRow | None


def target_lines(results: RunResults, register: list[RegisterRow]) -> list[TargetLine]:
    """Every target of the run (the organisation too), worst-off first."""
    counts: dict[str, Counter[Status]] = {}
    for result in results.results:
        counts.setdefault(result.target, Counter())[result.status] += 1
    worst: dict[str, RegisterRow] = {}
    for row in register:            # already most severe first
        worst.setdefault(row.target, row)
    lines = [TargetLine(target, counted, worst.get(target)) for target, counted in counts.items()]
    return sorted(lines, key=lambda line: (-line.counts[Status.FAIL] - line.counts[Status.ERROR],
                                           line.target))


@dataclass(frozen=True)
class PlanStep:
    """One control to fix, with what fixing it is worth."""

    rank: int
    control: ControlOutcome
    title: str
    gain: float
    score_after: float
    lifts_blocker: bool
    targets: list[str]
    fix: str
    playbook_targets: list[str]     # the targets `mis-audit fix` writes tasks for


def remediation_plan(results: RunResults, lang: Lang = Lang.EN) -> list[PlanStep]:
    """The failed (and errored) controls, the biggest score gain first; a blocker before a
    non-blocker of the same gain."""
    gains = score_gains(results)
    blocking = {blocker.control for blocker in results.blockers if blocker.control}
    failed = [c for c in results.controls if c.status in FINDING]
    failed.sort(key=lambda c: (-gains.get(c.id, 0.0), c.id not in blocking,
                               SEVERITY_RANK[c.severity], c.id))
    fixable = plan_fixes(results).fixable_controls
    return [PlanStep(rank=rank, control=control, title=localized(control.title, lang),
                     gain=gains.get(control.id, 0.0),
                     score_after=min(100.0, round(results.score + gains.get(control.id, 0.0), 2)),
                     lifts_blocker=control.id in blocking,
                     targets=[t for t, status in control.targets.items() if status in FINDING],
                     fix=first_sentence(localized(control.remediation, lang)),
                     playbook_targets=sorted(t for c, t in fixable if c == control.id))
            for rank, control in enumerate(failed, start=1)]
