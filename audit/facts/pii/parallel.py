"""Files scanned on every core: small files in batches, a large text file or workbook in
pieces, by a pool of worker processes, with results kept in walk order and identical to a
scan in one process.

The walk (in `audit.facts.pii.walk`) vets each file as before (deadline, bounds, size) and
hands it to a `Dispatcher`. Until the work is large enough to pay for starting the pool
(about half a second), files are scanned in this process; after that, each batch is a task,
and at most `IN_FLIGHT` tasks a worker are pending, so memory stays bounded however large the
share. This process is a worker too: when the walk must wait, it takes back a task no worker
has started yet (its future can still be cancelled) and scans it. A worker that fails (a
crash, a pickling error) costs no row: its batch is scanned again here. Only file systems
this machine reads directly are scanned in parallel; a transport that reads through a
connection is used from this process alone.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import secrets
import threading
import time
import zipfile
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

from audit.errors import FactUnavailable
from audit.facts.pii import pieces
from audit.facts.pii.formats import OLE2_MAGIC, ZIP_MAGICS, FileFormat
from audit.facts.pii.scan import FileScan, redact_name, scan_stream, sha256_of
from audit.transports.base import Transport
from audit.transports.filesystem import FilesystemTransport

WORKERS = len(os.sched_getaffinity(0))
# Work scanned here before the pool is started: a small share is done before it would be up.
# Work is counted in bytes of text: a ZIP package (a workbook, a document, an archive) counts
# what it inflates to.
POOL_AFTER_FILES = 200
POOL_AFTER_BYTES = 64 * 1024 * 1024
# A file that costs about a fifth of a second: it calls for the pool, for the files that may
# follow it.
LARGE_WORK = 32 * 1024 * 1024
# A task: this many files, or this much work.
BATCH_FILES = 100
BATCH_BYTES = 16 * 1024 * 1024
# Smaller files are counted by their size, without a look inside.
WORK_SNIFF_BYTES = 1024 * 1024
# A package's declared sizes count up to this many times its own (a bomb declares anything).
MAX_INFLATION = 64
# calamine decodes every cell of a legacy workbook: about 19 MB/s of file on one core, where
# CSV text scans at 190 (bench/pii_scan.py, same run).
OLE2_COST = 10
IN_FLIGHT = 4

# A file's outcome: its scan, why it could not be read, or None when the deadline had passed
# before it was started (the walk then stops there, as it would in one process).
Outcome = FileScan | str | None


def _work(stream: BinaryIO, size: int) -> int:
    """What scanning a file costs, in bytes of text: a ZIP package, what it inflates to; a
    legacy Office file, `OLE2_COST` times its size."""
    if size < WORK_SNIFF_BYTES:
        return size
    stream.seek(0)
    magic = stream.read(len(OLE2_MAGIC))
    if magic == OLE2_MAGIC:
        return size * OLE2_COST
    if not magic.startswith(ZIP_MAGICS):
        return size
    try:
        with zipfile.ZipFile(stream) as package:
            inflated = sum(info.file_size for info in package.infolist())
    except (zipfile.BadZipFile, OSError):
        return size                     # one reading of the file says what is wrong
    return max(size, min(inflated, size * MAX_INFLATION))


def _start_workers(pool: Executor) -> None:
    with contextlib.suppress(RuntimeError):    # broken: the next task is scanned here
        pool.submit(os.getpid)


def _pass_on(to: Future[pieces.PieceScan], task: Future[pieces.PieceScan]) -> None:
    """The outcome of a pool's task, given to the future handed out for it."""
    error = task.exception()
    if error is not None:
        to.set_exception(error)
    else:
        to.set_result(task.result())


def scan_one(transport: Transport, path: str, deadline: float | None,
             stream: BinaryIO | None = None) -> Outcome:
    """Scan one file (opening it unless `stream` is given); a failure to read it is its
    reason, never an exception."""
    if deadline is not None and time.monotonic() > deadline:
        return None
    try:
        if stream is not None:
            stream.seek(0)
            return scan_stream(path, stream, deadline=deadline)
        with transport.open_binary(path) as opened:
            return scan_stream(path, opened, deadline=deadline)
    except FactUnavailable as error:
        return redact_name(error.message)
    except OSError as error:      # the file changed or vanished while it was read
        return f"unreadable: {error.strerror}"


def scan_batch(transport: Transport, paths: list[str], deadline: float | None
               ) -> list[Outcome]:
    """A worker's task: files scanned one after the other."""
    return [scan_one(transport, path, deadline) for path in paths]


def scan_piece(transport: Transport, path: str, piece: pieces.Piece,
               deadline: float | None) -> pieces.PieceScan:
    """A worker's task: one piece of a large text file."""
    with transport.open_binary(path) as stream:
        return pieces.scan_piece(stream, piece, deadline)


@dataclass
class _Batch:
    paths: list[str]
    # Kept for this process (None), in the pool, or done.
    outcomes: Future[list[Outcome]] | list[Outcome] | None = None


@dataclass
class _Split:
    path: str
    file_format: FileFormat
    size: int
    sha256: str
    key: bytes
    scans: list[Future[pieces.PieceScan]]


def _done(slot: _Batch | _Split) -> bool:
    """Whether a slot's outcome can be given without waiting."""
    if isinstance(slot, _Split):
        return all(scan.done() for scan in slot.scans)
    return isinstance(slot.outcomes, list) or (
        isinstance(slot.outcomes, Future) and slot.outcomes.done())


class Dispatcher:
    """Takes vetted files in walk order and gives back their outcomes in the same order.

    Tasks go to the pool as they fill; this process walks on while fewer than `IN_FLIGHT`
    tasks a worker are pending, and when there are more (or at the end) it takes back a task
    no worker has started and scans it itself rather than wait, so that no core idles while
    work is left. The file that calls for the pool is kept for this process, which is
    ready before the workers are; the pool starts when another file follows it."""

    def __init__(self, transport: Transport, deadline: float | None,
                 deliver: Callable[[str, int, Outcome], None], workers: int = WORKERS) -> None:
        self._transport = transport
        self._deadline = deadline
        self._deliver = deliver        # called in walk order, once per file
        self._parallel = workers > 1 and isinstance(transport, FilesystemTransport)
        self._workers = workers
        self._pool: Executor | None = None
        self._pending: deque[_Batch | _Split] = deque()
        self._batch: list[str] = []
        self._batch_work = 0
        self._files = self._work = 0
        self._sizes: deque[int] = deque()     # of the files handed over, in walk order

    @property
    def handed_over(self) -> int:
        """Files handed over so far."""
        return self._files

    def add(self, path: str, stream: BinaryIO, size: int) -> None:
        """Scan a file the walk has opened and vetted (here or in a worker)."""
        self._files += 1
        self._sizes.append(size)
        work = _work(stream, size) if self._parallel else size
        self._work += work
        file_format = pieces.splittable(stream, size) if self._parallel else None
        calling = self._pool is None and self._parallel and not self._pending and (
            self._files > POOL_AFTER_FILES or work >= LARGE_WORK
            # One large file alone gains nothing from a pool unless it is split.
            or (self._work > POOL_AFTER_BYTES and self._files > 1))
        # The file that calls for the pool is kept for this process. The pool starts with
        # the next file: the last file of a walk would leave it nothing to do but start,
        # taking a core from this process's scan and holding the end of the walk.
        if self._pool is None and self._parallel and (self._pending or file_format):
            self._start_pool()
        if calling and file_format is None:
            self._pending.append(_Batch([path]))       # scanned here once the walk waits
        elif self._pool is None:
            self._give(path, scan_one(self._transport, path, self._deadline, stream))
        elif file_format is not None:
            self._flush()
            self._split(path, stream, size, file_format)
        else:
            self._batch.append(path)
            self._batch_work += work
            if len(self._batch) >= BATCH_FILES or self._batch_work >= BATCH_BYTES:
                self._flush()
        while len(self._pending) > IN_FLIGHT * self._workers:
            self._work_or_wait()

    def _start_pool(self) -> None:
        context = multiprocessing.get_context("forkserver")
        # Imported once, in the fork server: each worker starts with numpy and the readers
        # loaded, not paying a third of a second for them on a busy core.
        context.set_forkserver_preload([__name__])
        self._pool = ProcessPoolExecutor(self._workers, mp_context=context)
        # The workers start now, not at the first task, and in the background: the first
        # waits for the fork server's imports (a third of a second), which this process
        # spends scanning.
        threading.Thread(target=_start_workers, args=(self._pool,), daemon=True).start()

    def finish(self) -> None:
        """Wait for every file handed over; stop the pool."""
        self._flush()
        while self._pending:
            self._work_or_wait()
        if self._pool is not None:
            self._pool.shutdown()

    def _flush(self) -> None:
        if self._batch and self._pool is not None:
            outcomes: Future[list[Outcome]] | list[Outcome]
            try:
                outcomes = self._pool.submit(scan_batch, self._transport, self._batch,
                                             self._deadline)
            except RuntimeError:      # the pool broke (BrokenProcessPool): work here
                outcomes = scan_batch(self._transport, self._batch, self._deadline)
            self._pending.append(_Batch(self._batch, outcomes))
        self._batch, self._batch_work = [], 0

    def _work_or_wait(self) -> None:
        """Give the oldest outcome, scanning meanwhile a task no worker has started."""
        if not _done(self._pending[0]) and (batch := self._unstarted()):
            batch.outcomes = scan_batch(self._transport, batch.paths, self._deadline)
        else:
            self._collect_oldest()

    def _unstarted(self) -> _Batch | None:
        """The oldest task kept for this process, or taken back from the pool (a future is
        cancelled only while no worker has it)."""
        for slot in self._pending:
            if isinstance(slot, _Batch) and (slot.outcomes is None or (
                    isinstance(slot.outcomes, Future) and slot.outcomes.cancel())):
                return slot
        return None

    def _split(self, path: str, stream: BinaryIO, size: int, file_format: FileFormat) -> None:
        assert self._pool is not None
        key = secrets.token_bytes(32)
        # One piece a worker and one for this process, which would otherwise only wait (and
        # scans its piece while the pool is still starting). This process takes the first:
        # a workbook's later pieces inflate their part from its start.
        mine, *theirs = pieces.plan(stream, size, key, self._workers + 1, file_format)
        scans = self._submitted(path, theirs)
        here: Future[pieces.PieceScan] = Future()
        here.set_result(pieces.scan_piece(stream, mine, self._deadline))
        # The hash is taken here too, while the workers scan their pieces.
        self._pending.append(_Split(path, file_format, size, sha256_of(stream), key,
                                    [here, *scans]))

    def _submitted(self, path: str, theirs: list[pieces.Piece]
                   ) -> list[Future[pieces.PieceScan]]:
        """The workers' pieces, submitted from a thread: a submission that spawns a worker
        waits for the fork server's imports (a third of a second), which this process spends
        on its own piece. A pool that broke fails its pieces: the file is scanned here."""
        assert self._pool is not None
        pool, scans = self._pool, [Future[pieces.PieceScan]() for _ in theirs]

        def submit() -> None:
            for piece, scan in zip(theirs, scans):
                try:
                    task = pool.submit(scan_piece, self._transport, path, piece, self._deadline)
                except RuntimeError as error:         # BrokenProcessPool
                    scan.set_exception(error)
                else:
                    task.add_done_callback(functools.partial(_pass_on, scan))
        threading.Thread(target=submit, daemon=True).start()
        return scans

    def _collect_oldest(self) -> None:
        slot = self._pending.popleft()
        if isinstance(slot, _Batch):
            outcomes = slot.outcomes
            assert outcomes is not None       # this process scans its own before it waits
            if isinstance(outcomes, Future):
                try:
                    outcomes = outcomes.result()
                except Exception:  # noqa: BLE001 - a dead worker: scan the batch here
                    outcomes = scan_batch(self._transport, slot.paths, self._deadline)
            for path, outcome in zip(slot.paths, outcomes):
                self._give(path, outcome)
            return
        try:
            scans = [scan.result() for scan in slot.scans]
            whole: Outcome = pieces.merged(slot.path, slot.file_format, slot.size,
                                           slot.sha256, slot.key, scans)
        except Exception:  # noqa: BLE001 - a dead worker: scan the file here
            whole = scan_one(self._transport, slot.path, self._deadline)
        self._give(slot.path, whole)

    def _give(self, path: str, outcome: Outcome) -> None:
        self._deliver(path, self._sizes.popleft(), outcome)
