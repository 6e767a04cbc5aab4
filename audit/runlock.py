"""Two runs of one inventory on one machine, or into one run directory, never overlap.

The locks are `flock`s held for the whole run: on the run directory itself, and on the
inventory file (the same file however it is named; this machine's implicit inventory has a
lock file of its own). The kernel drops them when the process ends, a SIGKILL included, so
a killed run never leaves a stale lock. Runs on other machines into one shared PostgreSQL
history are not concerned: the store handles concurrent writers.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path


class RunLocked(Exception):
    """Another run holds a lock this run needs."""


def _lock_directory() -> Path:
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    directory = base / f"mis-audit-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


@contextmanager
def _flock(path: Path, what: str) -> Iterator[None]:
    descriptor = os.open(path, os.O_RDONLY | (0 if path.is_dir() else os.O_CREAT), 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(f"another mis-audit run is using {what} ({path}); this run "
                            "was not started") from None
        yield
    finally:
        os.close(descriptor)         # closing releases the lock


@contextmanager
def run_locks(directory: Path, inventory: Path | None) -> Iterator[None]:
    """Hold the run directory's and the inventory's locks; RunLocked when either is taken."""
    with ExitStack() as stack:
        stack.enter_context(_flock(directory, "this run directory"))
        target = inventory.resolve() if inventory else _lock_directory() / "this-machine.lock"
        stack.enter_context(_flock(target, "this inventory"))
        yield
