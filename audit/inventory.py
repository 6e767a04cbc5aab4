"""Loading inventories and waivers, and the scope rule: a target outside the declared
scope is refused before anything is contacted.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import socket
import stat
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from pydantic import TypeAdapter

from audit.errors import InputError, Problem
from audit.model.attestation import Attestation, AttestationEvidence, AttestationRecord
from audit.model.inventory import Inventory, Scope, SshCredential, Target
from audit.model.waiver import Waiver
from audit.vocabulary import Role
from audit.yamlfile import Document, load_document

LOCAL_TARGET_NAME = "localhost"


@dataclass(frozen=True)
class LoadedInventory:
    """An inventory with the directory its relative paths are relative to."""

    inventory: Inventory
    base_dir: Path
    source: str | None          # None: the implicit inventory of this machine

    def sha256(self) -> str:
        """A fingerprint of what the inventory says (not of its file's comments or layout),
        so the history can tell that the audited estate changed between two runs."""
        canonical = json.dumps(self.inventory.model_dump(mode="json"), sort_keys=True,
                               ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def local_inventory() -> LoadedInventory:
    """With no inventory, the target is this machine over the local transport."""
    inventory = Inventory(
        organisation=f"This machine ({socket.gethostname()})",
        scope=Scope(paths=["/"]),
        targets=[Target(name=LOCAL_TARGET_NAME, roles=[Role.HOST], transport="local")],
    )
    return LoadedInventory(inventory, Path.cwd(), None)


def load_inventory(path: Path | str) -> LoadedInventory:
    """Load and cross-check an inventory file."""
    document = load_document(path)
    inventory = document.validate(Inventory)
    base_dir = Path(path).resolve().parent
    problems = _cross_check(inventory, document, base_dir)
    if problems:
        raise InputError(problems)
    return LoadedInventory(inventory, base_dir, str(path))


def _cross_check(inventory: Inventory, document: Document, base_dir: Path) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, target in enumerate(inventory.targets):
        at = ("targets", index)
        if target.name in seen:
            problems.append(document.problem((*at, "name"), f"duplicate target name {target.name!r}"))
        seen.add(target.name)
        if target.ssh is not None:
            credential = inventory.credentials.get(target.ssh)
            if credential is None:
                problems.append(document.problem((*at, "ssh"), f"no credential named {target.ssh!r}"))
            elif not isinstance(credential, SshCredential):
                problems.append(document.problem((*at, "ssh"),
                                                 f"credential {target.ssh!r} is not of type ssh"))
        for service_index, service in enumerate(target.services):
            if service.credential and service.credential not in inventory.credentials:
                problems.append(document.problem((*at, "services", service_index, "credential"),
                                                 f"no credential named {service.credential!r}"))
        if target.host_transport == "offline" and target.root \
                and not _is_directory(target.root, base_dir):
            problems.append(document.problem((*at, "root"),
                                             f"offline root {target.root!r} is not a directory"))
        problems.extend(_scope_problems(target, inventory.scope, document, at))
    return problems


def _is_directory(root: str, base_dir: Path) -> bool:
    """Whether an offline root names a directory; a name that cannot name one does not."""
    try:
        path = Path(root).expanduser()
        return (path if path.is_absolute() else base_dir / path).is_dir()
    except (OSError, RuntimeError, ValueError):   # too long, `~nobody`, a NUL
        return False


def _scope_problems(target: Target, scope: Scope, document: Document,
                    at: tuple[str | int, ...]) -> list[Problem]:
    problems = []
    if target.address is not None and not address_in_scope(target.address, scope):
        problems.append(document.problem((*at, "address"),
                                         f"target {target.name!r} address {target.address} is "
                                         f"outside the inventory's scope"))
    hosts: list[tuple[tuple[str | int, ...], str | None]] = [
        (("urls", i), urlsplit(url).hostname) for i, url in enumerate(target.urls)]
    if target.login:
        hosts.append((("login", "url"), urlsplit(target.login.url).hostname))
    for path, host in hosts:
        if not host or not address_in_scope(host, scope):
            problems.append(document.problem((*at, *path), f"target {target.name!r}: host "
                                             f"{host!r} is outside the inventory's scope"))
    for index, item in enumerate(target.paths):
        if not path_in_scope(item, scope):
            problems.append(document.problem((*at, "paths", index),
                                             f"target {target.name!r}: path {item} is outside "
                                             f"the inventory's scope"))
    return problems


def address_in_scope(address: str, scope: Scope) -> bool:
    """An IP inside a scope network, or a host name the scope lists (never resolved)."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address.lower().rstrip(".") in {host.lower().rstrip(".") for host in scope.hosts}
    return any(ip in network for network in scope.networks) or str(ip) in scope.hosts


def path_in_scope(path: str, scope: Scope) -> bool:
    """A path at or below one of the scope's paths."""
    candidate = PurePosixPath(path)
    return any(candidate == PurePosixPath(root) or PurePosixPath(root) in candidate.parents
               for root in scope.paths)


@dataclass(frozen=True)
class LoadedWaivers:
    """Waivers sorted by whether they can still apply on the run's date."""

    active: list[Waiver]
    expired: list[Waiver]
    source: str | None


_WAIVER_LIST = TypeAdapter(list[Waiver])
_ATTESTATION_LIST = TypeAdapter(list[Attestation])


def _listed(path: Path | str, key: str) -> tuple[Document, tuple[str, ...]]:
    """A file holding a list, or a mapping whose only key `key` holds it; refused otherwise."""
    document = load_document(path)
    prefix: tuple[str, ...] = ()
    if isinstance(document.data, dict) and set(document.data) == {key}:
        document = Document(document.file, document.data[key],
                            {location[1:]: value for location, value in document.locations.items()
                             if location[:1] == (key,)})
        prefix = (key,)
    if not isinstance(document.data, list):
        raise InputError([document.problem((), f"expected a list of {key} "
                                                f"(or a mapping with a '{key}' list)")])
    return document, prefix


def _item_label(prefix: tuple[str, ...], index: int) -> str:
    return f"{'.'.join(prefix) + '.' if prefix else ''}[{index}]"


def load_waivers(path: Path | str, today: date, expired_is_error: bool = False) -> LoadedWaivers:
    """Load a waivers file: a list, or a mapping with a `waivers` list."""
    document, prefix = _listed(path, "waivers")
    waivers: list[Waiver] = document.validate_adapter(_WAIVER_LIST)
    expired = [w for w in waivers if w.expires < today]
    if expired and expired_is_error:
        raise InputError([document.problem((index,), f"{_item_label(prefix, index)}: waiver for "
                                           f"{w.control} expired on {w.expires.isoformat()}")
                          for index, w in enumerate(waivers) if w in expired])
    return LoadedWaivers([w for w in waivers if w not in expired], expired, str(path))


@dataclass(frozen=True)
class LoadedAttestations:
    """Attestations as results.json records them, sorted by whether they still apply."""

    active: list[AttestationRecord]
    expired: list[AttestationRecord]
    source: str | None


def load_attestations(path: Path | str, today: date,
                      expired_is_error: bool = False) -> LoadedAttestations:
    """Load an attestations file (a list, or a mapping with an `attestations` list); each
    evidence file must exist and is hashed, so the record pins what the assessor saw."""
    document, prefix = _listed(path, "attestations")
    attestations: list[Attestation] = document.validate_adapter(_ATTESTATION_LIST)
    base_dir = Path(path).resolve().parent
    problems: list[Problem] = []
    records = []
    for index, attestation in enumerate(attestations):
        evidence = None
        if attestation.evidence is not None:
            evidence = _hashed(base_dir, attestation.evidence)
            if evidence is None:
                problems.append(document.problem((index, "evidence"), f"evidence file "
                                                 f"{attestation.evidence!r} is not a readable file"))
        if expired_is_error and attestation.valid_until < today:
            problems.append(document.problem((index,), f"{_item_label(prefix, index)}: "
                                             f"attestation for {attestation.control} expired on "
                                             f"{attestation.valid_until.isoformat()}"))
        records.append(AttestationRecord(
            control=attestation.control, target=attestation.target, status=attestation.status,
            explanation=attestation.explanation, attested_by=attestation.attested_by,
            date=attestation.date, valid_until=attestation.valid_until,
            frequency=attestation.frequency, evidence=evidence))
    if problems:
        raise InputError(problems)
    return LoadedAttestations([r for r in records if r.valid_until >= today],
                              [r for r in records if r.valid_until < today], str(path))


def _hashed(base_dir: Path, name: str) -> AttestationEvidence | None:
    """The file's SHA-256 and size, or None when it cannot be read as a regular file."""
    try:
        path = Path(name).expanduser()
        path = path if path.is_absolute() else base_dir / path
        with open(path, "rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                return None
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
            size = status.st_size
    except (OSError, RuntimeError, ValueError):
        return None
    return AttestationEvidence(file=name, sha256=digest, size=size)
