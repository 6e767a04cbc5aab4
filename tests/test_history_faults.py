"""A broken history store: the run still writes results.json and its report, warns in exactly
one line and says why in results.json; `history` and `diff` exit 2 with a one-line error.

SQLite faults use real files: garbage, rows no mis-audit wrote, an exclusive lock another
process holds, a read-only mount. PostgreSQL faults use a real server of this module's own on
127.73.0.10 (other modules' servers use other 127.x ranges, so runs in parallel never meet):
a refused login, and our backend terminated while our transaction waits on a lock the test
holds, mid-write and mid-read.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import jsonschema
import psycopg
import pytest
from markupsafe import escape
from test_report_samples import sample_results
from typer.testing import CliRunner, Result

import audit.history
from audit.cli import app
from audit.history import HistoryUnavailable, open_store, redact
from audit.model.results import HistoryError
from audit.schemas import SCHEMA_DIRECTORY
from audit.vocabulary import Lang
from reports.html import render_html
from tests.servers.postgres import history_postgres

WARNING = "warning: run not recorded in the history: history store "
ERROR = "error: history store "
RESULTS_SCHEMA = json.loads((SCHEMA_DIRECTORY / "results.schema.json").read_text())
PG_ADDRESS = "127.73.0.10"
PG_PORT = 5432
PG_PASSWORD = "faults-test-only-pw"   # a throwaway, never a real secret


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    """One offline host: a run takes about a second and needs no server."""
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc/login.defs").write_text("PASS_MAX_DAYS 99999\n")
    path = tmp_path / "inventory.yaml"
    path.write_text("organisation: Fault clinic\nsystem: MIS\n"
                    f"targets:\n  - {{name: host, roles: [host], root: {host}}}\n")
    return path


def audit_run(inventory: Path, location: str, *,
              wrapper: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """`mis-audit run` as a real process, writing into `run/` beside the inventory."""
    return subprocess.run([*wrapper, sys.executable, "-m", "audit.cli", "run", "-i",
                           str(inventory), "-o", str(inventory.parent / "run"), "--quiet",
                           "--history", location],
                          cwd=inventory.parent, capture_output=True, text=True, timeout=120,
                          check=False)


def command(*arguments: str, cwd: Path,
            wrapper: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """`mis-audit history` or `diff` as a real process (in `cwd`: no file there is named 1)."""
    return subprocess.run([*wrapper, sys.executable, "-m", "audit.cli", *arguments], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def assert_not_recorded(returncode: int, stderr: str, run_directory: Path) -> HistoryError:
    """One warning line, results.json and the report written, and results.json saying why."""
    assert returncode == 1, stderr     # the offline host is not ready: the verdict decides
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(WARNING), stderr
    record = json.loads((run_directory / "results.json").read_text())
    jsonschema.Draft202012Validator(RESULTS_SCHEMA).validate(record)
    assert record["history"] is None
    error = HistoryError.model_validate(record["history_error"])
    assert lines[0] == f"{WARNING}{error.location}: {error.reason}"
    assert "\n" not in error.reason and error.reason
    report = (run_directory / "report.html").read_text()
    assert f"History not recorded: {escape(error.reason)}" in report
    return error


def assert_one_line_error(returncode: int, stderr: str) -> str:
    """Exit 2 and a single `error:` line, no traceback."""
    assert returncode == 2, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR), stderr
    return lines[0]


def assert_commands_fail_in_one_line(location: str, cwd: Path) -> list[str]:
    """`history` and `diff` on the store: exit 2, one line each; returns those lines."""
    errors = []
    for arguments in (["history"], ["history", "--json"], ["diff", "1", "2"]):
        done = command(*arguments, "--history", location, cwd=cwd)
        errors.append(assert_one_line_error(done.returncode, done.stderr))
    return errors


def invoke(*arguments: str) -> Result:
    """The CLI in-process (to shorten the busy timeout); a traceback fails the test."""
    done = CliRunner().invoke(app, list(arguments))
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    return done


# -- SQLite ---------------------------------------------------------------------------------


def test_a_file_that_is_not_a_database(inventory: Path) -> None:
    store = inventory.parent / "history.sqlite"
    garbage = b"this is not an SQLite database\n" * 200
    store.write_bytes(garbage)
    done = audit_run(inventory, str(store))
    error = assert_not_recorded(done.returncode, done.stderr, inventory.parent / "run")
    assert error == HistoryError(location=str(store), reason="file is not a database")
    assert store.read_bytes() == garbage           # someone's file is left as it was
    assert_commands_fail_in_one_line(str(store), inventory.parent)


@pytest.mark.parametrize(("table", "column", "value"), [
    ("mis_audit_runs", "started_at", "yesterday"),
    ("mis_audit_results", "status", "bogus"),
])
def test_rows_no_mis_audit_wrote(inventory: Path, table: str, column: str, value: str) -> None:
    store = inventory.parent / "history.sqlite"
    assert audit_run(inventory, str(store)).stderr == ""     # the run the next one reads
    with sqlite3.connect(store) as connection:
        connection.execute(f"UPDATE {table} SET {column} = ?", (value,))
    connection.close()
    done = audit_run(inventory, str(store))
    error = assert_not_recorded(done.returncode, done.stderr, inventory.parent / "run")
    assert error.reason.startswith("unreadable ") and value in error.reason
    if table == "mis_audit_runs":
        assert_commands_fail_in_one_line(str(store), inventory.parent)
    else:   # only a diff reads results
        done = command("diff", "1", "1", "--history", str(store), cwd=inventory.parent)
        assert_one_line_error(done.returncode, done.stderr)
    with sqlite3.connect(store) as connection:
        assert connection.execute("SELECT count(*) FROM mis_audit_runs").fetchone() == (1,)
    connection.close()


LOCKER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()        # held until the test closes this process's stdin
"""


@contextmanager
def exclusive_lock(store: Path) -> Iterator[None]:
    """Another process holding `BEGIN EXCLUSIVE` on the store."""
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(store)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert locker.stdin is not None and locker.stdout is not None
    try:
        assert locker.stdout.readline() == "locked\n"
        yield
    finally:
        locker.stdin.close()
        try:
            locker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            locker.kill()
            locker.wait(timeout=10)


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_store_locked_longer_than_the_busy_timeout(inventory: Path, journal: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit.history, "BUSY_TIMEOUT_S", 1)
    store = inventory.parent / "history.sqlite"
    open_store(str(store)).record(sample_results())
    if journal == "delete":     # a store another tool rewrote without WAL: readers wait too
        with sqlite3.connect(store, isolation_level=None) as connection:
            connection.execute("PRAGMA journal_mode = DELETE")
        connection.close()
    run_directory = inventory.parent / "run"
    with exclusive_lock(store):
        started = time.monotonic()
        done = invoke("run", "-i", str(inventory), "-o", str(run_directory), "--quiet",
                      "--history", str(store))
        waited = time.monotonic() - started
        error = assert_not_recorded(done.exit_code, done.stderr, run_directory)
        assert error.reason == ("database is locked (another process held it for more than "
                                "1 s)")
        assert waited < 15, waited         # bounded by the busy timeout, not for ever
        if journal == "delete":
            for arguments in (["history"], ["diff", "1", "2"]):
                failed = invoke(*arguments, "--history", str(store))
                assert_one_line_error(failed.exit_code, failed.stderr)
    assert [run.run_id for run in open_store(str(store)).runs()] == [1]


@pytest.fixture(scope="module")
def read_only_mounts() -> None:
    """Skip unless this process may bind-mount in a mount namespace of its own (root)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("read-only mounts need root and unshare")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"unshare --mount is refused here: {probe.stderr.decode()[:200]}")


def read_only(directory: Path) -> list[str]:
    """A command prefix that runs the rest with `directory` mounted read-only (for it alone)."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind -o ro "$0" "$0" && exec "$@"', str(directory)]


@pytest.mark.usefixtures("read_only_mounts")
def test_a_store_on_a_read_only_file_system(inventory: Path) -> None:
    directory = inventory.parent / "store"
    store = directory / "history.sqlite"
    open_store(str(store)).record(sample_results())
    before = store.read_bytes()
    done = audit_run(inventory, str(store), wrapper=read_only(directory))
    error = assert_not_recorded(done.returncode, done.stderr, inventory.parent / "run")
    assert error.reason == f"unable to open database file ({directory} is not writable)"
    assert store.read_bytes() == before
    for arguments in (["history"], ["diff", "1", "1"]):
        failed = command(*arguments, "--history", str(store), cwd=inventory.parent,
                         wrapper=read_only(directory))
        assert_one_line_error(failed.returncode, failed.stderr)


@pytest.mark.usefixtures("read_only_mounts")
def test_a_new_store_under_a_read_only_directory(inventory: Path) -> None:
    directory = inventory.parent / "read-only"
    directory.mkdir()
    store = directory / "mis-audit" / "history.sqlite"
    done = audit_run(inventory, str(store), wrapper=read_only(directory))
    error = assert_not_recorded(done.returncode, done.stderr, inventory.parent / "run")
    assert error.reason == f"Read-only file system: {directory / 'mis-audit'}"
    assert not (directory / "mis-audit").exists()


def test_a_store_whose_directory_is_a_file(inventory: Path) -> None:
    store = inventory / "history.sqlite"        # inventory.yaml is a regular file
    done = audit_run(inventory, str(store))
    error = assert_not_recorded(done.returncode, done.stderr, inventory.parent / "run")
    assert error.reason == f"{inventory} exists and is not a directory"
    assert_commands_fail_in_one_line(str(store), inventory.parent)


def test_a_run_id_too_large_for_the_store_is_not_a_crash(tmp_path: Path) -> None:
    store = tmp_path / "history.sqlite"
    open_store(str(store)).record(sample_results())
    done = invoke("diff", "99999999999999999999", "1", "--history", str(store))
    assert done.exit_code == 2 and done.stderr == "error: run #99999999999999999999 is not " \
                                                  "in the history store\n"


# -- what a message may show ----------------------------------------------------------------


@pytest.mark.parametrize(("location", "shown"), [
    ("postgresql://audit:s3cret@db:5432/h", "postgresql://audit:***@db:5432/h"),
    ("postgresql://audit@db/h?password=s3cret&sslmode=require",
     "postgresql://audit@db/h?password=***&sslmode=require"),
    ("postgres://db/h?sslmode=1&sslpassword=s3cret", "postgres://db/h?sslmode=1&sslpassword=***"),
    ("postgresql://audit:s3/cret@db/h", "postgresql://audit:***@db/h"),     # "/" unescaped
    ("postgresql://audit:s3@cret@db/h", "postgresql://audit:***@db/h"),     # "@" unescaped
    ("postgresql://audit:s3cret@[::1/h", "postgresql://audit:***@[::1/h"),  # urlsplit raises
])
def test_redact_hides_every_password_a_url_can_carry(location: str, shown: str) -> None:
    assert redact(location) == shown
    error = HistoryUnavailable(location, f'libpq quoted "{location}"')
    assert "cret" not in str(error) and "cret" not in error.location + error.reason


def test_a_reason_never_shows_the_password_decoded_or_not() -> None:
    error = HistoryUnavailable("postgresql://audit:p%40ss%zz@db/h",
                               'invalid percent-encoded token: "p%40ss%zz" (p@ss%zz)')
    assert error.reason == 'invalid percent-encoded token: "***" (***)'


def test_a_message_is_one_line_whatever_the_path_or_the_reason() -> None:
    error = HistoryUnavailable("/tmp/two\nlines.sqlite", "\nfirst line\n\tsecond, a hint")
    assert str(error) == "history store /tmp/two\ufffdlines.sqlite: first line"


def test_the_report_says_why_the_run_is_not_in_the_history() -> None:
    broken = sample_results().model_copy(update={"history_error": HistoryError(
        location="/srv/history.sqlite", reason="file is not a database <b>")})
    assert "History not recorded: file is not a database &lt;b&gt;" in render_html(broken)
    assert "История не записана: file is not a database" in render_html(broken, Lang.RU)
    assert "History not recorded" not in render_html(sample_results())


# -- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_base() -> Iterator[str]:
    """A PostgreSQL 15 asking a password (scram-sha-256) on 127.73.0.10:5432; its base URL."""
    with history_postgres("history-faults-pg", PG_ADDRESS, PG_PORT, PG_PASSWORD) as base:
        yield base


@pytest.fixture
def admin(postgres_base: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit session on the server's `postgres` database."""
    with psycopg.connect(f"{postgres_base}/postgres", autocommit=True) as connection:
        yield connection


@pytest.fixture
def database(admin: psycopg.Connection[tuple[object, ...]],
             postgres_base: str) -> tuple[str, str]:
    """A fresh database holding one recorded run: (its name, its URL with the password)."""
    name = f"faults_{uuid.uuid4().hex[:16]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{postgres_base}/{name}"
    open_store(url).record(sample_results())
    return name, url


def terminate_when_waiting(admin: psycopg.Connection[tuple[object, ...]], database: str,
                           statement: str, process: subprocess.Popen[str]) -> None:
    """Terminate the backend that waits on a lock while running `statement...`."""
    deadline = time.monotonic() + 60
    while True:
        row = admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND "
                            "wait_event_type = 'Lock' AND query LIKE %s",
                            (database, statement + "%")).fetchone()
        if row is not None:
            break
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"nothing ever waited in {statement!r}"
        time.sleep(0.05)
    assert admin.execute("SELECT pg_terminate_backend(%s)", row).fetchone() == (True,)


def run_process(inventory: Path, location: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "audit.cli", "run", "-i", str(inventory),
                             "-o", str(inventory.parent / "run"), "--quiet", "--history",
                             location], cwd=inventory.parent, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.servers
def test_postgres_refusing_the_login(inventory: Path, database: tuple[str, str]) -> None:
    wrong = database[1].replace(PG_PASSWORD, "Wrong-Pass-42")
    done = audit_run(inventory, wrong)
    error = assert_not_recorded(done.returncode, done.stderr, inventory.parent / "run")
    assert error.location == redact(wrong) and ":***@" in error.location
    assert "password authentication failed" in error.reason
    errors = assert_commands_fail_in_one_line(wrong, inventory.parent)
    written = [done.stderr, *errors, *(path.read_text() for path in
                                       (inventory.parent / "run").iterdir())]
    assert not [text for text in written if "Wrong-Pass" in text]


@pytest.mark.servers
def test_postgres_dropping_the_connection_mid_write(
        inventory: Path, admin: psycopg.Connection[tuple[object, ...]],
        database: tuple[str, str]) -> None:
    name, url = database
    with psycopg.connect(url) as holder:
        # SHARE lets our writer take its advisory lock, check the schema and insert the run
        # row, then makes it wait inside the transaction on its first result row.
        holder.execute("LOCK TABLE mis_audit_results IN SHARE MODE")
        writer = run_process(inventory, url)
        try:
            terminate_when_waiting(admin, name, "INSERT INTO mis_audit_results", writer)
            _, stderr = writer.communicate(timeout=60)
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait(timeout=10)
        holder.rollback()
    error = assert_not_recorded(writer.returncode, stderr, inventory.parent / "run")
    assert "server closed the connection" in error.reason or "terminat" in error.reason
    assert PG_PASSWORD not in stderr + error.location + error.reason
    # The half-written run went with its transaction: the store holds the first run alone.
    assert [run.run_id for run in open_store(url).runs()] == [1]
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT count(*) FROM mis_audit_results").fetchone() == (
            len(sample_results().results),)


@pytest.mark.servers
@pytest.mark.parametrize("arguments", [["history"], ["diff", "1", "1"]])
def test_postgres_dropping_the_connection_mid_read(
        admin: psycopg.Connection[tuple[object, ...]], database: tuple[str, str],
        arguments: list[str], tmp_path: Path) -> None:
    name, url = database
    with psycopg.connect(url) as holder:
        holder.execute("LOCK TABLE mis_audit_runs IN ACCESS EXCLUSIVE MODE")
        reader = subprocess.Popen([sys.executable, "-m", "audit.cli", *arguments, "--history",
                                   url], cwd=tmp_path, text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        try:
            terminate_when_waiting(admin, name, "SELECT", reader)
            _, stderr = reader.communicate(timeout=60)
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.wait(timeout=10)
        holder.rollback()
    line = assert_one_line_error(reader.returncode, stderr)
    assert PG_PASSWORD not in line and ":***@" in line
