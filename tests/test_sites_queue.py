"""Per-site scanners on a real Celery queue (Redis on a unix socket): each site's worker runs
in a network namespace of its own where only its site's Redis is reachable (at the same
address in both sites), and `mis-audit run --broker` sends each site its targets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hosts import HOST_CHECKS, profile_text
from runs import run_audit, statuses, weak_and_hardened_trees

from audit.model.results import RunResults
from audit.vocabulary import Status
from tests.servers.queue import SITE_DB_ADDRESS, SITE_DB_PORT, Broker, Site, start_broker

pytestmark = pytest.mark.servers
SOUTH_SECRET = "south-redis-secret-8841"
WEST_SECRET = "west-secret-never-sent-1207"
DB_CHECKS = ("db.unauthenticated_access", "db.audit_account_read_only")
PROFILE = profile_text(HOST_CHECKS + DB_CHECKS)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    started = start_broker(tmp_path_factory.mktemp("broker"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def sites(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Site]]:
    north = Site("north", tmp_path_factory.mktemp("north"), broker)
    south = Site("south", tmp_path_factory.mktemp("south"), broker, redis_password=SOUTH_SECRET,
                 env={"SOUTH_REDIS_PASSWORD": SOUTH_SECRET})
    try:
        north.start_worker()
        south.start_worker()
        yield {"north": north, "south": south}
    finally:
        north.stop()
        south.stop()


def _inventory(trees: Path, west: bool = False) -> str:
    west_target = (f"  - {{name: west-db, site: west, address: {SITE_DB_ADDRESS}, roles: [db], "
                   f"services: [{{kind: redis, port: {SITE_DB_PORT}, credential: west-redis}}]}}\n"
                   if west else "")
    return (
        "organisation: Hospital group\nscope: {networks: [127.77.0.0/16]}\n"
        "credentials:\n"
        "  south-redis: {type: basic, user: default, password_env: SOUTH_REDIS_PASSWORD}\n"
        "  west-redis: {type: basic, user: default, password_env: WEST_REDIS_PASSWORD}\n"
        "targets:\n"
        f"  - {{name: north-db, site: north, address: {SITE_DB_ADDRESS}, roles: [db], "
        f"services: [{{kind: redis, port: {SITE_DB_PORT}}}]}}\n"
        f"  - {{name: north-host, site: north, roles: [host], root: {trees / 'weak'}}}\n"
        f"  - {{name: south-db, site: south, address: {SITE_DB_ADDRESS}, roles: [db], "
        f"services: [{{kind: redis, port: {SITE_DB_PORT}, credential: south-redis}}]}}\n"
        f"  - {{name: south-host, site: south, roles: [host], root: {trees / 'hardened'}}}\n"
        f"  - {{name: here-host, roles: [host], root: {trees / 'weak'}}}\n" + west_target)


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return weak_and_hardened_trees(tmp_path_factory.mktemp("queue-trees"))


def _dispatched(directory: Path, inventory: str, broker: Broker, **request: object
                ) -> RunResults:
    directory.mkdir(parents=True, exist_ok=True)
    return run_audit(directory, PROFILE, inventory, broker=broker.url, timeout=10.0,
                     **request)  # type: ignore[arg-type]


def test_a_dispatched_run_gives_each_site_its_own_servers(
        trees: Path, broker: Broker, sites: dict[str, Site], tmp_path: Path) -> None:
    results = _dispatched(tmp_path / "dispatched", _inventory(trees), broker)
    found = statuses(results)
    # the same address answers differently at each site: each worker reached its own Redis
    assert found[("db.unauthenticated_access", "north-db")] is Status.FAIL
    assert found[("db.unauthenticated_access", "south-db")] is Status.PASS
    # the south worker logged in with the password from its own environment
    assert found[("db.audit_account_read_only", "south-db")] is Status.FAIL
    # the host trees give what a run on this machine gives
    (tmp_path / "local").mkdir()
    local = statuses(run_audit(tmp_path / "local", PROFILE, _inventory(trees)))
    for (check, target), status in found.items():
        if target.endswith("-host"):
            assert status is local[(check, target)], (check, target)
    # this machine cannot reach either site's Redis
    assert local[("db.unauthenticated_access", "north-db")] is not Status.FAIL
    assert [site.name for site in results.sites] == ["default", "north", "south"]
    assert len(results.results) == len(found), "every result once"


def test_a_site_without_a_scanner_ends_in_bounded_errors_and_no_secret_travels(
        trees: Path, broker: Broker, sites: dict[str, Site], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEST_REDIS_PASSWORD", WEST_SECRET)
    monkeypatch.setenv("SOUTH_REDIS_PASSWORD", SOUTH_SECRET)
    started = time.monotonic()
    results = _dispatched(tmp_path / "west", _inventory(trees, west=True), broker,
                          site_timeout=8.0)
    assert time.monotonic() - started < 60
    west = [r for r in results.results if r.target == "west-db"]
    assert west and all(r.status is Status.ERROR for r in west)
    assert all("site west: no scanner answered" in r.summary for r in west)
    assert statuses(results)[("db.unauthenticated_access", "north-db")] is Status.FAIL
    # the west task is still queued for a scanner that never came: what a broker holds
    [queued] = broker.queued("site.west")
    assert "west-redis" in str(queued["body"]) and "WEST_REDIS_PASSWORD" in str(queued["body"])
    held = broker.everything()            # the queue, the results, the bindings
    assert WEST_SECRET not in held and SOUTH_SECRET not in held


def test_a_worker_killed_mid_task_has_its_task_done_by_another(
        trees: Path, broker: Broker, tmp_path: Path) -> None:
    (tmp_path / "east").mkdir()
    east = Site("east", tmp_path / "east", broker, silent_port=7001)
    try:
        first = east.start_worker(visibility_timeout=6)
        inventory = (
            "organisation: Hospital group\nscope: {networks: [127.77.0.0/16]}\ntargets:\n"
            # a silent listener inside the site: the check waits for its timeout
            f"  - {{name: east-slow, site: east, address: {SITE_DB_ADDRESS}, roles: [db], "
            f"services: [{{kind: redis, port: 7001}}]}}\n")
        (tmp_path / "east" / "inventory.yaml").write_text(inventory)
        (tmp_path / "east" / "profile.yaml").write_text(profile_text(DB_CHECKS))
        run = subprocess.Popen(
            [sys.executable, "-m", "audit.cli", "run", "-p", str(tmp_path / "east/profile.yaml"),
             "-i", str(tmp_path / "east/inventory.yaml"), "-o", str(tmp_path / "out"),
             "--broker", broker.url, "--timeout", "4", "--site-timeout", "90",
             "--history", "off", "--quiet", "--format", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for_task_taken(broker)
        os.killpg(first.process.pid, signal.SIGKILL)
        east.start_worker(visibility_timeout=6)
        _, stderr = run.communicate(timeout=120)
        assert run.returncode in (0, 1), stderr
        record = RunResults.model_validate_json((tmp_path / "out/results.json").read_bytes())
        keys = [(r.control, r.check, r.target) for r in record.results]
        assert len(keys) == len(set(keys)) == 2, "every result exactly once"
        assert all("no scanner answered" not in r.summary for r in record.results)
    finally:
        east.stop()


def _wait_for_task_taken(broker: Broker) -> None:
    """Until a worker holds a task it has not acknowledged (acks_late: until it is done)."""
    deadline = time.monotonic() + 30
    while broker.unacknowledged() == 0:
        assert time.monotonic() < deadline, "no worker took the task"
        time.sleep(0.1)
    time.sleep(1)       # well into the task's four-second wait
