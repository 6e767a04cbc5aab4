"""The manifest of a sealed run: an in-toto Statement v1 whose subjects are the run's files.

Subjects are the run's outputs (named relative to the run directory), the input files it was
given (inventory, waivers, attestations: hashed when sealed) and the evidence files it read
(evidence documents and attestation evidence, named as the inventory or attestations file
gives them, with the digest the run itself recorded: a file changed since then cannot be
sealed). The predicate says who sealed what run, when, with which certificate.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from audit import __version__
from audit.model.results import RunResults
from audit.plan import ORGANISATION_TARGET
from audit.seal import SEAL_FILES, SealError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "urn:mis-audit:seal:v1"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class Kind(StrEnum):
    """What a subject is to the run."""

    OUTPUT = "output"               # written by the run, in the run directory
    INPUT = "input"                 # inventory, waivers, attestations file (hashed when sealed)
    EVIDENCE = "evidence"           # an evidence document the run read and hashed
    ATTESTATION = "attestation-evidence"    # a file an attestation names, hashed by the run


@dataclass(frozen=True)
class Subject:
    """One file of the manifest: where it is, what it is, and its digest."""

    name: str
    kind: Kind
    path: Path
    sha256: str
    size: int

    def descriptor(self) -> dict[str, Any]:
        """The in-toto ResourceDescriptor."""
        annotations: dict[str, Any] = {"kind": self.kind.value, "size": self.size}
        descriptor: dict[str, Any] = {"name": self.name, "digest": {"sha256": self.sha256}}
        if self.kind is not Kind.OUTPUT:
            descriptor["uri"] = self.path.as_uri()
            annotations["path"] = str(self.path)
        descriptor["annotations"] = annotations
        return descriptor


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file; raises OSError."""
    with open(path, "rb") as handle:
        return (hashlib.file_digest(handle, "sha256").hexdigest(),
                os.fstat(handle.fileno()).st_size)


def output_files(run_dir: Path) -> list[str]:
    """The run's own files, relative to its directory: not hidden, not the seal's own."""
    names = []
    for path in sorted(run_dir.rglob("*")):
        relative = path.relative_to(run_dir)
        if any(part.startswith(".") for part in relative.parts) or path.is_dir():
            continue
        if relative.as_posix() in SEAL_FILES:
            continue
        if path.is_symlink() or not path.is_file():
            raise SealError(f"{path}: not a regular file; a run directory holds only files")
        names.append(relative.as_posix())
    return names


def _resolve(name: str, base: str | None, what: str) -> Path:
    path = Path(name).expanduser()
    if path.is_absolute():
        return path
    if base is None:
        raise SealError(f"results.json does not record where the {what} file was, so "
                        f"{name!r} cannot be found (written by an older mis-audit: run again)")
    return Path(base).parent / path


def _recorded(name: str, base: str | None, what: str, kind: Kind, sha256: str,
              size: int) -> Subject:
    """An evidence file as the run recorded it; refused if it has changed since."""
    path = _resolve(name, base, what)
    try:
        now, now_size = file_digest(path)
    except OSError as error:
        raise SealError(f"evidence file {name} ({path}): {error.strerror or error}") from None
    if (now, now_size) != (sha256, size):
        raise SealError(f"evidence file {name} ({path}) changed since the run (SHA-256 "
                        f"recorded {sha256}, now {now}): it cannot be sealed")
    return Subject(name, kind, path, sha256, size)


def _evidence_records(results: RunResults) -> Iterator[tuple[str, str, int]]:
    for result in results.results:
        details = result.evidence.details
        file, sha256, size = details.get("file"), details.get("sha256"), details.get("size")
        if (result.target == ORGANISATION_TARGET and isinstance(file, str)
                and isinstance(sha256, str) and _SHA256.fullmatch(sha256)
                and isinstance(size, int)):
            yield file, sha256, size


def evidence_subjects(results: RunResults) -> list[Subject]:
    """The evidence documents and attestation files the run read, deduplicated."""
    subjects: dict[tuple[Kind, str], Subject] = {}
    for file, sha256, size in _evidence_records(results):
        if (Kind.EVIDENCE, file) not in subjects:
            subjects[(Kind.EVIDENCE, file)] = _recorded(file, results.inputs.inventory,
                                                        "inventory", Kind.EVIDENCE, sha256, size)
    outcome = results.attestations
    for record in (*outcome.applied, *outcome.expired, *outcome.unmatched):
        evidence = record.evidence
        if evidence is not None and (Kind.ATTESTATION, evidence.file) not in subjects:
            subjects[(Kind.ATTESTATION, evidence.file)] = _recorded(
                evidence.file, results.inputs.attestations, "attestations", Kind.ATTESTATION,
                evidence.sha256, evidence.size)
    return list(subjects.values())


def input_subjects(results: RunResults) -> list[Subject]:
    """The inventory, waivers and attestations files, hashed as they are now."""
    subjects = []
    for recorded in (results.inputs.inventory, results.inputs.waivers,
                     results.inputs.attestations):
        if recorded is None:
            continue
        path = Path(recorded)
        try:
            sha256, size = file_digest(path)
        except OSError as error:
            raise SealError(f"input file {path}: {error.strerror or error}") from None
        subjects.append(Subject(path.name, Kind.INPUT, path, sha256, size))
    return subjects


def run_subjects(run_dir: Path, results: RunResults) -> list[Subject]:
    """Every file the manifest lists: outputs, inputs, then evidence."""
    outputs = []
    for name in output_files(run_dir):
        try:
            sha256, size = file_digest(run_dir / name)
        except OSError as error:
            raise SealError(f"{run_dir / name}: {error.strerror or error}") from None
        outputs.append(Subject(name, Kind.OUTPUT, run_dir / name, sha256, size))
    return [*outputs, *input_subjects(results), *evidence_subjects(results)]


def build_manifest(results: RunResults, subjects: list[Subject], sealed_at: datetime,
                   assessor: dict[str, str], certificate: dict[str, str]) -> bytes:
    """The manifest's bytes: exactly what is signed."""
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [subject.descriptor() for subject in subjects],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "sealed_at": sealed_at.isoformat(),
            "sealed_by": {"name": "mis-audit", "version": __version__},
            "assessor": assessor,
            "certificate": certificate,
            "run": {
                "tool": results.tool.model_dump(mode="json"),
                "schema_version": results.schema_version,
                "started_at": results.started_at.isoformat(),
                "finished_at": results.finished_at.isoformat(),
                "organisation": results.organisation, "system": results.system,
                "score": results.score, "verdict": results.verdict.value,
                "inventory_sha256": results.inventory_sha256,
            },
            "profiles": [{"id": record.id, "version": record.version, "source": record.source,
                          "sha256": record.sha256} for record in results.profiles],
        },
    }
    return (json.dumps(statement, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


@dataclass(frozen=True)
class Mismatch:
    """The first subject whose file is not what was sealed."""

    name: str
    reason: str


def _subject_path(run_dir: Path, descriptor: dict[str, Any]) -> Path:
    name = str(descriptor.get("name", ""))
    annotations = descriptor.get("annotations") or {}
    if annotations.get("kind") == Kind.OUTPUT.value:
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise SealError(f"manifest names an output outside the run directory: {name!r}")
        return run_dir / relative
    return Path(str(annotations.get("path", name)))


def check_subjects(run_dir: Path, statement: dict[str, Any]) -> tuple[int, Mismatch | None]:
    """Re-hash every subject: how many matched before the first that does not (if any)."""
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise SealError("manifest lists no subjects")
    for index, descriptor in enumerate(subjects):
        name = str(descriptor.get("name"))
        path = _subject_path(run_dir, descriptor)
        expected = descriptor.get("digest", {}).get("sha256")
        try:
            actual, _ = file_digest(path)
        except OSError as error:
            return index, Mismatch(name, f"cannot be read ({path}: {error.strerror or error})")
        if actual != expected:
            return index, Mismatch(name, f"differs from the sealed file ({path}: SHA-256 "
                                         f"sealed {expected}, now {actual})")
    return len(subjects), None


def unsealed_outputs(run_dir: Path, statement: dict[str, Any]) -> list[str]:
    """Files in the run directory that the manifest does not list (added after sealing)."""
    sealed = {str(d.get("name")) for d in statement.get("subject", [])
              if (d.get("annotations") or {}).get("kind") == Kind.OUTPUT.value}
    try:
        present = output_files(run_dir)
    except SealError:
        return []
    return [name for name in present if name not in sealed]
