"""The facts interface host checks read through, whatever the host is: this machine, a
directory holding a host's file system, or a remote host over SSH.

Transports only read. Commands are limited to the read-only invocations the host probes
declare (`audit.transports.reads`), an allow-list the transport itself enforces, so no probe
can talk a transport into changing a host.
"""

from __future__ import annotations

import fnmatch
import io
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from audit.errors import FactUnavailable, Unavailable
from audit.messages import says
from audit.transports.reads import Prefetch, declared_reads
from audit.vocabulary import Reason

# Config files are small; anything larger is not what a probe is looking for.
MAX_FILE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class CommandOutput:
    """What an allow-listed command printed, and how it ended."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class DirEntry:
    """One entry of a directory listing."""

    name: str
    is_dir: bool
    is_symlink: bool
    mode: int
    size: int
    known: bool = True          # False: listed by name only (its type and mode unseen)


class CommandRefused(FactUnavailable):
    """A command outside the allow-list: refused by the transport, never run."""

    def __init__(self, argv: Sequence[str]) -> None:
        super().__init__(Reason.REFUSED, says("command not in the read-only allow-list: "
                                              "{command}", command=str(list(argv))))


class Transport(ABC):
    """How one host is read. Implementations: local, offline, ssh."""

    kind: str

    @abstractmethod
    def describe(self) -> str:
        """A one-line description for the report's method section (never a secret)."""

    @abstractmethod
    def read_files(self, paths: Sequence[str]) -> dict[str, bytes | Unavailable]:
        """Read several files in one go; each path maps to its content or why it could not."""

    @abstractmethod
    def list_dir(self, path: str) -> list[DirEntry]:
        """The entries of a directory, sorted by name."""

    @abstractmethod
    def _execute(self, argv: tuple[str, ...], sudo: bool) -> CommandOutput:
        """Run an already-vetted command."""

    def prefetch(self, request: Prefetch) -> None:
        """Fetch ahead what `request` names; transports that read cheaply ignore it."""

    def glob(self, pattern: str) -> list[str]:
        """Absolute paths of the files and directories matching a shell pattern, sorted."""
        matches = ["/"]
        for part in PurePosixPath("/", pattern).parts[1:]:
            if not any(char in part for char in "*?["):
                matches = [str(PurePosixPath(base, part)) for base in matches]
                continue
            expanded = []
            for base in matches:
                try:
                    entries = self.list_dir(base)
                except FactUnavailable:
                    continue
                expanded += [str(PurePosixPath(base, entry.name)) for entry in entries
                             if fnmatch.fnmatchcase(entry.name, part)
                             and (part.startswith(".") or not entry.name.startswith("."))]
            matches = expanded
        return sorted(path for path in matches if self._exists(path))

    def _exists(self, path: str) -> bool:
        parent = str(PurePosixPath(path).parent)
        try:
            return any(entry.name == PurePosixPath(path).name for entry in self.list_dir(parent))
        except FactUnavailable:
            return False

    def read_file(self, path: str) -> bytes:
        """One file's content; raises FactUnavailable."""
        content = self.read_files([path])[path]
        if isinstance(content, Unavailable):
            raise content.error()
        return content

    def open_binary(self, path: str) -> BinaryIO:
        """A seekable stream of one regular file, for files too large to read at once;
        raises FactUnavailable. The default reads the file whole; transports that can
        stream override it."""
        return io.BytesIO(self.read_file(path))

    def read_text(self, path: str) -> str:
        """One file's content as text (undecodable bytes replaced)."""
        return self.read_file(path).decode("utf-8", errors="replace")

    def run(self, argv: Sequence[str], sudo: bool = False) -> CommandOutput:
        """Run an allow-listed read-only command; anything else is refused here."""
        command = tuple(argv)
        if not declared_reads().allows(command):
            raise CommandRefused(command)
        return self._execute(command, sudo)

    def close(self) -> None:
        """Release connections; the default holds none."""
