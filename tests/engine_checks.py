"""Checks that misbehave on purpose, to prove the engine never loses a row."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections import Counter
from pathlib import Path

from audit.errors import FactUnavailable
from audit.facts.context import TargetContext
from audit.registry import (
    Finding,
    NoParams,
    Registry,
    check,
    failed,
    load_registry,
    passed,
    specs_in_module,
)
from audit.vocabulary import Reason, Role

PROBE_CALLS: Counter[str] = Counter()
NEVER = threading.Event()


def counted_probe(context: TargetContext) -> str:
    """Facts that count how often they are gathered."""
    PROBE_CALLS[context.target.name] += 1
    return context.target.name


def hanging_probe(context: TargetContext) -> str:
    """A probe that never answers (and says it started, for tests that interrupt it)."""
    marker = os.environ.get("MIS_AUDIT_TEST_HANG_MARKER")
    if marker:
        Path(marker).touch()
    NEVER.wait()
    return "never"


def unsupported_probe(context: TargetContext) -> str:
    """A fact this transport cannot observe."""
    raise FactUnavailable(Reason.UNSUPPORTED, "not observable here")


def unreachable_probe(context: TargetContext) -> str:
    """A host that does not answer."""
    raise FactUnavailable(Reason.UNREACHABLE, "connection refused")


def budget_probe(context: TargetContext) -> float:
    """The time budget the engine gave this check."""
    return context.environment.timeout


@check(id="testing.budget", title="reports its budget", applies_to=Role.HOST, probe=budget_probe)
def budget(facts: float, p: NoParams) -> Finding:
    """Passes, saying how long it was allowed to take."""
    return passed(f"budget {facts:g} s", observed=facts)


@check(id="testing.ok_one", title="passes", applies_to=Role.HOST, probe=counted_probe)
def ok_one(facts: str, p: NoParams) -> Finding:
    """Always passes."""
    return passed(f"fine on {facts}")


@check(id="testing.ok_two", title="passes too", applies_to=Role.HOST, probe=counted_probe)
def ok_two(facts: str, p: NoParams) -> Finding:
    """Always passes, from the same facts."""
    return passed(f"also fine on {facts}")


@check(id="testing.raises", title="raises", applies_to=Role.HOST, probe=counted_probe)
def raises(facts: str, p: NoParams) -> Finding:
    """A bug in a check."""
    raise ZeroDivisionError("division by zero in a check")


@check(id="testing.hangs", title="hangs", applies_to=Role.HOST, probe=hanging_probe)
def hangs(facts: str, p: NoParams) -> Finding:
    """Never returns: its probe never answers."""
    return passed("unreachable code")


@check(id="testing.unsupported", title="cannot be observed", applies_to=Role.HOST,
       probe=unsupported_probe)
def unsupported(facts: str, p: NoParams) -> Finding:
    """The transport cannot tell."""
    return passed("unreachable code")


@check(id="testing.unreachable", title="host down", applies_to=Role.HOST, probe=unreachable_probe)
def unreachable(facts: str, p: NoParams) -> Finding:
    """The host does not answer."""
    return passed("unreachable code")


def logged_probe(context: TargetContext) -> str:
    """A probe that writes each call to $MIS_AUDIT_TEST_PROBE_LOG (a subprocess's probes can
    be counted). While the file
    $MIS_AUDIT_TEST_PROBE_GATE exists, every probe after the first $MIS_AUDIT_TEST_PROBE_FREE
    waits for it to go (at most a minute): a test holds a run half-way for as long as it
    needs, however loaded the machine."""
    with open(os.environ["MIS_AUDIT_TEST_PROBE_LOG"], "a+", encoding="utf-8") as log:
        fcntl.flock(log, fcntl.LOCK_EX)         # this probe's ordinal: count, then append
        log.seek(0)
        started = len(log.read().split()) + 1
        log.write(context.target.name + "\n")
    gate = os.environ.get("MIS_AUDIT_TEST_PROBE_GATE")
    held = started > int(os.environ.get("MIS_AUDIT_TEST_PROBE_FREE", "0"))
    deadline = time.monotonic() + 60
    while held and gate and os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)
    return context.target.name


@check(id="testing.logged", title="odd targets fail", applies_to=Role.HOST, probe=logged_probe)
def logged(facts: str, p: NoParams) -> Finding:
    """Passes on targets whose name ends in an even digit, fails on the others."""
    return passed(f"{facts} is even") if int(facts[-1]) % 2 == 0 else failed(f"{facts} is odd")


def registry_with_test_checks() -> Registry:
    """The built-in checks plus these."""
    import sys
    return Registry([*load_registry().specs(), *specs_in_module(sys.modules[__name__])])
