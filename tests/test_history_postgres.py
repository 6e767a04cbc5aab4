"""The history store on a real PostgreSQL 15: same schema as SQLite, concurrent writers, errors."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import psycopg
import pytest
from test_history import WRITER
from test_report_samples import sample_results
from test_sarif import VALIDATOR as SARIF_VALIDATOR
from typer.testing import CliRunner

from audit.cli import app
from audit.history import HistoryUnavailable, open_store
from audit.vocabulary import Status
from tests.servers.postgres import history_postgres

pytestmark = pytest.mark.servers

ADDRESS = "127.64.0.10"
NOTHING_LISTENS = "127.64.0.11"
PORT = 5432
TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL with trust auth on 127.64.0.10:5432; yields its base URL."""
    with history_postgres("history-pg", ADDRESS, PORT) as base:
        yield base


@pytest.fixture
def database_url(postgres_server: str, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database per test."""
    name = "history_" + request.node.name.lower().replace("[", "_").replace("]", "")[:40]
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres_server}/{name}"


def test_records_runs_and_finds_the_previous_one(database_url: str) -> None:
    store = open_store(database_url)
    assert store.runs() == []
    assert store.record(sample_results()).previous is None
    second = store.record(sample_results({"AUTH-01": Status.PASS}))
    assert second.previous is not None and second.previous.run_id == 1
    assert [(c.control, c.target) for c in second.fixes] == [("AUTH-01", "db-main"),
                                                             ("AUTH-01", "web-front")]
    assert [run.run_id for run in store.runs()] == [2, 1]
    stored, results = store.run(1)
    assert stored.score == 41.2 and len(results) == len(sample_results().results)


def test_the_schema_is_the_same_as_sqlite(database_url: str, tmp_path: Path) -> None:
    open_store(database_url).record(sample_results())
    sqlite_file = tmp_path / "history.sqlite"
    open_store(str(sqlite_file)).record(sample_results())
    for table in ("mis_audit_runs", "mis_audit_results"):
        with psycopg.connect(database_url) as connection:
            postgres_columns = [row[0] for row in connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "ORDER BY ordinal_position", (table,))]
        with sqlite3.connect(sqlite_file) as connection:
            sqlite_columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
        assert postgres_columns == sqlite_columns, table


def test_commands_read_a_postgres_history(database_url: str) -> None:
    store = open_store(database_url)
    store.record(sample_results())
    store.record(sample_results({"NET-01": Status.FAIL}))
    runner = CliRunner(env={"COLUMNS": "200"})
    listed = runner.invoke(app, ["history", "--history", database_url])
    assert listed.exit_code == 0 and "City Clinic No. 5" in listed.output
    changed = runner.invoke(app, ["diff", "1", "2", "--history", database_url])
    assert changed.exit_code == 1 and "regressed (2)" in changed.output


def test_two_concurrent_writers_keep_postgres_consistent(database_url: str) -> None:
    runs_each = 15
    go = Path(tempfile.mkdtemp()) / "go"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, database_url, str(TESTS),
                                 str(runs_each), str(go), f"writer-{number}"],
                                stderr=subprocess.PIPE, text=True)
               for number in range(2)]
    time.sleep(1.5)
    go.touch()
    for writer in writers:
        _, errors = writer.communicate(timeout=120)
        assert writer.returncode == 0, errors
    shutil.rmtree(go.parent)
    with psycopg.connect(database_url) as connection:
        ids = [row[0] for row in connection.execute("SELECT id FROM mis_audit_runs ORDER BY id")]
        per_run = {row[0] for row in connection.execute(
            "SELECT count(*) FROM mis_audit_results GROUP BY run_id")}
    assert ids == list(range(1, 2 * runs_each + 1))
    assert per_run == {len(sample_results().results)}


def test_an_unreachable_database_is_reported_without_its_password() -> None:
    url = f"postgresql://audit:s3cret-word@{NOTHING_LISTENS}:{PORT}/history"
    with pytest.raises(HistoryUnavailable) as raised:
        open_store(url).record(sample_results())
    assert "s3cret-word" not in str(raised.value)
    assert "postgresql://audit:***@127.64.0.11:5432/history" in str(raised.value)


def test_a_run_over_a_real_database_writes_every_format_and_its_history(
        database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        # The probe tries the default superuser name, which this server (initdb -U audit) lacks.
        connection.execute("DO $$ BEGIN CREATE ROLE postgres LOGIN; "
                           "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(f"organisation: History test clinic\nsystem: MIS\n"
                         f"scope: {{networks: [127.64.0.0/16]}}\n"
                         f"targets:\n  - name: history-db\n    address: {ADDRESS}\n"
                         f"    roles: [db]\n    services: [{{kind: postgresql, port: {PORT}}}]\n")
    for attempt in ("first", "second"):
        done = subprocess.run([sys.executable, "-m", "audit.cli", "run", "-i", str(inventory),
                               "-o", attempt, "--format", "json,html,sarif,junit,csv",
                               "--history", database_url, "--quiet", "--timeout", "20"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              check=False)
        assert done.returncode in (0, 1), done.stderr
    written = sorted(path.name for path in (tmp_path / "second").iterdir())
    assert written == ["junit.xml", "report.html", "results.csv", "results.json",
                       "results.sarif"]
    results = json.loads((tmp_path / "second/results.json").read_text())
    assert results["history"]["previous"]["run_id"] == 1
    unauthenticated = [r for r in results["results"] if r["target"] == "history-db"
                       and r["check"] == "db.unauthenticated_access"]
    assert unauthenticated and unauthenticated[0]["status"] == "fail"   # trust auth
    sarif = json.loads((tmp_path / "second/results.sarif").read_text())
    SARIF_VALIDATOR.validate(sarif)
    assert any(r["locations"][0]["logicalLocations"][0]["name"] == "history-db"
               for r in sarif["runs"][0]["results"])
    ElementTree.parse(tmp_path / "second/junit.xml")
    assert [run.run_id for run in open_store(database_url).runs()] == [2, 1]
