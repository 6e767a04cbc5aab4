"""Loading profiles: inheritance (`extends`), the shared control library (`use`), tailoring
(`disable`, `tailor`), and the validation of every check id and every `with:` block against
the check's parameter model. Every problem names its file and line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from pydantic import ValidationError

from audit.errors import InputError, Problem
from audit.model.profile import (
    CheckOverrides,
    CheckRef,
    Control,
    ControlEntry,
    ControlLibrary,
    LibraryControl,
    Profile,
)
from audit.model.results import DisabledControl, ProfileRecord
from audit.registry import CheckSpec, Params, Registry
from audit.vocabulary import DEFAULT_WEIGHTS, Lang, LocalizedText, Severity
from audit.yamlfile import Document, parse_bytes, read_input

DEFAULT_THRESHOLD = 80.0
PROFILE_SUFFIXES = (".yaml", ".yml")
LIBRARY_DIRECTORY = "controls"
LIBRARY_VERSION = "library"

DocumentPath = tuple[str | int, ...]


@dataclass(frozen=True)
class PlannedCheck:
    """A check of a control with its validated parameters."""

    spec: CheckSpec
    params: Params
    timeout: float | None = None      # None: the run's timeout


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
    description: LocalizedText | None = None
    # The roots of the `extends` chains ("+"-joined): a tailoring stays in its base's series.
    family: str = ""


@dataclass(frozen=True)
class _Override:
    """Parameter overrides of one check, with where they were written."""

    values: dict[str, object]
    document: Document
    path: DocumentPath


@dataclass
class _Origin:
    """A control as inherited so far, with where its checks were written (for error
    locations) and the parameter overrides layered on them since."""

    control: Control
    document: Document
    path: DocumentPath
    overrides: dict[str, _Override] = field(default_factory=dict)


@dataclass
class _Merged:
    threshold: float | None = None
    weights: dict[Severity, int] | None = None
    controls: dict[str, _Origin] = field(default_factory=dict)
    records: list[ProfileRecord] = field(default_factory=list)
    disabled: list[DisabledControl] = field(default_factory=list)
    libraries_used: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _LibraryEntry:
    """A library control with the file it was written in."""

    control: LibraryControl
    document: Document
    path: DocumentPath
    file: str


@dataclass(frozen=True)
class ControlLibraryIndex:
    """The packaged control library: every shared control by id, and each file's hash."""

    controls: dict[str, _LibraryEntry]
    sha256: dict[str, str]


def builtin_profile_ids() -> list[str]:
    """The profiles shipped with mis-audit."""
    return sorted(entry.name.rsplit(".", 1)[0] for entry in files("profiles").iterdir()
                  if entry.name.endswith(PROFILE_SUFFIXES))


@lru_cache(maxsize=1)
def control_library() -> ControlLibraryIndex:
    """The shared controls of `profiles/controls/*.yaml`; duplicate ids are an error."""
    controls: dict[str, _LibraryEntry] = {}
    hashes: dict[str, str] = {}
    problems: list[Problem] = []
    directory = files("profiles").joinpath(LIBRARY_DIRECTORY)
    for resource in sorted(directory.iterdir(), key=lambda r: r.name):
        if not resource.name.endswith(PROFILE_SUFFIXES):
            continue
        name = f"profiles/{LIBRARY_DIRECTORY}/{resource.name}"
        raw = resource.read_bytes()
        hashes[name] = hashlib.sha256(raw).hexdigest()
        document = parse_bytes(raw, name)
        for index, control in enumerate(document.validate(ControlLibrary).controls):
            if control.id in controls:
                problems.append(document.problem(("controls", index, "id"),
                                                 f"duplicate library control {control.id!r} "
                                                 f"(also in {controls[control.id].file})"))
                continue
            controls[control.id] = _LibraryEntry(control, document, ("controls", index), name)
    if problems:
        raise InputError(problems)
    return ControlLibraryIndex(controls, hashes)


def _is_path(reference: str) -> bool:
    return "/" in reference or reference.endswith(PROFILE_SUFFIXES)


def _profile_path(reference: str, relative_to: Path | None) -> Path:
    """The file a path reference names."""
    try:
        path = Path(reference).expanduser()
    except RuntimeError:        # `~user` of no such user, or no home directory
        raise InputError.at(reference, "cannot expand '~': no such user or home "
                                       "directory") from None
    if relative_to is not None and not path.is_absolute():
        path = relative_to / path
    return path


def _read_profile(reference: str, relative_to: Path | None) -> tuple[Document, str, bytes]:
    """The document of a profile given by id or path, its display source and raw bytes."""
    if _is_path(reference):
        path = _profile_path(reference, relative_to)
        raw = read_input(path, str(path))     # read once: the bytes parsed are the bytes hashed
        return parse_bytes(raw, str(path)), str(path), raw
    resource = files("profiles").joinpath(f"{reference}.yaml")
    try:
        found = resource.is_file()
    except OSError:             # a name too long for the file system names no profile
        found = False
    if not found:
        known = ", ".join(builtin_profile_ids())
        raise InputError.at(reference, f"no built-in profile {reference!r} (known: {known})")
    raw = resource.read_bytes()
    return parse_bytes(raw, f"profiles/{reference}.yaml"), f"builtin:{reference}", raw


def _canonical(reference: str, relative_to: Path | None) -> str:
    if not _is_path(reference):
        return f"builtin:{reference}"
    path = _profile_path(reference, relative_to)
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):     # a symlink loop: reading the file will say so
        return str(path.absolute())


def load_profiles(references: list[str], registry: Registry) -> ResolvedProfile:
    """Load one or more profiles (ids or paths), later ones overriding earlier ones."""
    merged = _Merged()
    last: Profile | None = None
    roots: set[str] = set()
    for reference in references:
        last, chain_roots = _merge_chain(reference, None, merged, stack=[])
        roots |= chain_roots
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
        records=merged.records + _library_records(merged.libraries_used),
        disabled=merged.disabled,
        description=last.description if len(references) == 1 else None,
        family="+".join(sorted(roots)))


def _library_records(used: set[str]) -> list[ProfileRecord]:
    """The library files a run's controls came from, pinned like the profiles."""
    hashes = control_library().sha256
    return [ProfileRecord(id=f"{LIBRARY_DIRECTORY}.{Path(name).stem}",
                          title={Lang.EN: f"Control library: {Path(name).stem}"},
                          version=LIBRARY_VERSION, sha256=hashes[name], source=f"builtin:{name}")
            for name in sorted(used)]


def _profile_id(reference: str) -> str:
    return Path(reference).stem if _is_path(reference) else reference


def _merge_chain(reference: str, relative_to: Path | None, merged: _Merged,
                 stack: list[str], where: Problem | None = None) -> tuple[Profile, set[str]]:
    """Merge a profile after its parents; return it with the roots of its `extends` chain."""
    try:
        key = _canonical(reference, relative_to)
    except InputError as error:
        raise _on_extends_line(error, reference, where) from None
    if key in stack:
        cycle = " -> ".join([*stack[stack.index(key):], key])
        location = where or Problem(reference, None, None, "")
        raise InputError([Problem(location.file, location.line, location.column,
                                  f"cyclic extends: {cycle}")])
    try:
        document, source, raw = _read_profile(reference, relative_to)
    except InputError as error:
        raise _on_extends_line(error, reference, where) from None
    profile = document.validate(Profile)
    base_dir = Path(source).parent if not source.startswith("builtin:") else None
    roots: set[str] = set()
    for index, parent in enumerate(profile.extends):
        roots |= _merge_chain(parent, base_dir, merged, [*stack, key],
                              document.problem(("extends", index), ""))[1]
    _apply(profile, document, merged)
    merged.records.append(ProfileRecord(id=profile.id, title=profile.title,
                                        version=profile.version,
                                        sha256=hashlib.sha256(raw).hexdigest(), source=source))
    return profile, roots or {profile.id}


def _on_extends_line(error: InputError, reference: str, where: Problem | None) -> InputError:
    """A problem with a whole parent file (not found, not a profile id) placed on the
    `extends` line that names it; a problem on a line of the parent stays there."""
    if where is None or error.problems[0].line is not None:
        return error
    return InputError([Problem(where.file, where.line, where.column,
                               f"extends {reference!r}: {error.problems[0].message}")])


def _apply(profile: Profile, document: Document, merged: _Merged) -> None:
    if profile.threshold is not None:
        merged.threshold = profile.threshold
    if profile.weights is not None:
        merged.weights = {**(merged.weights or {}), **profile.weights}
    problems = _add_controls(profile, document, merged)
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
        problems += _layer_overrides(origin, tailoring.with_, document,
                                     ("tailor", control_id, "with"), "tailor")
    if problems:
        raise InputError(problems)


def _add_controls(profile: Profile, document: Document, merged: _Merged) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, entry in enumerate(profile.controls):
        at: DocumentPath = ("controls", index)
        if entry.control_id in seen:
            problems.append(document.problem((*at, "use" if entry.use else "id"),
                                             f"control {entry.control_id!r} is listed twice"))
            continue
        seen.add(entry.control_id)
        origin = _inline(entry, document, at) if entry.use is None \
            else _from_library(entry, document, at, problems, merged)
        if origin is not None:
            merged.controls[entry.control_id] = origin
    return problems


def _inline(entry: ControlEntry, document: Document, at: DocumentPath) -> _Origin:
    assert entry.id is not None and entry.title is not None and entry.severity is not None
    control = Control(id=entry.id, title=entry.title, severity=entry.severity,
                      references=entry.references, rationale=entry.rationale,
                      remediation=entry.remediation, checks=entry.checks or [])
    return _Origin(control, document, at)


def _from_library(entry: ControlEntry, document: Document, at: DocumentPath,
                  problems: list[Problem], merged: _Merged) -> _Origin | None:
    """A library control with this profile's references, severity and overrides."""
    library = control_library().controls.get(entry.control_id)
    if library is None:
        problems.append(document.problem((*at, "use"), f"no library control "
                                         f"{entry.control_id!r} (see profiles/controls/)"))
        return None
    shared = library.control
    severity = entry.severity or shared.severity
    if severity is None:
        problems.append(document.problem(at, f"control {shared.id!r}: the library sets no "
                                         f"severity, so the profile must"))
        return None
    merged.libraries_used.add(library.file)
    control = Control(id=shared.id, title=entry.title or shared.title, severity=severity,
                      references=[*shared.references, *entry.references],
                      rationale=entry.rationale or shared.rationale,
                      remediation=entry.remediation or shared.remediation,
                      checks=shared.checks if entry.checks is None else entry.checks,
                      # a profile that replaces the checks judges the control as it chose
                      partial=shared.partial_note if entry.checks is None else None)
    origin = _Origin(control, library.document, library.path) if entry.checks is None \
        else _Origin(control, document, at)
    problems += _layer_overrides(origin, entry.with_, document, (*at, "with"), "with")
    return origin


def _layer_overrides(origin: _Origin, overrides: CheckOverrides, document: Document,
                     at: DocumentPath, label: str) -> list[Problem]:
    """Record parameter overrides on a control's checks; later layers win per parameter."""
    problems = []
    used = {ref.check for ref in origin.control.checks}
    for check_id, values in overrides.items():
        if check_id not in used:
            problems.append(document.problem(
                (*at, check_id),
                f"{label}: control {origin.control.id!r} does not use check {check_id!r}"))
            continue
        previous = origin.overrides.get(check_id)
        origin.overrides[check_id] = _Override(
            {**(previous.values if previous else {}), **values}, document, (*at, check_id))
    return problems


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


def _plan_check(ref: CheckRef, origin: _Origin, path: DocumentPath,
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
    override = origin.overrides.get(ref.check)
    if override:
        try:
            params = spec.params.model_validate({**ref.with_, **override.values})
        except ValidationError as error:
            return override.document.problems_from(error, override.path)
    return PlannedCheck(spec, params, ref.timeout)
