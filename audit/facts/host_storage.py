"""Where the MIS data lives: the mount and encryption under it, audit watches on it, and who
can read it. The data path comes from the check's parameters.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Protocol

from audit.errors import FactUnavailable
from audit.facts.context import TargetContext
from audit.facts.host_batch import (
    dir_files,
    live_output,
    optional_text,
    prefetch_host,
    strip_comment,
)
from audit.transports.reads import HostCommand, HostReads, Prefetch
from audit.vocabulary import Reason

LSBLK = HostCommand(("lsblk", "--json", "--output", "NAME,TYPE,FSTYPE,MOUNTPOINT,PKNAME"),
                    "/usr/bin/lsblk")
AUDIT_RULES_LOADED = HostCommand(("auditctl", "-l"), "/usr/sbin/auditctl", needs_root=True)
READS = HostReads(
    purpose="mounts and encryption under the data, audit watches",
    files=("/etc/fstab", "/etc/crypttab", "/etc/audit/audit.rules"),
    config_dirs=("/etc/audit/rules.d",),
    commands=(LSBLK, AUDIT_RULES_LOADED),
)
MAX_DATA_ENTRIES = 500


class DataPathParams(Protocol):
    """Parameters naming the MIS data directory."""

    @property
    def data_path(self) -> str: ...


class DataPathsParams(Protocol):
    """Parameters naming the directories that hold patient data."""

    @property
    def data_paths(self) -> list[str]: ...


def covers(mountpoint: str, path: str) -> bool:
    """Whether a path lies at or below a mount point (or watched directory)."""
    mount, target = PurePosixPath(mountpoint), PurePosixPath(path)
    return mount == target or mount in target.parents


@dataclass(frozen=True)
class EncryptionFacts:
    """The mount holding the data path and what backs it."""

    data_path: str
    source: str                         # "lsblk" or "files"
    mountpoint: str | None
    device: str | None
    location: str | None                # fstab line
    crypt_layers: list[str]             # live: crypt devices under the mount; files: crypttab lines
    crypttab: list[str]                 # crypttab entries (name device options), for evidence


def disk_encryption_facts(context: TargetContext, params: DataPathParams) -> EncryptionFacts:
    """The device under the data path and whether a LUKS volume backs it."""
    transport = prefetch_host(context)
    fstab = _fstab(optional_text(transport, "/etc/fstab") or "")
    crypttab = _crypttab(optional_text(transport, "/etc/crypttab") or "")
    mounts = [entry for entry in fstab if covers(entry[1], params.data_path)]
    mount = max(mounts, key=lambda entry: len(entry[1])) if mounts else None
    summary = [f"{name} {device} {options}" for name, device, options, _ in crypttab]
    live = _live_crypt_layers(live_output(transport, LSBLK.argv), mount[1] if mount else None)
    if live is not None and mount is not None:
        return EncryptionFacts(params.data_path, "lsblk", mount[1], mount[0], mount[3], live, summary)
    layers = []
    if mount is not None:
        name = mount[0].removeprefix("/dev/mapper/")
        layers = [location for entry_name, _, options, location in crypttab
                  if entry_name == name and _is_luks(options)]
    return EncryptionFacts(params.data_path, "files", mount[1] if mount else None,
                           mount[0] if mount else None, mount[3] if mount else None, layers, summary)


def _is_luks(options: str) -> bool:
    # cryptsetup treats an entry without a type option as LUKS (and falls back to plain).
    kinds = set(options.split(","))
    return "luks" in kinds or not kinds & {"plain", "tcrypt", "bitlk"}


def _fstab(text: str) -> list[tuple[str, str, str, str]]:
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = strip_comment(raw).split()
        if len(fields) >= 3:
            entries.append((fields[0], fields[1], fields[2], f"/etc/fstab:{number}"))
    return entries


def _crypttab(text: str) -> list[tuple[str, str, str, str]]:
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = strip_comment(raw).split()
        if len(fields) >= 2:
            options = fields[3] if len(fields) > 3 else ""
            entries.append((fields[0], fields[1], options, f"/etc/crypttab:{number}"))
    return entries


def _live_crypt_layers(lsblk_json: str | None, mountpoint: str | None) -> list[str] | None:
    """The crypt devices between the mount and the disk; None when lsblk does not show it."""
    if lsblk_json is None or mountpoint is None:
        return None
    try:
        devices = json.loads(lsblk_json).get("blockdevices", [])
    except (ValueError, AttributeError):
        return None
    chain = _chain_to(devices, mountpoint, [])
    if chain is None:
        return None
    return [f"{device.get('name')} ({device.get('type')})" for device in chain
            if device.get("type") == "crypt"]


def _chain_to(devices: list[Any], mountpoint: str, above: list[Any]) -> list[Any] | None:
    # lsblk nests a disk's partitions and the volumes built on them as children.
    for device in devices:
        if not isinstance(device, dict):
            continue
        chain = [*above, device]
        if device.get("mountpoint") == mountpoint:
            return chain
        found = _chain_to(device.get("children") or [], mountpoint, chain)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class AuditRule:
    """A file watch in the audit rules."""

    path: str
    permissions: str
    key: str | None
    location: str


@dataclass(frozen=True)
class AuditFacts:
    """The audit watches from every source, and whether auditing is switched off (`-e 0`).

    `watches` are what decides: the kernel's loaded rules when auditctl may run (the running
    system), else the rule files (configuration). `file_watches` and `loaded` keep both.
    """

    source: str                  # "auditctl -l" or "files"
    watches: list[AuditRule]
    disabled_at: str | None
    files: list[str]
    file_watches: list[AuditRule] = field(default_factory=list)
    loaded: list[AuditRule] | None = None     # None: the kernel's list could not be asked

    def disagreement(self, covers_path: Callable[[AuditRule], bool]) -> str | None:
        """How the files and the loaded rules differ on the watches `covers_path` keeps."""
        if self.loaded is None:
            return None
        in_files = {_watch_key(w) for w in self.file_watches if covers_path(w)}
        in_kernel = {_watch_key(w) for w in self.loaded if covers_path(w)}
        if in_files - in_kernel:
            return (f"configured in {', '.join(self.files)} but not loaded: "
                    + "; ".join(sorted(in_files - in_kernel)))
        if in_kernel - in_files:
            return "loaded but in no rule file (lost at the next boot): " + \
                "; ".join(sorted(in_kernel - in_files))
        return None


def _watch_key(watch: AuditRule) -> str:
    return f"{watch.path} -p {''.join(sorted(permission_letters(watch.permissions)))}"


def audit_facts(context: TargetContext) -> AuditFacts:
    """Watch rules from the rule files (rules.d and audit.rules) and, when auditctl may run,
    from the kernel; the kernel's decide, the files' are kept to show a disagreement."""
    transport = prefetch_host(context)
    paths = ["/etc/audit/audit.rules",
             *sorted(p for p in dir_files(transport, "/etc/audit/rules.d") if p.endswith(".rules"))]
    watches, disabled, files = [], None, []
    for path in paths:
        text = optional_text(transport, path)
        if text is None:
            continue
        files.append(path)
        found, off = parse_audit_rules(text, path)
        watches += found
        disabled = disabled or off
    live = live_output(transport, AUDIT_RULES_LOADED.argv)
    if live is None:
        return AuditFacts("files", watches, disabled, files, watches)
    loaded, live_disabled = parse_audit_rules(live, "auditctl -l")
    return AuditFacts("auditctl -l", loaded, live_disabled, files, watches, loaded)


def parse_audit_rules(text: str, source: str) -> tuple[list[AuditRule], str | None]:
    """`-w PATH -p PERMS -k KEY` and `-a ... -F dir=|path= -F perm=` rules, and `-e 0`."""
    watches, disabled = [], None
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            words = shlex.split(strip_comment(raw))
        except ValueError:
            continue
        location = f"{source}:{number}"
        options = _audit_options(words)
        if options.get("-e") == "0":
            disabled = location
        if "-w" in options:
            watches.append(AuditRule(options["-w"], options.get("-p", "rwxa"), options.get("-k"),
                                     location))
        fields = dict(value.split("=", 1) for value in options.get("-F*", "").split("\n")
                      if "=" in value)
        path = fields.get("dir") or fields.get("path")
        if "-a" in options and path:
            watches.append(AuditRule(path, fields.get("perm", "rwxa"),
                                     fields.get("key") or options.get("-k"), location))
    return watches, disabled


def _audit_options(words: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for flag, value in itertools.pairwise(words):
        if flag == "-F":
            options["-F*"] = options.get("-F*", "") + value + "\n"
        elif flag.startswith("-") and flag not in options:
            options[flag] = value
    return options


@dataclass(frozen=True)
class PathMode:
    """A data directory or one of its entries, with its permission bits."""

    path: str
    mode: int
    is_dir: bool


@dataclass(frozen=True)
class DataPermissions:
    """The permission bits of each data directory and of what it directly holds."""

    entries: list[PathMode]
    missing: list[str]


def data_permissions(context: TargetContext, params: DataPathsParams) -> DataPermissions:
    """Modes of the data directories and their entries (names are listed, never read)."""
    transport = context.transport
    parents = tuple(str(PurePosixPath(path).parent) for path in params.data_paths)
    transport.prefetch(Prefetch(dirs=(*parents, *params.data_paths)))
    entries, missing = [], []
    for path in params.data_paths:
        own = _own_entry(context, path)
        if own is None:
            missing.append(path)
            continue
        entries.append(own)
        if own.is_dir:
            children = transport.list_dir(path)[:MAX_DATA_ENTRIES]
            entries += [PathMode(f"{path.rstrip('/')}/{child.name}", child.mode, child.is_dir)
                        for child in children if not child.is_symlink]
    return DataPermissions(entries, missing)


def _own_entry(context: TargetContext, path: str) -> PathMode | None:
    parent, name = PurePosixPath(path).parent, PurePosixPath(path).name
    try:
        listing = context.transport.list_dir(str(parent))
    except FactUnavailable as error:
        if error.reason is Reason.NOT_FOUND:
            return None
        raise
    for entry in listing:
        if entry.name == name:
            return PathMode(path, entry.mode, entry.is_dir)
    return None


WORLD_READ = 0o004
WORLD_WRITE = 0o002


def world_access(mode: int) -> str:
    """'rw', 'r', 'w' or '' for the "other" permission bits that matter for data."""
    return ("r" if mode & WORLD_READ else "") + ("w" if mode & WORLD_WRITE else "")


# Used by checks to compare permission letters without caring about their order.
def permission_letters(value: str) -> set[str]:
    """The set of r/w/x/a letters in an audit permission string."""
    return set(re.sub(r"[^rwxa]", "", value.lower()))
