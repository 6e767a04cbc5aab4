"""What a probe knows about the target it probes, and the per-target cache of facts."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from audit.errors import FactUnavailable
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


class _Slot:
    """One cached fact: gathered by the first caller, awaited by the others."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None


class TargetContext:
    """One target's view for probes: its transport, and facts gathered at most once."""

    def __init__(self, target: Target, environment: Environment,
                 transport_factory: TransportFactory | None = None) -> None:
        self.target = target
        self.environment = environment
        self._transport_factory = transport_factory
        self._transport: Transport | None = None
        self._transport_lock = threading.Lock()
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._slots_lock = threading.Lock()

    @property
    def transport(self) -> Transport:
        """The host transport, opened on first use and shared by every probe of the target."""
        with self._transport_lock:
            if self._transport is None:
                if self._transport_factory is None:
                    raise FactUnavailable(Reason.UNSUPPORTED,
                                          f"target {self.target.name!r} has no host transport")
                self._transport = self._transport_factory(self.target, self.environment)
            return self._transport

    def gather(self, probe: Callable[..., T], params: Params | None = None) -> T:
        """The probe's facts for this target, computed once per (probe, parameters)."""
        key = (f"{probe.__module__}.{probe.__qualname__}",
               json.dumps(params.model_dump(mode="json"), sort_keys=True) if params else "")
        with self._slots_lock:
            slot = self._slots.setdefault(key, _Slot())
        with slot.lock:
            if not slot.done:
                try:
                    slot.value = probe(self) if params is None else probe(self, params)
                except Exception as error:  # cached too: a broken fact is broken for all
                    slot.error = error
                slot.done = True
        if slot.error is not None:
            raise slot.error
        return slot.value  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the transport if one was opened."""
        with self._transport_lock:
            if self._transport is not None:
                self._transport.close()
                self._transport = None
