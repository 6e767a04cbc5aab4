"""The run's checkpoint: each result appended as it finishes, so that a run cut short (Ctrl-C,
SIGTERM, a reboot, the OOM killer) continues with `mis-audit run --resume DIR` and probes
only what had not finished.

The journal is one JSON object per line in the run directory: a header naming the request
and a digest of its inputs, then one result per line. A line cut by a kill is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from audit.errors import InputError
from audit.history_location import redact
from audit.model.results import Result
from audit.run import MessageSigning, PreparedRun, RunRequest

JOURNAL_FILE = ".results.journal"
SYNC_INTERVAL = 1.0       # seconds between fsyncs: a reboot loses at most this much work


class RecordedSigning(BaseModel):
    """The message-signing files, absolute."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    certificate: str
    trusted: str


class RecordedRequest(BaseModel):
    """What was asked, in the terms `run` takes again (paths absolute)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profiles: list[str]
    inventory: str | None
    waivers: str | None
    jobs: int
    timeout: float
    # A dispatched run's broker, its password masked; resumed, it dispatches again.
    broker: str | None = None
    broker_password_masked: bool = False
    site_timeout: float | None = None
    signing: RecordedSigning | None = None


class JournalHeader(BaseModel):
    """The first line: which run this is, and over exactly which inputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    started_at: datetime
    request: RecordedRequest
    inputs_sha256: str


def inputs_digest(prepared: PreparedRun) -> str:
    """One digest over the profiles' hashes and the inventory and waivers files' bytes."""
    digest = hashlib.sha256()
    for record in prepared.profile.records:
        digest.update(record.sha256.encode())
    for path in (prepared.request.inventory, prepared.request.waivers):
        digest.update(b"\0" + (path.read_bytes() if path is not None else b"-"))
    return digest.hexdigest()


def new_header(prepared: PreparedRun, started_at: datetime) -> JournalHeader:
    """The header of a fresh run's journal."""
    request = prepared.request

    def absolute(path: Path | None) -> str | None:
        return str(path.resolve()) if path is not None else None

    # a profile given by path is kept absolute, a built-in one by its id
    profiles = [str(Path(p).resolve()) if Path(p).is_file() else p for p in request.profiles]
    return JournalHeader(started_at=started_at, inputs_sha256=inputs_digest(prepared),
                         request=RecordedRequest(profiles=profiles,
                                                 inventory=absolute(request.inventory),
                                                 waivers=absolute(request.waivers),
                                                 jobs=request.jobs, timeout=request.timeout,
                                                 **_recorded_dispatch(request)))


def _recorded_dispatch(request: RunRequest) -> dict[str, Any]:
    """How the run reached its sites: the broker without its password, the signing files."""
    if request.broker is None:
        return {}
    masked = redact(request.broker)
    signing = request.signing
    return {"broker": masked, "broker_password_masked": masked != request.broker,
            "site_timeout": request.site_timeout,
            "signing": None if signing is None else RecordedSigning(
                key=str(signing.key), certificate=str(signing.certificate),
                trusted=str(signing.trusted))}


def resumed_request(header: JournalHeader, debug: bool, broker: str | None = None,
                    site_timeout: float | None = None,
                    signing: MessageSigning | None = None) -> RunRequest:
    """The interrupted run's request, to prepare again; a dispatched one dispatches again,
    over the broker and with the signing given now, else the recorded ones (a broker whose
    password was masked must be given again)."""
    recorded = header.request
    if broker is None and recorded.broker_password_masked:
        raise InputError.at(JOURNAL_FILE, f"the interrupted run sent its sites' targets over "
                            f"{recorded.broker}, whose password is not recorded: give --broker "
                            "(or $MIS_AUDIT_BROKER) again")
    kept = recorded.signing
    return RunRequest(profiles=list(recorded.profiles),
                      inventory=Path(recorded.inventory) if recorded.inventory else None,
                      waivers=Path(recorded.waivers) if recorded.waivers else None,
                      jobs=recorded.jobs, timeout=recorded.timeout, debug=debug,
                      broker=broker or recorded.broker,
                      site_timeout=site_timeout or recorded.site_timeout or RunRequest.site_timeout,
                      signing=signing or (None if kept is None else MessageSigning(
                          Path(kept.key), Path(kept.certificate), Path(kept.trusted))))


class Journal:
    """Appends each finished result; an observer of the engine."""

    def __init__(self, directory: Path, header: JournalHeader | None) -> None:
        path = directory / JOURNAL_FILE
        fresh = header is not None
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | (os.O_EXCL | os.O_TRUNC if fresh else 0)
        self._file: IO[str] = os.fdopen(os.open(path, flags, 0o600), "a", encoding="utf-8")
        self._synced = time.monotonic()
        self.failure: str | None = None       # why checkpointing stopped
        if header is not None:
            self._write(header.model_dump_json())

    def started(self, total: int) -> None:
        """Nothing to record."""

    def finished(self, result: Result) -> None:
        """Record one result, on disk before the next one is asked."""
        self._write(result.model_dump_json())

    def _write(self, line: str) -> None:
        if self.failure:
            return
        try:
            self._file.write(line + "\n")
            self._file.flush()
            if time.monotonic() - self._synced >= SYNC_INTERVAL:
                os.fsync(self._file.fileno())
                self._synced = time.monotonic()
        except OSError as error:     # a full disk stops the checkpoint, not the audit
            self.failure = error.strerror or str(error)

    def close(self) -> None:
        """Sync and close."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as error:
            self.failure = self.failure or error.strerror or str(error)
        finally:
            try:
                self._file.close()
            except OSError:
                pass    # the flush above already failed and said why


def read_journal(directory: Path) -> tuple[JournalHeader, list[Result]]:
    """The header and the finished results of an interrupted run; InputError when DIR holds
    no journal (or not one of this tool)."""
    path = directory / JOURNAL_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise InputError.at(path, f"nothing to resume: {error.strerror or error}") from None
    try:
        header = JournalHeader.model_validate_json(lines[0]) if lines else None
    except ValidationError:
        header = None
    if header is None:
        raise InputError.at(path, "not a mis-audit journal", 1)
    results = []
    for line in lines[1:]:
        try:
            results.append(Result.model_validate_json(line))
        except (ValidationError, json.JSONDecodeError):
            continue        # the line a kill cut short: that result is probed again
    return header, results


def remove_journal(directory: Path) -> None:
    """Once the run's outputs are written the checkpoint has served."""
    (directory / JOURNAL_FILE).unlink(missing_ok=True)
