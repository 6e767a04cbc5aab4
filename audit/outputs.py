"""Every file mis-audit writes: readable by its owner only, and never seen half-written.

A run directory maps a clinic's weaknesses and holds masked patient data, so directories we
create are 0700 and files 0600 whatever the umask. A file is written to a temporary file beside
its target, synced, renamed over the target and the directory synced: a reader, a SIGKILL or a
power cut leaves either the previous complete file or the new complete one, never a truncated
one. Any failure (a full disk above all) is one `OutputError` naming the path.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

PRIVATE_DIRECTORY_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# A leftover of a killed writer is `.report.html.k3j9x1aq.tmp`: hidden, and never an output name.
TEMPORARY_SUFFIX = ".tmp"
CREATE = "create directory"


class OutputError(Exception):
    """An output could not be written: the path and the operating system's reason."""

    def __init__(self, path: Path, reason: str, action: str = "write") -> None:
        super().__init__(f"could not {action} {path}: {reason}")
        self.path = path
        self.reason = reason


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _temporary_prefix(target: Path) -> str:
    """The name start of `target`'s temporary files (a killed writer may leave one behind)."""
    return f".{target.name}."


def _sync_directory(directory: Path) -> None:
    # Without this a power cut can lose the rename (or a new directory's entry) though the
    # data itself was synced.
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP):   # cannot sync a directory there
            raise
    finally:
        os.close(descriptor)


def _make_directory(directory: Path) -> bool:
    """Create one directory 0700; False when something already has that name."""
    try:
        directory.mkdir(mode=PRIVATE_DIRECTORY_MODE)
    except FileExistsError:
        return False
    except OSError as error:
        raise OutputError(directory, _reason(error), CREATE) from None
    try:
        os.chmod(directory, PRIVATE_DIRECTORY_MODE)     # mkdir's mode went through the umask
        _sync_directory(directory.parent)
    except OSError as error:
        raise OutputError(directory, _reason(error), CREATE) from None
    return True


def _is_directory(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError as error:       # e.g. a parent we may not search
        raise OutputError(path, _reason(error), CREATE) from None


def _missing_parents(path: Path) -> list[Path]:
    """The ancestors of `path` that do not exist yet, outermost first."""
    missing: list[Path] = []
    for parent in path.parents:
        if _is_directory(parent):
            break
        missing.append(parent)
    return missing[::-1]


def _ensure_directory(directory: Path) -> None:
    # An existing directory, ours or the user's, keeps its mode: the user may have chosen it.
    if _is_directory(directory):
        return
    if not _make_directory(directory) and not _is_directory(directory):
        raise OutputError(directory, "exists and is not a directory", CREATE)


def private_directory(path: Path) -> Path:
    """Make `path` and its missing parents 0700; an existing directory is left as it is."""
    for parent in _missing_parents(path):
        _ensure_directory(parent)
    _ensure_directory(path)
    return path


def new_private_directory(path: Path) -> bool:
    """Create `path` (0700, parents as in `private_directory`); False when it already exists.

    The name is taken atomically, so two runs started in the same second never share it.
    """
    for parent in _missing_parents(path):
        _ensure_directory(parent)
    return _make_directory(path)


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view):]   # a short write comes before ENOSPC


def _remove(temporary: str) -> None:
    try:
        os.unlink(temporary)
    except OSError:
        pass    # the error being reported matters more than a leftover hidden file


def write_atomically(path: Path, content: str | bytes) -> Path:
    """Replace `path` with `content` (text as UTF-8), mode 0600; on failure it is left as it was.

    Raises OutputError naming `path`; the temporary file is removed.
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        # O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600: never somebody else's file or a symlink.
        descriptor, temporary = tempfile.mkstemp(prefix=_temporary_prefix(path),
                                                 suffix=TEMPORARY_SUFFIX, dir=path.parent)
    except OSError as error:
        raise OutputError(path, _reason(error)) from None
    try:
        try:
            os.fchmod(descriptor, PRIVATE_FILE_MODE)    # an odd umask may have taken bits off
            _write_all(descriptor, data)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException as error:      # Ctrl-C too: no temporary file left behind
        _remove(temporary)
        if isinstance(error, OSError):
            raise OutputError(path, _reason(error)) from None
        raise
    try:
        _sync_directory(path.parent)
    except OSError as error:
        raise OutputError(path, _reason(error)) from None
    return path
