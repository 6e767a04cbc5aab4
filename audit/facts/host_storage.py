"""What protects the MIS data where it lives: the mount and encryption under each data
location, the audit watches on it, and who can read it. The locations come from
`audit.facts.host_data`.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import PurePosixPath
from typing import Any

from audit.errors import FactUnavailable
from audit.facts.context import TargetContext
from audit.facts.host_batch import (
    dir_files,
    live_output,
    optional_text,
    prefetch_host,
    strip_comment,
)
from audit.facts.host_data import (
    DataLocation,
    DataLocationParams,
    DataLocations,
    data_locations,
    path_entry,
)
from audit.messages import Message, says
from audit.transports.base import DirEntry
from audit.transports.reads import HostCommand, HostReads, Prefetch

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


def covers(mountpoint: str, path: str) -> bool:
    """Whether a path lies at or below a mount point (or watched directory)."""
    mount, target = PurePosixPath(mountpoint), PurePosixPath(path)
    return mount == target or mount in target.parents


@dataclass(frozen=True)
class LocationMount:
    """The mount holding one data location and what backs it: the running system's mount
    table (lsblk) where it answers, else /etc/fstab and /etc/crypttab."""

    location: DataLocation
    source: str                         # "lsblk" or "files"
    mountpoint: str | None
    device: str | None
    fstab_line: str | None
    crypt_layers: list[str]             # live: crypt devices under the mount; files: crypttab lines
    disagreement: Message | None = None     # fstab and the live mounts differ for it

    def observed(self) -> dict[str, object]:
        """This location's mount, for the evidence."""
        return {"location": self.location.describe(), "mountpoint": self.mountpoint,
                "device": self.device, "source": self.source, "encryption": self.crypt_layers}


@dataclass(frozen=True)
class EncryptionFacts:
    """The mount under every data location, and the crypttab entries."""

    mounts: list[LocationMount]
    locations: DataLocations
    crypttab: list[str]                 # crypttab entries (name device options), for evidence


def disk_encryption_facts(context: TargetContext, params: DataLocationParams) -> EncryptionFacts:
    """The device under each data location and whether a LUKS volume backs it."""
    locations = context.gather(data_locations, params.locations())
    transport = prefetch_host(context)
    fstab = _fstab(optional_text(transport, "/etc/fstab") or "")
    crypttab = _crypttab(optional_text(transport, "/etc/crypttab") or "")
    devices = _lsblk_devices(live_output(transport, LSBLK.argv))
    mounts = [_mount_of(location, fstab, crypttab, devices) for location in locations.present]
    return EncryptionFacts(mounts, locations,
                           [f"{name} {device} {options}" for name, device, options, _ in crypttab])


def _mount_of(location: DataLocation, fstab: list[tuple[str, str, str, str]],
              crypttab: list[tuple[str, str, str, str]], devices: list[Any] | None
              ) -> LocationMount:
    configured = max((entry for entry in fstab if covers(entry[1], location.path)),
                     key=lambda entry: len(entry[1]), default=None)
    live = _live_mount(devices or [], location.path)
    if live is not None:
        mountpoint, chain = live
        line = configured[3] if configured and configured[1] == mountpoint else None
        disagreement = None
        if configured is not None and configured[1] != mountpoint:
            disagreement = says("{line} mounts {device} at {configured}, but the running "
                                "system has {path} on {mountpoint}", line=configured[3],
                                device=configured[0], configured=configured[1],
                                path=location.path, mountpoint=mountpoint)
        return LocationMount(location, "lsblk", mountpoint, str(chain[-1].get("name")), line,
                             [f"{d.get('name')} ({d.get('type')})" for d in chain
                              if d.get("type") == "crypt"], disagreement)
    if configured is None:
        return LocationMount(location, "files", None, None, None, [])
    name = configured[0].removeprefix("/dev/mapper/")
    layers = [line for entry_name, _, options, line in crypttab
              if entry_name == name and _is_luks(options)]
    return LocationMount(location, "files", configured[1], configured[0], configured[3], layers)


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


def _lsblk_devices(lsblk_json: str | None) -> list[Any] | None:
    """lsblk's device tree; None when lsblk could not say."""
    if lsblk_json is None:
        return None
    try:
        devices = json.loads(lsblk_json).get("blockdevices", [])
    except (ValueError, AttributeError):
        return None
    return devices if isinstance(devices, list) else None


def _live_mount(devices: list[Any], path: str) -> tuple[str, list[Any]] | None:
    """The deepest live mount holding the path, with the devices from the disk up to it."""
    mounts = [(str(chain[-1]["mountpoint"]), chain) for chain in _chains(devices, [])
              if covers(str(chain[-1]["mountpoint"]), path)]
    return max(mounts, key=lambda mount: len(mount[0]), default=None)


def _chains(devices: list[Any], above: list[Any]) -> Iterator[list[Any]]:
    # lsblk nests a disk's partitions and the volumes built on them as children.
    for device in devices:
        if not isinstance(device, dict):
            continue
        chain = [*above, device]
        if isinstance(device.get("mountpoint"), str):
            yield chain
        yield from _chains(device.get("children") or [], chain)


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

    def disagreement(self, covers_path: Callable[[AuditRule], bool]) -> Message | None:
        """How the files and the loaded rules differ on the watches `covers_path` keeps."""
        if self.loaded is None:
            return None
        in_files = {_watch_key(w) for w in self.file_watches if covers_path(w)}
        in_kernel = {_watch_key(w) for w in self.loaded if covers_path(w)}
        if in_files - in_kernel:
            return says("configured in {files} but not loaded: {rules}",
                        files=", ".join(self.files), rules="; ".join(sorted(in_files - in_kernel)))
        if in_kernel - in_files:
            return says("loaded but in no rule file (lost at the next boot): {rules}",
                        rules="; ".join(sorted(in_kernel - in_files)))
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


@dataclass(frozen=True)
class WatchedData:
    """The audit watches and the data locations they must cover."""

    audit: AuditFacts
    locations: DataLocations


def data_watches(context: TargetContext, params: DataLocationParams) -> WatchedData:
    """The audit facts beside the data locations."""
    return WatchedData(context.gather(audit_facts), context.gather(data_locations,
                                                                   params.locations()))


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
    known: bool = True            # False: listed by name only, its mode unseen


@dataclass(frozen=True)
class DataPermissions:
    """The permission bits of each data location and of what it directly holds, and of the
    directory holding each location (whether other users can reach it at all)."""

    entries: list[PathMode]
    locations: DataLocations
    parents: dict[str, PathMode] = field(default_factory=dict)    # by location

    @cached_property
    def _by_path(self) -> dict[str, PathMode]:
        return {entry.path: entry for entry in self.entries}

    def reachable(self, entry: PathMode) -> bool:
        """Whether other users may search the directory holding `entry` (True when its mode
        could not be seen: then nothing rules them out)."""
        holder = self._by_path.get(str(PurePosixPath(entry.path).parent)) \
            or self.parents.get(entry.path)
        return holder is None or not holder.known or bool(holder.mode & WORLD_SEARCH)


def data_permissions(context: TargetContext, params: DataLocationParams) -> DataPermissions:
    """Modes of the data locations, their entries and the directories holding them (names
    are listed, never read)."""
    locations = context.gather(data_locations, params.locations())
    transport = context.transport
    paths = [location.path for location in locations.present]
    parents = [str(PurePosixPath(path).parent) for path in paths]
    holders = [str(PurePosixPath(parent).parent) for parent in parents]
    transport.prefetch(Prefetch(dirs=(*holders, *parents, *paths)))
    entries, guards = [], {}
    for path, parent in zip(paths, parents, strict=True):
        entry = path_entry(transport, path)
        if entry is None:
            continue
        own = _path_mode(path, entry)
        entries.append(own)
        with suppress(FactUnavailable):      # unseen: the location counts as reachable
            holder = path_entry(transport, parent)
            if holder is not None:
                guards[path] = _path_mode(parent, holder)
        if own.is_dir:
            children = transport.list_dir(path)[:MAX_DATA_ENTRIES]
            entries += [_path_mode(f"{path.rstrip('/')}/{child.name}", child)
                        for child in children if not child.is_symlink]
    return DataPermissions(entries, locations, guards)


def _path_mode(path: str, entry: DirEntry) -> PathMode:
    return PathMode(path, entry.mode, entry.is_dir, entry.known)


WORLD_READ = 0o004
WORLD_WRITE = 0o002
WORLD_SEARCH = 0o001


def world_access(mode: int) -> str:
    """'rw', 'r', 'w' or '' for the "other" permission bits that matter for data."""
    return ("r" if mode & WORLD_READ else "") + ("w" if mode & WORLD_WRITE else "")


# Used by checks to compare permission letters without caring about their order.
def permission_letters(value: str) -> set[str]:
    """The set of r/w/x/a letters in an audit permission string."""
    return set(re.sub(r"[^rwxa]", "", value.lower()))
