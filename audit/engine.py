"""The engine: runs the plan concurrently, one timeout per check, and never loses a row.

Each planned item runs in its own daemon thread, watched by one of `jobs` workers: a check
that hangs is abandoned after its timeout (the thread cannot be killed, but as a daemon it
cannot keep the process alive either) and becomes an `error` result.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from audit.errors import FactUnavailable
from audit.facts.context import ProbeCrash, ProbeError, TargetContext
from audit.messages import Text, english, message_of, says
from audit.model.results import ErrorInfo, Evidence, Result
from audit.plan import PlanItem
from audit.registry import Finding, could_not_tell
from audit.vocabulary import Reason, Status

MAX_TEXT = 2000         # longest string kept from anything a target sent back
MAX_ITEMS = 200         # longest list kept in evidence


class Observer(Protocol):
    """Told about progress; the CLI shows it, tests may record it."""

    def started(self, total: int) -> None: ...

    def finished(self, result: Result) -> None: ...


class SilentObserver:
    """Progress goes nowhere."""

    def started(self, total: int) -> None:
        """Nothing to show."""

    def finished(self, result: Result) -> None:
        """Nothing to show."""


class Observers:
    """Several observers, told the same things in order (progress bar, journal, event log)."""

    def __init__(self, *observers: Observer) -> None:
        self._observers = observers

    def started(self, total: int) -> None:
        """Tell each."""
        for observer in self._observers:
            observer.started(total)

    def finished(self, result: Result) -> None:
        """Tell each."""
        for observer in self._observers:
            observer.finished(result)


@dataclass(frozen=True)
class EngineOutcome:
    """One result per planned item, and whether every item ran to its end."""

    results: list[Result]
    complete: bool


def bounded(value: Any) -> Any:
    """Evidence kept to a size a report can hold: long text and long lists are cut."""
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else \
            f"{value[:MAX_TEXT]}... [{len(value) - MAX_TEXT} more characters cut]"
    if isinstance(value, Mapping):
        return {str(bounded(key)): bounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        kept = [bounded(item) for item in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            kept.append(f"... {len(items) - MAX_ITEMS} more items cut")
        return kept
    return value


def _result(item: PlanItem, status: Status, summary: Text, started: float,
            evidence: Evidence | None = None, error: ErrorInfo | None = None) -> Result:
    return Result(control=item.control, check=item.check_id, target=item.target, status=status,
                  summary=bounded(english(summary)), message=message_of(summary),
                  evidence=evidence or Evidence(), error=error,
                  duration_ms=int((time.monotonic() - started) * 1000))


def evaluate(item: PlanItem, context: TargetContext, debug: bool = False) -> Result:
    """Gather the facts and run the check for one item; every failure becomes a result."""
    started = time.monotonic()
    if item.check is None:
        return _result(item, Status.MANUAL, says("no automated check: an assessor decides "
                                                 "from evidence"), started)
    spec, params = item.check.spec, item.check.params
    try:
        facts = context.gather(spec.probe, params if spec.probe_takes_params else None)
        finding: Finding = spec.evaluate(facts, params)
    except FactUnavailable as unavailable:
        finding = could_not_tell(unavailable.unavailable)
    except ProbeError as broken:  # a broken probe must not lose the run
        return _crashed(item, broken.crash, started, debug)
    except Exception as crash:  # noqa: BLE001 (nor a broken check)
        return _crashed(item, ProbeCrash(type(crash).__name__, str(crash),
                                         traceback.format_exc()), started, debug)
    evidence = Evidence(observed=bounded(finding.observed), expected=bounded(finding.expected),
                        details=bounded(finding.details))
    reason = ErrorInfo(type=finding.reason.value, message=bounded(finding.summary)) \
        if finding.reason is not None else None
    return _result(item, finding.status, finding.message or finding.summary, started, evidence,
                   reason)


def _crashed(item: PlanItem, crash: ProbeCrash, started: float, debug: bool) -> Result:
    message = f"{crash.kind}: {crash.message}" + (f"\n{crash.trace}" if debug else "")
    return _result(item, Status.ERROR, says("the check failed: {kind}", kind=crash.kind), started,
                   error=ErrorInfo(type=Reason.CHECK_FAILED.value, message=bounded(message)))


def run_plan(plan: list[PlanItem], contexts: Mapping[str, TargetContext], jobs: int,
             timeout: float, observer: Observer | None = None, debug: bool = False) -> EngineOutcome:
    """Run every item; on Ctrl-C, return what finished and mark the rest interrupted."""
    observer = observer or SilentObserver()
    observer.started(len(plan))
    pending: queue.Queue[int] = queue.Queue()
    for index in range(len(plan)):
        pending.put(index)
    done: queue.Queue[tuple[int, Result]] = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            try:
                index = pending.get_nowait()
            except queue.Empty:
                return
            item = plan[index]
            budget = item.check.timeout if item.check and item.check.timeout else timeout
            done.put((index, _run_with_timeout(item, contexts[item.target].with_timeout(budget),
                                               budget, debug)))

    for _ in range(max(1, min(jobs, len(plan)))):
        threading.Thread(target=work, daemon=True, name="mis-audit-worker").start()

    results: dict[int, Result] = {}
    items_left = Counter(item.target for item in plan)
    try:
        while len(results) < len(plan):
            try:
                index, result = done.get(timeout=0.1)
            except queue.Empty:
                continue
            results[index] = result
            observer.finished(result)
            target = plan[index].target
            items_left[target] -= 1
            if not items_left[target]:      # its facts are needed no more: memory stays flat
                contexts[target].close()
    except KeyboardInterrupt:
        stop.set()
        interrupted = time.monotonic()
        for index, item in enumerate(plan):
            if index not in results:
                results[index] = _result(item, Status.ERROR, says("interrupted before it finished"),
                                         interrupted, error=ErrorInfo(
                                             type=Reason.INTERRUPTED.value,
                                             message="the run was interrupted"))
        return EngineOutcome([results[i] for i in range(len(plan))], complete=False)
    return EngineOutcome([results[i] for i in range(len(plan))], complete=True)


def _run_with_timeout(item: PlanItem, context: TargetContext, timeout: float,
                      debug: bool) -> Result:
    started = time.monotonic()
    box: list[Result] = []
    runner = threading.Thread(target=lambda: box.append(evaluate(item, context, debug)),
                              daemon=True, name=f"check-{item.check_id}")
    runner.start()
    runner.join(timeout)
    if box:
        return box[0]
    return _result(item, Status.ERROR, says("no answer within {seconds} s", seconds=f"{timeout:g}"),
                   started,
                   error=ErrorInfo(type=Reason.TIMEOUT.value,
                                   message=f"the check did not finish within {timeout:g} s"))
