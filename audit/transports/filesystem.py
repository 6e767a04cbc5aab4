"""Transports that read a file system directly: this machine (`local`) or a directory that
holds a host's file system (`offline`: a mounted image, a container root, a config bundle).
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from audit.errors import FactUnavailable, Unavailable
from audit.messages import says
from audit.transports.base import MAX_FILE_BYTES, CommandOutput, DirEntry, Transport
from audit.vocabulary import Reason

MAX_SYMLINK_HOPS = 40
COMMAND_TIMEOUT_SECONDS = 20.0


def _unavailable_from_os_error(path: str, error: OSError) -> Unavailable:
    if error.errno in (errno.EACCES, errno.EPERM):
        return Unavailable(Reason.PERMISSION_DENIED, says("{path}: permission denied", path=path))
    if error.errno in (errno.ENOENT, errno.ENOTDIR):
        return Unavailable(Reason.NOT_FOUND, says("{path}: no such file", path=path))
    if error.errno == errno.ELOOP:
        return Unavailable(Reason.NOT_FOUND,
                           says("{path}: too many levels of symbolic links", path=path))
    return Unavailable(Reason.UNREACHABLE,
                       says("{where}: {error}", where=path, error=str(error.strerror)))


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:      # a symbolic-link loop: listed, so that reading it says what is wrong
        return False


class FilesystemTransport(Transport):
    """Reads files below `root`, resolving symbolic links as the host itself would."""

    kind = "offline"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def describe(self) -> str:
        return f"offline file system at {self.root}"

    def host_path(self, path: str) -> Path:
        """Where a host path lives on this machine; symlinks never lead out of the root."""
        parts = list(PurePosixPath("/", path).parts[1:])
        resolved: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = self.root.joinpath(*resolved, part)
            if candidate.is_symlink():
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links")
                target = PurePosixPath(os.readlink(candidate))
                if target.is_absolute():
                    resolved = []
                parts = list(target.parts[1:] if target.is_absolute() else target.parts) + parts
                continue
            resolved.append(part)
        return self.root.joinpath(*resolved)

    def read_files(self, paths: Sequence[str]) -> dict[str, bytes | Unavailable]:
        return {path: self._read_one(path) for path in paths}

    def _read_one(self, path: str) -> bytes | Unavailable:
        try:
            local = self.host_path(path)
            if local.stat().st_size > MAX_FILE_BYTES:
                return Unavailable(Reason.REFUSED, says("{path}: larger than {size} bytes",
                                                        path=path, size=MAX_FILE_BYTES))
            with open(local, "rb") as handle:
                return handle.read(MAX_FILE_BYTES)
        except OSError as error:
            return _unavailable_from_os_error(path, error)

    def open_binary(self, path: str) -> BinaryIO:
        """The file itself, opened without reading it into memory. Non-blocking open and a
        type check first: a FIFO or a device would otherwise block or never end."""
        try:
            descriptor = os.open(self.host_path(path), os.O_RDONLY | os.O_NONBLOCK)
        except OSError as error:
            raise _unavailable_from_os_error(path, error).error() from error
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise FactUnavailable(Reason.REFUSED, says("{path}: not a regular file", path=path))
        return os.fdopen(descriptor, "rb")

    def list_dir(self, path: str) -> list[DirEntry]:
        try:
            directory = self.host_path(path)
            entries = []
            for entry in sorted(os.scandir(directory), key=lambda e: e.name):
                info = entry.stat(follow_symlinks=False)
                entries.append(DirEntry(name=entry.name, is_dir=_is_dir(entry),
                                        is_symlink=entry.is_symlink(),
                                        mode=stat.S_IMODE(info.st_mode), size=info.st_size))
            return entries
        except OSError as error:
            raise _unavailable_from_os_error(path, error).error() from error

    def _execute(self, argv: tuple[str, ...], sudo: bool) -> CommandOutput:
        raise FactUnavailable(Reason.UNSUPPORTED, says(
            "an offline file system cannot run {command}", command=repr(" ".join(argv))))


class LocalTransport(FilesystemTransport):
    """This machine: its own file system and allow-listed read-only commands."""

    kind = "local"

    def __init__(self) -> None:
        super().__init__(Path("/"))

    def describe(self) -> str:
        return "local (this machine)"

    def _execute(self, argv: tuple[str, ...], sudo: bool) -> CommandOutput:
        command = ("sudo", "-n", *argv) if sudo else argv
        try:
            completed = subprocess.run(command, capture_output=True, text=True, errors="replace",
                                       timeout=COMMAND_TIMEOUT_SECONDS, check=False,
                                       stdin=subprocess.DEVNULL)
        except FileNotFoundError as error:
            raise FactUnavailable(Reason.NOT_FOUND,
                                  says("{command}: not installed", command=argv[0])) from error
        except subprocess.TimeoutExpired as error:
            raise FactUnavailable(Reason.TIMEOUT, says(
                "{where}: no answer within {seconds} s", where=argv[0],
                seconds=f"{COMMAND_TIMEOUT_SECONDS:.0f}")) from error
        return CommandOutput(argv=argv, exit_code=completed.returncode,
                             stdout=completed.stdout, stderr=completed.stderr)
