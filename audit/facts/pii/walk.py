"""The probe: walk a target's paths through its transport and scan each file, within bounds
on file size, file count and total bytes. Whatever cannot be read is an error detail.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Protocol

from audit.errors import FactUnavailable
from audit.facts.context import TargetContext
from audit.facts.pii.parallel import WORKERS, Dispatcher, Outcome
from audit.facts.pii.scan import FileScan, redact_name
from audit.messages import Message, says
from audit.transports.base import Transport
from audit.transports.filesystem import LocalTransport
from audit.vocabulary import Reason

# The share of the engine's per-check timeout the walk may use: the rest is for the verdict.
SHARE_OF_CHECK_TIMEOUT = 0.8


class ScanBounds(Protocol):
    """How much of a target a scan may read."""

    @property
    def max_file_bytes(self) -> int: ...

    @property
    def max_files(self) -> int: ...

    @property
    def max_total_bytes(self) -> int: ...


@dataclass(frozen=True)
class PathProblem:
    """A path that could not be scanned, and why (its name redacted)."""

    path: str
    reason: str


@dataclass
class PersonalDataFacts:
    """The files scanned under a target's paths."""

    roots: list[str]
    files: list[FileScan] = field(default_factory=list)
    problems: list[PathProblem] = field(default_factory=list)
    bytes_scanned: int = 0
    # Why the walk stopped early (a bound was reached), None when it covered everything.
    truncated: str | None = None
    # The same, as a message a report can translate.
    truncated_message: Message | None = None

    def stop(self, why: Message) -> None:
        """End the walk early, for `why`."""
        self.truncated, self.truncated_message = str(why), why


def personal_data_files(context: TargetContext, bounds: ScanBounds) -> PersonalDataFacts:
    """Scan every file under the target's inventory `paths`."""
    roots = list(context.target.paths)
    if not roots:
        raise FactUnavailable(Reason.UNSUPPORTED, says(
            "target {name} lists no paths to scan for personal data",
            name=repr(context.target.name)))
    # A file share named only by its paths is a directory this machine reads (a mount).
    transport = context.transport if context.target.host_transport else LocalTransport()
    # Stop in time to report what was found rather than be cut off by the engine's timeout.
    deadline = context.budget.phase_deadline(SHARE_OF_CHECK_TIMEOUT)
    return scan_paths(transport, roots, bounds, deadline)


def scan_paths(transport: Transport, roots: list[str], bounds: ScanBounds,
               deadline: float | None = None, workers: int = WORKERS) -> PersonalDataFacts:
    """Walk `roots` depth-first, in name order, scanning files until a bound is reached (or
    `deadline`, a `time.monotonic()` value, passes), on `workers` processes when the share
    is large enough to pay for them (`audit.facts.pii.parallel`)."""
    facts = PersonalDataFacts(roots=[redact_name(root) for root in roots])

    def deliver(path: str, size: int, outcome: Outcome) -> None:
        if outcome is None:       # the deadline passed before the file was started
            if facts.truncated is None:
                facts.stop(says("time limit reached"))
            facts.bytes_scanned -= size
        elif facts.truncated == "time limit reached":
            facts.bytes_scanned -= size        # started after one that was not: dropped
        elif isinstance(outcome, str):
            facts.problems.append(PathProblem(redact_name(path), outcome))
            facts.bytes_scanned -= size
        else:
            facts.files.append(outcome)

    dispatcher = Dispatcher(transport, deadline, deliver, workers)
    try:
        _walk(transport, roots, facts, bounds, deadline, dispatcher)
    finally:
        dispatcher.finish()
    return facts


def _walk(transport: Transport, roots: list[str], facts: PersonalDataFacts,
          bounds: ScanBounds, deadline: float | None, dispatcher: Dispatcher) -> None:
    # (path, is_dir): None while unknown, as for a root, which may be a file or a directory.
    pending: list[tuple[str, bool | None]] = [(root, None) for root in reversed(roots)]
    while pending and facts.truncated is None:
        path, is_dir = pending.pop()
        if is_dir is False:
            _scan_file(transport, path, facts, bounds, deadline, dispatcher)
            continue
        try:
            entries = transport.list_dir(path)
        except FactUnavailable as error:
            if is_dir is None:
                _scan_file(transport, path, facts, bounds, deadline, dispatcher)
            else:
                facts.problems.append(PathProblem(redact_name(path), redact_name(error.message)))
            continue
        for entry in reversed(entries):
            child = str(PurePosixPath(path, entry.name))
            if entry.is_dir and entry.is_symlink:
                # Not followed: a link back up the tree would make the walk endless.
                facts.problems.append(PathProblem(redact_name(child), "symbolic link to a "
                                                  "directory: not followed"))
            else:
                pending.append((child, entry.is_dir))


def _scan_file(transport: Transport, path: str, facts: PersonalDataFacts,
               bounds: ScanBounds, deadline: float | None, dispatcher: Dispatcher) -> None:
    if deadline is not None and time.monotonic() > deadline:
        facts.stop(says("time limit reached"))
        return
    if dispatcher.handed_over >= bounds.max_files:
        facts.stop(says("file count limit ({count}) reached", count=bounds.max_files))
        return
    try:
        with transport.open_binary(path) as stream:
            size = stream.seek(0, 2)
            stream.seek(0)
            if size > bounds.max_file_bytes:
                facts.problems.append(PathProblem(redact_name(path), f"too large: {size} bytes "
                                                  f"(limit {bounds.max_file_bytes})"))
                return
            if facts.bytes_scanned + size > bounds.max_total_bytes:
                facts.stop(says("total size limit ({size} bytes) reached",
                                size=bounds.max_total_bytes))
                return
            facts.bytes_scanned += size
            dispatcher.add(path, stream, size)
    except FactUnavailable as error:
        facts.problems.append(PathProblem(redact_name(path), redact_name(error.message)))
    except OSError as error:      # the file changed or vanished while it was read
        facts.problems.append(PathProblem(redact_name(path), f"unreadable: {error.strerror}"))
