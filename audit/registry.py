"""Checks: how they are declared, what they return, and the registry that collects them.

A check is a pure function from (facts, parameters) to a `Finding`. The facts come from a
*probe* (in `audit.facts`), which the engine calls once per target and caches. Declaring a
check attaches a frozen `CheckSpec` to the function and changes no global state; the registry
is built from an explicit tuple of modules plus the `mis_audit.checks` entry-point group.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from audit.errors import Unavailable
from audit.messages import Message, Text, english, message_of, says
from audit.vocabulary import Reason, Role, Status

SPEC_ATTRIBUTE = "__check_spec__"
ENTRY_POINT_GROUP = "mis_audit.checks"


class Params(BaseModel):
    """Base of every check's parameter model: a typo in a profile's `with:` is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    """For checks that take no parameters."""


class Finding(BaseModel):
    """What a check concludes about one target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Status
    summary: str
    message: Message | None = None      # the summary as a template a report can translate
    observed: Any = None
    expected: Any = None
    details: dict[str, Any] = Field(default_factory=dict)
    reason: Reason | None = None        # why the check could not tell (error, not_applicable)


def finding(status: Status, summary: Text, observed: Any = None, expected: Any = None,
            reason: Reason | None = None, **details: Any) -> Finding:
    """A finding whose summary is a plain string or a message (see `audit.messages`)."""
    return Finding(status=status, summary=english(summary), message=message_of(summary),
                   observed=observed, expected=expected, details=details, reason=reason)


def passed(summary: Text, observed: Any = None, expected: Any = None, **details: Any) -> Finding:
    """The target meets the requirement."""
    return finding(Status.PASS, summary, observed, expected, **details)


def failed(summary: Text, observed: Any = None, expected: Any = None, **details: Any) -> Finding:
    """The target does not meet the requirement."""
    return finding(Status.FAIL, summary, observed, expected, **details)


def failed_on(problems: Sequence[Text], observed: Any = None, expected: Any = None,
              **details: Any) -> Finding:
    """Failed on every one of `problems`: the first is the summary, the count of the rest
    follows it, all of them (in English) are in the details."""
    summary = says("{problem} (+{count} more)", problem=problems[0], count=len(problems) - 1) \
        if len(problems) > 1 else problems[0]
    return failed(summary, observed=observed, expected=expected,
                  problems=[english(problem) for problem in problems], **details)


def manual(summary: Text, observed: Any = None, expected: Any = None, **details: Any) -> Finding:
    """An assessor must decide from evidence that was not supplied."""
    return finding(Status.MANUAL, summary, observed, expected, **details)


def not_applicable(summary: Text, **details: Any) -> Finding:
    """The requirement does not concern this target."""
    return finding(Status.NOT_APPLICABLE, summary, **details)


def could_not_tell(unavailable: Unavailable, **details: Any) -> Finding:
    """The facts a check needed are missing: `error` with the reason, or `not_applicable`
    when the transport cannot observe them at all (an offline image has no live sockets)."""
    status = Status.NOT_APPLICABLE if unavailable.reason is Reason.UNSUPPORTED else Status.ERROR
    return finding(status, unavailable.text, reason=unavailable.reason, **details)


P = TypeVar("P", bound=Params)
F = TypeVar("F")

# A probe gathers facts about one target: probe(context) or probe(context, params).
Probe = Callable[..., Any]
CheckFunction = Callable[[Any, Any], Finding]


@dataclass(frozen=True)
class CheckSpec:
    """Everything the core needs to know about a check, declared beside its function."""

    id: str
    title: str
    applies_to: frozenset[Role]
    params: type[Params]
    probe: Probe
    function: CheckFunction
    module: str
    deprecated: bool = False

    @property
    def description(self) -> str:
        """The check's docstring: why it matters and what to do."""
        return inspect.cleandoc(self.function.__doc__ or "")

    @property
    def probe_takes_params(self) -> bool:
        """Whether the probe's facts depend on the check's parameters."""
        return len(inspect.signature(self.probe).parameters) > 1

    def evaluate(self, facts: Any, params: Params) -> Finding:
        """Run the pure check function."""
        return self.function(facts, params)


def check(*, id: str, title: str, applies_to: Role | Iterable[Role], probe: Probe,
          params: type[Params] = NoParams,
          deprecated: bool = False) -> Callable[[Callable[[F, P], Finding]], Callable[[F, P], Finding]]:
    """Declare a check: attach its spec to the function, nothing else."""
    roles = frozenset([applies_to] if isinstance(applies_to, Role) else applies_to)

    def declare(function: Callable[[F, P], Finding]) -> Callable[[F, P], Finding]:
        spec = CheckSpec(id=id, title=title, applies_to=roles, params=params, probe=probe,
                         function=function, module=function.__module__, deprecated=deprecated)
        setattr(function, SPEC_ATTRIBUTE, spec)
        return function

    return declare


class RegistryError(Exception):
    """The set of checks is inconsistent (a programming error, not a user error)."""


class Registry:
    """The checks known to this run, by id."""

    def __init__(self, specs: Iterable[CheckSpec]) -> None:
        by_id: dict[str, CheckSpec] = {}
        for spec in specs:
            _validate_spec(spec)
            if spec.id in by_id:
                raise RegistryError(f"duplicate check id {spec.id!r} in {spec.module} "
                                    f"and {by_id[spec.id].module}")
            by_id[spec.id] = spec
        self._by_id = dict(sorted(by_id.items()))

    def __contains__(self, check_id: object) -> bool:
        return check_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, check_id: str) -> CheckSpec:
        """The spec of a registered check; KeyError when unknown."""
        return self._by_id[check_id]

    def specs(self) -> list[CheckSpec]:
        """All checks, sorted by id."""
        return list(self._by_id.values())

    def ids(self) -> list[str]:
        """All check ids, sorted."""
        return list(self._by_id)


# Dotted `area.thing`: the area says what is judged, not which module holds the function.
CHECK_ID = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")


def _validate_spec(spec: CheckSpec) -> None:
    if not CHECK_ID.fullmatch(spec.id):
        raise RegistryError(f"check id {spec.id!r} (in {spec.module}) is not a dotted "
                            "lower-case area.thing")
    if not (isinstance(spec.params, type) and issubclass(spec.params, Params)):
        raise RegistryError(f"check {spec.id!r}: params must be a Params model")


def specs_in_module(module: ModuleType) -> list[CheckSpec]:
    """The checks a module declares, in definition order."""
    found = [getattr(value, SPEC_ATTRIBUTE) for value in vars(module).values()
             if callable(value) and hasattr(value, SPEC_ATTRIBUTE)]
    return [spec for spec in found if spec.module == module.__name__]


def load_registry(modules: Iterable[str] | None = None,
                  include_entry_points: bool = True) -> Registry:
    """Build the registry from the built-in modules and third-party entry points."""
    from checks import CHECK_MODULES

    names = list(CHECK_MODULES if modules is None else modules)
    loaded = [importlib.import_module(name) for name in names]
    if include_entry_points:
        loaded += [entry.load() for entry in entry_points(group=ENTRY_POINT_GROUP)]
    return Registry(spec for module in loaded for spec in specs_in_module(module))


_DEFAULT: Registry | None = None


def default_registry() -> Registry:
    """The registry of built-in and installed checks, built once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_registry()
    return _DEFAULT


def params_schema(spec: CheckSpec) -> Mapping[str, Any]:
    """The JSON Schema of a check's parameters (for `mis-audit checks`)."""
    return spec.params.model_json_schema()
