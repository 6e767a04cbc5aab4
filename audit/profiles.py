"""Loading profiles: inheritance (`extends`), tailoring (`disable`, `tailor`), and the
validation of every check id and every `with:` block against the check's parameter model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from pydantic import ValidationError

from audit.errors import InputError, Problem
from audit.model.profile import CheckRef, Control, Profile
from audit.model.results import DisabledControl, ProfileRecord
from audit.registry import CheckSpec, Params, Registry
from audit.vocabulary import DEFAULT_WEIGHTS, LocalizedText, Severity
from audit.yamlfile import Document, load_document, parse_document

DEFAULT_THRESHOLD = 80.0
PROFILE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class PlannedCheck:
    """A check of a control with its validated parameters."""

    spec: CheckSpec
    params: Params


@dataclass(frozen=True)
class ResolvedControl:
    """A control after inheritance and tailoring, its checks ready to run."""

    control: Control
    checks: list[PlannedCheck]


@dataclass
class ResolvedProfile:
    """What a run is measured against."""

    id: str
    title: LocalizedText
    version: str
    threshold: float
    weights: dict[Severity, int]
    controls: list[ResolvedControl]
    records: list[ProfileRecord]
    disabled: list[DisabledControl] = field(default_factory=list)


@dataclass
class _Origin:
    """A control as inherited so far, with where it was written (for error locations)."""

    control: Control
    document: Document
    path: tuple[str | int, ...]
    tailored_with: dict[str, tuple[dict[str, object], Document, tuple[str | int, ...]]] = \
        field(default_factory=dict)


@dataclass
class _Merged:
    threshold: float | None = None
    weights: dict[Severity, int] | None = None
    controls: dict[str, _Origin] = field(default_factory=dict)
    records: list[ProfileRecord] = field(default_factory=list)
    disabled: list[DisabledControl] = field(default_factory=list)


def builtin_profile_ids() -> list[str]:
    """The profiles shipped with mis-audit."""
    return sorted(entry.name.rsplit(".", 1)[0] for entry in files("profiles").iterdir()
                  if entry.name.endswith(PROFILE_SUFFIXES))


def _is_path(reference: str) -> bool:
    return "/" in reference or reference.endswith(PROFILE_SUFFIXES)


def _read_profile(reference: str, relative_to: Path | None) -> tuple[Document, str, bytes]:
    """The document of a profile given by id or path, its display source and raw bytes."""
    if _is_path(reference):
        path = Path(reference).expanduser()
        if relative_to is not None and not path.is_absolute():
            path = relative_to / path
        document = load_document(path)
        return document, str(path), path.read_bytes()
    resource = files("profiles").joinpath(f"{reference}.yaml")
    if not resource.is_file():
        known = ", ".join(builtin_profile_ids())
        raise InputError.at(reference, f"no built-in profile {reference!r} (known: {known})")
    raw = resource.read_bytes()
    return parse_document(raw.decode("utf-8"), f"profiles/{reference}.yaml"), \
        f"builtin:{reference}", raw


def _canonical(reference: str, relative_to: Path | None) -> str:
    if not _is_path(reference):
        return f"builtin:{reference}"
    path = Path(reference).expanduser()
    if relative_to is not None and not path.is_absolute():
        path = relative_to / path
    return str(path.resolve())


def load_profiles(references: list[str], registry: Registry) -> ResolvedProfile:
    """Load one or more profiles (ids or paths), later ones overriding earlier ones."""
    merged = _Merged()
    last: Profile | None = None
    for reference in references:
        last = _merge_chain(reference, None, merged, stack=[])
    assert last is not None, "at least one profile is required"
    controls = [_plan_control(origin, registry) for origin in merged.controls.values()]
    problems = [problem for result in controls if isinstance(result, list) for problem in result]
    if problems:
        raise InputError(problems)
    return ResolvedProfile(
        id=last.id if len(references) == 1 else "+".join(_profile_id(r) for r in references),
        title=last.title, version=last.version,
        threshold=merged.threshold if merged.threshold is not None else DEFAULT_THRESHOLD,
        weights={**DEFAULT_WEIGHTS, **(merged.weights or {})},
        controls=[c for c in controls if isinstance(c, ResolvedControl)],
        records=merged.records, disabled=merged.disabled)


def _profile_id(reference: str) -> str:
    return Path(reference).stem if _is_path(reference) else reference


def _merge_chain(reference: str, relative_to: Path | None, merged: _Merged,
                 stack: list[str], where: Problem | None = None) -> Profile:
    key = _canonical(reference, relative_to)
    if key in stack:
        cycle = " -> ".join([*stack[stack.index(key):], key])
        location = where or Problem(reference, None, None, "")
        raise InputError([Problem(location.file, location.line, location.column,
                                  f"cyclic extends: {cycle}")])
    try:
        document, source, raw = _read_profile(reference, relative_to)
    except InputError as error:
        if where is None:
            raise
        raise InputError([Problem(where.file, where.line, where.column,
                                  f"extends {reference!r}: {error.problems[0].message}")]) from None
    profile = document.validate(Profile)
    base_dir = Path(source).parent if not source.startswith("builtin:") else None
    for index, parent in enumerate(profile.extends):
        _merge_chain(parent, base_dir, merged, [*stack, key],
                     document.problem(("extends", index), ""))
    _apply(profile, document, merged)
    merged.records.append(ProfileRecord(id=profile.id, title=profile.title,
                                        version=profile.version,
                                        sha256=hashlib.sha256(raw).hexdigest(), source=source))
    return profile


def _apply(profile: Profile, document: Document, merged: _Merged) -> None:
    if profile.threshold is not None:
        merged.threshold = profile.threshold
    if profile.weights is not None:
        merged.weights = {**(merged.weights or {}), **profile.weights}
    for index, control in enumerate(profile.controls):
        merged.controls[control.id] = _Origin(control, document, ("controls", index))
    problems: list[Problem] = []
    for index, disable in enumerate(profile.disable):
        if merged.controls.pop(disable.control, None) is None:
            problems.append(document.problem(("disable", index, "control"),
                                             f"disable: no inherited control {disable.control!r}"))
        else:
            merged.disabled.append(DisabledControl(control=disable.control, reason=disable.reason,
                                                   profile=profile.id))
    for control_id, tailoring in profile.tailor.items():
        origin = merged.controls.get(control_id)
        if origin is None:
            problems.append(document.problem(("tailor", control_id),
                                             f"tailor: no inherited control {control_id!r}"))
            continue
        if tailoring.severity is not None:
            origin.control = origin.control.model_copy(update={"severity": tailoring.severity})
        used = {ref.check for ref in origin.control.checks}
        for check_id, overrides in tailoring.with_.items():
            if check_id not in used:
                problems.append(document.problem(
                    ("tailor", control_id, "with", check_id),
                    f"tailor: control {control_id!r} does not use check {check_id!r}"))
                continue
            previous = origin.tailored_with.get(check_id, ({}, document, ()))[0]
            origin.tailored_with[check_id] = ({**previous, **overrides}, document,
                                              ("tailor", control_id, "with", check_id))
    if problems:
        raise InputError(problems)


def _plan_control(origin: _Origin, registry: Registry) -> ResolvedControl | list[Problem]:
    planned: list[PlannedCheck] = []
    problems: list[Problem] = []
    for index, ref in enumerate(origin.control.checks):
        path = (*origin.path, "checks", index)
        result = _plan_check(ref, origin, path, registry)
        if isinstance(result, PlannedCheck):
            planned.append(result)
        else:
            problems.extend(result)
    return problems or ResolvedControl(origin.control, planned)


def _plan_check(ref: CheckRef, origin: _Origin, path: tuple[str | int, ...],
                registry: Registry) -> PlannedCheck | list[Problem]:
    document = origin.document
    if ref.check not in registry:
        return [document.problem((*path, "check"), f"unknown check id {ref.check!r} "
                                 f"(see `mis-audit checks`)")]
    spec = registry.get(ref.check)
    try:
        params = spec.params.model_validate(ref.with_)
    except ValidationError as error:
        return document.problems_from(error, (*path, "with"))
    tailored = origin.tailored_with.get(ref.check)
    if tailored:
        overrides, tailor_document, tailor_path = tailored
        try:
            params = spec.params.model_validate({**ref.with_, **overrides})
        except ValidationError as error:
            return tailor_document.problems_from(error, tailor_path)
    return PlannedCheck(spec, params)
