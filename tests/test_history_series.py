"""History identity: a series is (organisation, system, profile family); a tailoring stays in
its base's series; the store says when the profile or the inventory changed; a store written
by the first layout still loads and keeps its series."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_report_samples import sample_results

from audit.history import open_store
from audit.model.results import ProfileRecord, RunResults
from audit.profiles import load_profiles
from audit.registry import default_registry
from audit.vocabulary import Lang, Status
from reports.html import render_html

ROOT = Path(__file__).parent.parent


def _run(family: str | None, profile_id: str = "kz-mis-baseline", sha: str = "ab",
         inventory: str | None = "11" * 32) -> RunResults:
    profile = ProfileRecord(id=profile_id, title={Lang.EN: profile_id}, version="2026.1",
                            sha256=sha * 32, source="builtin")
    return sample_results().model_copy(update={"profiles": [profile], "profile_family": family,
                                               "inventory_sha256": inventory})


@pytest.mark.parametrize(("references", "family"), [
    (["kz-mis-baseline"], "kz-mis-baseline"),
    ([str(ROOT / "profiles/examples/clinic-tailored.yaml")], "kz-mis-baseline"),
    (["gdpr-health"], "gdpr-health"),
    (["kz-mis-baseline", "gdpr-health"], "gdpr-health+kz-mis-baseline"),
])
def test_the_family_is_the_root_of_the_extends_chain(references: list[str], family: str) -> None:
    assert load_profiles(references, default_registry()).family == family


def test_a_tailoring_stays_in_its_base_series_and_says_the_profile_changed(
        tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "h.sqlite"))
    store.record(_run("kz-mis-baseline"))
    store.record(_run("gdpr-health", "gdpr-health"))
    tailored = store.record(_run("kz-mis-baseline", "clinic-tailored", sha="cd"))
    assert tailored.previous is not None and tailored.previous.run_id == 1
    assert tailored.profile_changed is True and tailored.inventory_changed is False
    assert tailored.previous_profiles == "kz-mis-baseline 2026.1"
    again = store.record(_run("kz-mis-baseline", "clinic-tailored", sha="cd",
                              inventory="22" * 32))
    assert again.previous is not None and again.previous.run_id == 3
    assert again.profile_changed is False and again.inventory_changed is True
    html = render_html(_run("kz-mis-baseline").model_copy(update={"history": again}), Lang.EN)
    assert "The inventory changed since the previous run" in html
    assert "The profile changed" not in html
    gdpr = store.record(_run("gdpr-health", "gdpr-health"))
    assert gdpr.previous is not None and gdpr.previous.run_id == 2


# The first layout of the store, as version 0.1 created and filled it.
OLD_RUNS = """CREATE TABLE mis_audit_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    organisation TEXT NOT NULL, system TEXT NOT NULL, profile_ids TEXT NOT NULL,
    profiles TEXT NOT NULL, tool_version TEXT NOT NULL, complete INTEGER NOT NULL,
    score DOUBLE PRECISION NOT NULL, threshold DOUBLE PRECISION NOT NULL,
    verdict TEXT NOT NULL)"""
OLD_RESULTS = """CREATE TABLE mis_audit_results (
    run_id BIGINT NOT NULL REFERENCES mis_audit_runs (id) ON DELETE CASCADE,
    control TEXT NOT NULL, check_id TEXT NOT NULL, target TEXT NOT NULL,
    status TEXT NOT NULL, summary TEXT NOT NULL)"""
OLD_INSERT = """INSERT INTO mis_audit_runs (recorded_at, started_at, finished_at, organisation,
    system, profile_ids, profiles, tool_version, complete, score, threshold, verdict)
    VALUES ('2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00',
    '2026-01-01T00:03:00+00:00', 'City Clinic No. 5', 'MedInfo MIS 4.2', 'kz-mis-baseline',
    'kz-mis-baseline 2026.1', '0.1.0', 1, 50.0, 80.0, 'not_ready')"""


def test_a_store_of_the_first_layout_loads_and_keeps_its_series(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute(OLD_RUNS)
        connection.execute(OLD_RESULTS)
        connection.execute(OLD_INSERT)
        connection.execute("INSERT INTO mis_audit_results VALUES (1, 'NET-01', "
                           "'net.db_exposed', 'db-main', 'pass', 'closed')")
    connection.close()
    store = open_store(str(path))
    assert [run.run_id for run in store.runs()] == [1]          # read without migrating
    assert store.run(1)[1] == {("NET-01", "net.db_exposed", "db-main"): (Status.PASS, "closed")}
    summary = store.record(_run("kz-mis-baseline"))
    assert summary.previous is not None and summary.previous.run_id == 1
    assert summary.profile_changed is None and summary.inventory_changed is None
    assert summary.regressions == []        # pass -> waived is no regression
    # The old version, still writing after the migration, files runs the new one finds.
    with sqlite3.connect(path) as connection:
        connection.execute(OLD_INSERT)
    connection.close()
    later = store.record(_run("kz-mis-baseline"))
    assert later.previous is not None and later.previous.run_id == 3
    assert [run.run_id for run in store.runs()] == [4, 3, 2, 1]
