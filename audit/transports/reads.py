"""What the host probes read, declared by each probe module as its `READS`.

One declaration feeds everything derived from it: the batch a remote host is asked for in
one round trip, the transports' command allow-list (and which commands need root), the
README's table of reads and the sudoers lines `mis-audit sudoers` prints for the audit
account. The probe modules are listed by name, as the check modules are, and imported on
first use: the transports that enforce the allow-list sit below the probes that declare it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import TypeVar

T = TypeVar("T")

HOST_PROBE_MODULES: tuple[str, ...] = (
    "audit.facts.host",
    "audit.facts.host_auth",
    "audit.facts.host_storage",
    "audit.facts.host_data",
    "audit.facts.host_firewall",
    "audit.facts.host_maintenance",
    "audit.facts.host_databases",
    "audit.facts.host_services",
)


@dataclass(frozen=True)
class Prefetch:
    """Facts a probe is about to read: a remote transport fetches them in one round trip.

    `dirs` are listed; `config_dirs` are listed and the regular files directly inside them
    read too (sudoers.d, sshd_config.d, audit/rules.d); `globs` are expanded and the
    matching files read.
    """

    files: tuple[str, ...] = ()
    dirs: tuple[str, ...] = ()
    config_dirs: tuple[str, ...] = ()
    globs: tuple[str, ...] = ()
    commands: tuple[tuple[str, ...], ...] = field(default=())


@dataclass(frozen=True)
class HostCommand:
    """A read-only command a probe runs, exactly as written (no other arguments)."""

    argv: tuple[str, ...]
    path: str                   # where Debian installs it: sudoers names commands by path
    needs_root: bool = False    # shows nothing useful otherwise: `sudo -n` where the account may
    batched: bool = True        # asked in the host's one batch; slow ones only when a check asks

    @property
    def text(self) -> str:
        """The command line as typed."""
        return " ".join(self.argv)


@dataclass(frozen=True)
class HostReads:
    """The files, directories and commands one probe module reads, and why."""

    purpose: str = ""
    files: tuple[str, ...] = ()
    dirs: tuple[str, ...] = ()          # listed only
    config_dirs: tuple[str, ...] = ()   # listed, and the files directly inside read
    globs: tuple[str, ...] = ()         # expanded, and the matching files read
    commands: tuple[HostCommand, ...] = field(default=())

    def prefetch(self) -> Prefetch:
        """The batch a remote transport fetches ahead in one round trip."""
        return Prefetch(files=self.files, dirs=self.dirs, config_dirs=self.config_dirs,
                        globs=self.globs,
                        commands=tuple(c.argv for c in self.commands if c.batched))


@dataclass(frozen=True)
class DeclaredReads:
    """Every host probe's reads, and what follows from them."""

    probes: tuple[HostReads, ...]

    @property
    def commands(self) -> dict[tuple[str, ...], HostCommand]:
        """Every declared command by its argv."""
        return {command.argv: command for reads in self.probes for command in reads.commands}

    def allows(self, argv: tuple[str, ...]) -> bool:
        """Whether a probe declared exactly this command."""
        return argv in self.commands

    def needs_root(self, argv: tuple[str, ...]) -> bool:
        """Whether a declared command shows nothing useful without root."""
        command = self.commands.get(argv)
        return command is not None and command.needs_root

    def prefetch(self) -> Prefetch:
        """One batch of everything the probes read ahead."""
        parts = [reads.prefetch() for reads in self.probes]
        return Prefetch(files=_union(p.files for p in parts), dirs=_union(p.dirs for p in parts),
                        config_dirs=_union(p.config_dirs for p in parts),
                        globs=_union(p.globs for p in parts),
                        commands=_union(p.commands for p in parts))


def _union(groups: Iterable[tuple[T, ...]]) -> tuple[T, ...]:
    # the first declaration's order is kept: the batch reads in a stable order
    return tuple(dict.fromkeys(item for group in groups for item in group))


@cache
def declared_reads() -> DeclaredReads:
    """The reads of every module in HOST_PROBE_MODULES (each defines `READS`)."""
    return DeclaredReads(tuple(importlib.import_module(name).READS
                               for name in HOST_PROBE_MODULES))
