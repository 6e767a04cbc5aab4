"""What a probe knows about the target it probes, and the per-target cache of facts."""

from __future__ import annotations

import copy
import json
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from audit.errors import FactUnavailable, Unavailable
from audit.facts.budget import Budget
from audit.messages import says
from audit.model.inventory import Credential, EvidenceDocument, Scope, Target
from audit.registry import Params
from audit.transports.base import Transport
from audit.vocabulary import Reason

T = TypeVar("T")


@dataclass(frozen=True)
class Environment:
    """Run-wide settings every probe may need: never a secret value, only references."""

    base_dir: Path                     # relative inventory paths are relative to this
    today: date
    scope: Scope
    credentials: dict[str, Credential] = field(default_factory=dict)
    evidence: dict[str, EvidenceDocument] = field(default_factory=dict)
    ca_file: Path | None = None
    timeout: float = 30.0

    def resolve(self, path: str) -> Path:
        """An inventory path (absolute, ~, or relative to the inventory) on this machine."""
        expanded = Path(path).expanduser()
        return expanded if expanded.is_absolute() else self.base_dir / expanded


TransportFactory = Callable[[Target, Environment], Transport]


@dataclass(frozen=True)
class ProbeCrash:
    """A probe that raised something other than FactUnavailable (a bug), kept as text."""

    kind: str            # the exception's type name
    message: str
    trace: str


class ProbeError(Exception):
    """Raised anew, for each check that asks, from a probe's cached crash."""

    def __init__(self, crash: ProbeCrash) -> None:
        super().__init__(crash.message)
        self.crash = crash


class _Slot:
    """One cached fact: gathered by the first caller, awaited by the others. Facts and
    failures are kept as values; no exception object is shared between threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = False
        self.value: Any = None
        self.failure: Unavailable | ProbeCrash | None = None


@dataclass
class _Shared:
    """What every view of one target shares: one transport and one cache of facts."""

    transport: Transport | None = None
    transport_lock: threading.Lock = field(default_factory=threading.Lock)
    slots: dict[tuple[str, str], _Slot] = field(default_factory=dict)
    slots_lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False


class TargetContext:
    """One target's view for probes: its transport, and facts gathered at most once."""

    def __init__(self, target: Target, environment: Environment,
                 transport_factory: TransportFactory | None = None) -> None:
        self.target = target
        self.environment = environment
        self._transport_factory = transport_factory
        self._shared = _Shared()
        self._budget: Budget | None = None

    def with_timeout(self, seconds: float) -> TargetContext:
        """The same target (same transport, same facts) for one check and its time budget,
        which starts when a probe first asks for it."""
        view = copy.copy(self)
        view.environment = replace(self.environment, timeout=seconds)
        view._budget = None
        return view

    @property
    def budget(self) -> Budget:
        """The check's time: probes take their steps and deadlines from it."""
        if self._budget is None:
            self._budget = Budget(self.environment.timeout)
        return self._budget

    @property
    def transport(self) -> Transport:
        """The host transport, opened on first use and shared by every probe of the target."""
        shared = self._shared
        with shared.transport_lock:
            if shared.transport is None:
                if shared.closed:       # a check past its time, still running: not reopened
                    raise FactUnavailable(Reason.UNSUPPORTED, says(
                        "the audit of target {target} has finished", target=repr(self.target.name)))
                if self._transport_factory is None:
                    raise FactUnavailable(Reason.UNSUPPORTED, says(
                        "target {target} has no host transport", target=repr(self.target.name)))
                shared.transport = self._transport_factory(self.target, self.environment)
            return shared.transport

    def gather(self, probe: Callable[..., T], params: Params | None = None) -> T:
        """The probe's facts for this target, computed once per (probe, parameters)."""
        key = (f"{probe.__module__}.{probe.__qualname__}",
               json.dumps(params.model_dump(mode="json"), sort_keys=True) if params else "")
        with self._shared.slots_lock:
            slot = self._shared.slots.setdefault(key, _Slot())
        with slot.lock:
            if not slot.done:
                slot.value, slot.failure = _run_probe(self, probe, params)
                slot.done = True
        if isinstance(slot.failure, Unavailable):
            raise slot.failure.error()
        if isinstance(slot.failure, ProbeCrash):
            raise ProbeError(slot.failure)
        return slot.value  # type: ignore[no-any-return]

    def close(self) -> None:
        """The target is done with: close the transport if one was opened and let go of the
        facts (a check still running past its time gathers anew, without a transport)."""
        shared = self._shared
        with shared.transport_lock:
            shared.closed = True
            if shared.transport is not None:
                shared.transport.close()
                shared.transport = None
        with shared.slots_lock:
            shared.slots.clear()


def _run_probe(context: TargetContext, probe: Callable[..., Any], params: Params | None
               ) -> tuple[Any, Unavailable | ProbeCrash | None]:
    """The probe's facts, or why there are none: a broken fact is broken for every check."""
    try:
        return (probe(context) if params is None else probe(context, params)), None
    except FactUnavailable as error:
        return None, error.unavailable
    except Exception as error:  # noqa: BLE001 (a bug in a probe becomes each check's error)
        return None, ProbeCrash(type(error).__name__, str(error), traceback.format_exc())
