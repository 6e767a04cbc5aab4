"""The history store: every run recorded, in SQLite by default or a shared PostgreSQL.

Both engines hold the same two tables. Writers take the write lock before reading the
previous run (SQLite `BEGIN IMMEDIATE` with WAL and a busy timeout; PostgreSQL an advisory
lock), so concurrent runs neither corrupt the store nor misnumber each other's history.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from audit.history_diff import SUMMARY_LIMIT, Snapshot, diff_snapshots, snapshot
from audit.history_location import (
    DISABLED,
    HISTORY_ENV,
    HistoryUnavailable,
    default_location,
    is_database_url,
    redact,
)
from audit.history_series import (
    SeriesKey,
    changed,
    fingerprints,
    profiles_label,
    series_key,
    site_run,
)
from audit.model.results import HistorySummary, RunDigest, RunResults
from audit.vocabulary import Status, Verdict

# The store's API includes where it is and how a failure is named (audit.history_location).
__all__ = ["DISABLED", "HISTORY_ENV", "TREND_LENGTH", "HistoryStore", "HistoryUnavailable",
           "StoredRun", "default_location", "open_store", "record_run", "redact"]

TREND_LENGTH = 10
BUSY_TIMEOUT_S = 30
# Any constant: the key of the PostgreSQL advisory lock that serialises writers.
_PG_LOCK_KEY = 0x6D69_7361

_RUN_COLUMNS = ("id, started_at, finished_at, organisation, system, profiles, tool_version, "
                "complete, score, threshold, verdict")
# Columns added after the first layout: added to an older store when a run is recorded, NULL
# in the rows it holds (and in rows an older version still writes).
# Queries read them after _RUN_COLUMNS, in this order, into the StoredRun fields of the name.
_ADDED_COLUMNS = ("profile_sha256", "inventory_sha256", "family", "site", "run_directory")
_LATER_COLUMNS = ", ".join(_ADDED_COLUMNS)
# The largest id either engine stores (SQLite INTEGER, PostgreSQL BIGINT).
_MAX_RUN_ID = 2**63 - 1


class _UnreadableRow(Exception):
    """A stored row that is not one this tool wrote (a hand-edited or foreign table)."""


@dataclass(frozen=True)
class StoredRun:
    """One run as the store keeps it."""

    run_id: int
    started_at: datetime
    finished_at: datetime
    organisation: str
    system: str
    profiles: str
    tool_version: str
    complete: bool
    score: float
    threshold: float
    verdict: Verdict
    profile_sha256: str | None = None
    inventory_sha256: str | None = None
    family: str | None = None
    site: str | None = None             # one site's part of a run over several
    run_directory: str | None = None    # where its results.json and reports were written

    def digest(self) -> RunDigest:
        """The run as a trend line shows it."""
        return RunDigest(run_id=self.run_id, started_at=self.started_at, score=self.score,
                         verdict=self.verdict, complete=self.complete)


def _os_reason(error: OSError) -> str:
    if isinstance(error, FileExistsError):     # mkdir(exist_ok=True) on a file
        return f"{error.filename} exists and is not a directory"
    if error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}"
    return str(error) or type(error).__name__


def _sqlite_reason(error: sqlite3.Error, path: Path) -> str:
    reason = str(error) or type(error).__name__
    name = getattr(error, "sqlite_errorname", "")
    if name in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        reason += f" (another process held it for more than {BUSY_TIMEOUT_S:g} s)"
    elif name in ("SQLITE_CANTOPEN", "SQLITE_READONLY") and not os.access(path.parent, os.W_OK):
        # "unable to open database file" alone does not say that a WAL store needs to write
        # its -wal and -shm files beside it, even to be read.
        reason += f" ({path.parent} is not writable)"
    return reason


class _Engine(Protocol):
    id_column: str
    table_exists: str
    run_columns: str

    def transaction(self, write: bool) -> AbstractContextManager[Any]: ...

    def sql(self, text: str) -> str: ...


class _SQLite:
    id_column = "INTEGER PRIMARY KEY AUTOINCREMENT"
    table_exists = ("SELECT count(*) FROM sqlite_master "
                    "WHERE type = 'table' AND name = 'mis_audit_runs'")
    run_columns = "SELECT name FROM pragma_table_info('mis_audit_runs')"

    def __init__(self, path: Path) -> None:
        self.path = path

    def sql(self, text: str) -> str:
        return text

    @contextmanager
    def transaction(self, write: bool) -> Iterator[sqlite3.Cursor]:
        location = str(self.path)
        try:
            # Findings are sensitive: a directory the store creates is its owner's alone.
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except OSError as error:
            raise HistoryUnavailable(location, _os_reason(error)) from error
        except ValueError as error:                     # a NUL in the path
            raise HistoryUnavailable(location, str(error)) from error
        except sqlite3.Error as error:
            raise HistoryUnavailable(location, _sqlite_reason(error, self.path)) from error
        try:
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
            _enable_wal(connection)
            connection.execute("PRAGMA foreign_keys = ON")
            cursor = connection.cursor()
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield cursor
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
        except sqlite3.Error as error:      # DatabaseError "file is not a database" included
            raise HistoryUnavailable(location, _sqlite_reason(error, self.path)) from error
        except (_UnreadableRow, OSError) as error:
            raise HistoryUnavailable(location, str(error)) from error
        finally:
            connection.close()


def _enable_wal(connection: sqlite3.Connection) -> None:
    # Switching a new store to WAL takes an exclusive lock, and SQLite answers "database is
    # locked" at once instead of waiting out busy_timeout when another writer is creating the
    # same store: retry within the busy timeout.
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class _Postgres:
    id_column = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    table_exists = "SELECT count(*) FROM (SELECT to_regclass('mis_audit_runs') AS t) r " \
                   "WHERE t IS NOT NULL"
    run_columns = ("SELECT column_name FROM information_schema.columns WHERE "
                   "table_name = 'mis_audit_runs' AND table_schema = current_schema()")

    def __init__(self, url: str) -> None:
        self.url = url

    def sql(self, text: str) -> str:
        return text.replace("?", "%s")

    @contextmanager
    def transaction(self, write: bool) -> Iterator[Any]:
        try:
            import psycopg  # only teams with a central history pay for the import
        except ImportError as missing:
            raise HistoryUnavailable(self.url, "psycopg is not installed") from missing

        try:
            # Bounded like SQLite's busy timeout: a writer waits for the lock, not for ever.
            connection = psycopg.connect(self.url, connect_timeout=10,
                                         options=f"-c statement_timeout={BUSY_TIMEOUT_S * 1000}")
            with connection, connection.cursor() as cursor:
                if write:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
                yield cursor
        # psycopg.Error covers a refused login (OperationalError) and a connection dropped
        # mid-transaction ("server closed the connection unexpectedly").
        except (psycopg.Error, OSError, _UnreadableRow) as error:
            raise HistoryUnavailable(self.url, str(error) or type(error).__name__) from error


class HistoryStore:
    """Records runs and answers what came before."""

    def __init__(self, engine: _Engine) -> None:
        self._engine = engine

    def _execute(self, cursor: Any, text: str, parameters: Sequence[Any] = ()) -> Any:
        cursor.execute(self._engine.sql(text), tuple(parameters))
        return cursor

    def _ensure_schema(self, cursor: Any) -> None:
        self._execute(cursor, f"""CREATE TABLE IF NOT EXISTS mis_audit_runs (
            id {self._engine.id_column},
            recorded_at TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
            organisation TEXT NOT NULL, system TEXT NOT NULL, profile_ids TEXT NOT NULL,
            profiles TEXT NOT NULL, tool_version TEXT NOT NULL, complete INTEGER NOT NULL,
            score DOUBLE PRECISION NOT NULL, threshold DOUBLE PRECISION NOT NULL,
            verdict TEXT NOT NULL)""")
        self._execute(cursor, "CREATE INDEX IF NOT EXISTS mis_audit_runs_key ON mis_audit_runs "
                              "(organisation, system, profile_ids, id)")
        self._ensure_columns(cursor)
        self._execute(cursor, "CREATE INDEX IF NOT EXISTS mis_audit_runs_series ON "
                              "mis_audit_runs (organisation, system, family, id)")
        self._execute(cursor, """CREATE TABLE IF NOT EXISTS mis_audit_results (
            run_id BIGINT NOT NULL REFERENCES mis_audit_runs (id) ON DELETE CASCADE,
            control TEXT NOT NULL, check_id TEXT NOT NULL, target TEXT NOT NULL,
            status TEXT NOT NULL, summary TEXT NOT NULL)""")
        self._execute(cursor, "CREATE INDEX IF NOT EXISTS mis_audit_results_run "
                              "ON mis_audit_results (run_id)")

    def _columns(self, cursor: Any) -> set[str]:
        return {row[0] for row in self._execute(cursor, self._engine.run_columns).fetchall()}

    def _ensure_columns(self, cursor: Any) -> None:
        present = self._columns(cursor)
        for column in _ADDED_COLUMNS:
            if column not in present:
                self._execute(cursor, f"ALTER TABLE mis_audit_runs ADD COLUMN {column} TEXT")

    def record(self, results: RunResults, run_directory: str | None = None) -> HistorySummary:
        """Store the run, and each of its sites as a run of the site's own series; return
        the run's id, the previous run's changes and the trend."""
        with self._engine.transaction(write=True) as cursor:
            self._ensure_schema(cursor)
            for site in results.sites:
                self._record(cursor, site_run(results, site), run_directory, site.name)
            return self._record(cursor, results, run_directory, None)

    def _record(self, cursor: Any, results: RunResults, run_directory: str | None,
                site: str | None) -> HistorySummary:
        key = series_key(results, site)
        earlier = self._runs_with_key(cursor, key, TREND_LENGTH)
        run_id = self._insert_run(cursor, results, key, run_directory)
        self._insert_results(cursor, run_id, results)
        previous = earlier[0] if earlier else None
        before = self._snapshot(cursor, previous.run_id) if previous else {}
        diff = diff_snapshots(before, snapshot(results)) if previous else None
        current = RunDigest(run_id=run_id, started_at=results.started_at, score=results.score,
                            verdict=results.verdict, complete=results.complete)
        trend = [run.digest() for run in reversed(earlier[:TREND_LENGTH - 1])] + [current]
        now = fingerprints(results)
        return HistorySummary(run_id=run_id, previous=previous.digest() if previous else None,
                              regressions=diff.regressions if diff else [],
                              fixes=diff.fixes if diff else [], new=diff.new if diff else [],
                              trend=trend,
                              profile_changed=changed(previous.profile_sha256, now.profile)
                              if previous else None,
                              inventory_changed=changed(previous.inventory_sha256, now.inventory)
                              if previous else None,
                              previous_profiles=previous.profiles if previous else None)

    def runs(self, limit: int = 50, sites: bool = False) -> list[StoredRun]:
        """The most recent runs, newest first (with `sites`, the sites' runs too)."""
        with self._engine.transaction(write=False) as cursor:
            if not self._has_schema(cursor):
                return []
            present = self._columns(cursor)
            later = ", ".join(name if name in present else f"NULL AS {name}"
                              for name in _ADDED_COLUMNS)
            only_systems = "" if sites or "site" not in present else " WHERE site IS NULL"
            rows = self._execute(cursor, f"SELECT {_RUN_COLUMNS}, {later} FROM mis_audit_runs"
                                         f"{only_systems} ORDER BY id DESC LIMIT ?",
                                 (limit,)).fetchall()
            # Parsed inside the transaction, so an unreadable row is the store's error.
            return [_stored_run(row) for row in rows]

    def run(self, run_id: int) -> tuple[StoredRun, Snapshot]:
        """One stored run and its results; KeyError when there is no such run."""
        if not 0 < run_id <= _MAX_RUN_ID:      # SQLite cannot even bind a larger one
            raise KeyError(run_id)
        with self._engine.transaction(write=False) as cursor:
            if not self._has_schema(cursor):
                raise KeyError(run_id)
            row = self._execute(cursor, f"SELECT {_RUN_COLUMNS} FROM mis_audit_runs "
                                        "WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise KeyError(run_id)
            return _stored_run(row), self._snapshot(cursor, run_id)

    def snapshots(self, run_ids: Sequence[int]) -> dict[int, Snapshot]:
        """The results of several stored runs, read in one transaction."""
        with self._engine.transaction(write=False) as cursor:
            if not self._has_schema(cursor):
                return {}
            return {run_id: self._snapshot(cursor, run_id) for run_id in run_ids}

    def _has_schema(self, cursor: Any) -> bool:
        return bool(self._execute(cursor, self._engine.table_exists).fetchone()[0])

    def _runs_with_key(self, cursor: Any, key: SeriesKey, limit: int) -> list[StoredRun]:
        # A row without a family was filed by an older version under the legacy key.
        rows = self._execute(cursor, f"SELECT {_RUN_COLUMNS}, {_LATER_COLUMNS} "
                                     "FROM mis_audit_runs WHERE organisation = ? AND system = ? "
                                     "AND (family = ? OR (family IS NULL AND profile_ids = ?)) "
                                     "AND COALESCE(site, '') = ? ORDER BY id DESC LIMIT ?",
                             (key.organisation, key.system, key.family, key.legacy,
                              key.site or "", limit)).fetchall()
        return [_stored_run(row) for row in rows]

    def _insert_run(self, cursor: Any, results: RunResults, key: SeriesKey,
                    run_directory: str | None) -> int:
        pinned = fingerprints(results)
        row = self._execute(cursor, """INSERT INTO mis_audit_runs (recorded_at, started_at,
            finished_at, organisation, system, profile_ids, profiles, tool_version, complete,
            score, threshold, verdict, family, profile_sha256, inventory_sha256, site,
            run_directory) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            RETURNING id""",
            (datetime.now(UTC).isoformat(), results.started_at.isoformat(),
             results.finished_at.isoformat(), key.organisation, key.system, key.legacy,
             profiles_label(results), results.tool.version, int(results.complete),
             results.score, results.threshold, results.verdict.value, key.family,
             pinned.profile, pinned.inventory, key.site, run_directory)).fetchone()
        return int(row[0])

    def _insert_results(self, cursor: Any, run_id: int, results: RunResults) -> None:
        cursor.executemany(self._engine.sql(
            "INSERT INTO mis_audit_results (run_id, control, check_id, target, status, summary) "
            "VALUES (?, ?, ?, ?, ?, ?)"),
            [(run_id, r.control, r.check, r.target, r.status.value, r.summary[:SUMMARY_LIMIT])
             for r in results.results])

    def _snapshot(self, cursor: Any, run_id: int) -> Snapshot:
        rows = self._execute(cursor, "SELECT control, check_id, target, status, summary FROM "
                                     "mis_audit_results WHERE run_id = ?", (run_id,)).fetchall()
        try:
            return {(row[0], row[1], row[2]): (Status(row[3]), row[4]) for row in rows}
        except ValueError as error:
            raise _UnreadableRow(f"unreadable result of run #{run_id}: {error}") from error


def _stored_run(row: Sequence[Any]) -> StoredRun:
    try:
        return StoredRun(run_id=int(row[0]), started_at=datetime.fromisoformat(row[1]),
                         finished_at=datetime.fromisoformat(row[2]), organisation=row[3],
                         system=row[4], profiles=row[5], tool_version=row[6],
                         complete=bool(row[7]), score=float(row[8]), threshold=float(row[9]),
                         verdict=Verdict(row[10]),
                         **dict(zip(_ADDED_COLUMNS, row[11:], strict=False)))
    except (ValueError, TypeError) as error:
        raise _UnreadableRow(f"unreadable run #{row[0]}: {error}") from error


def open_store(location: str | None = None) -> HistoryStore:
    """The store at `location` (a file path or a postgresql:// URL; default: see above)."""
    location = location or default_location()
    if is_database_url(location):
        return HistoryStore(_Postgres(location))
    return HistoryStore(_SQLite(Path(location).expanduser()))


def record_run(results: RunResults, location: str | None = None,
               run_directory: str | None = None) -> RunResults:
    """Record the run (and its sites' parts) in the store and return it with the history
    summary embedded."""
    summary = open_store(location).record(results, run_directory)
    return results.model_copy(update={"history": summary})
