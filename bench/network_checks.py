"""How long the port and database checks take, per target and for a whole run.

Starts the weak and hardened database hosts of the tests (PostgreSQL, MariaDB, Redis,
memcached on 127.60.0.10 and 127.60.0.11) and a silent host whose ports accept and never
speak (127.60.0.20), then prints:

- per target and check, the time of the check with its facts gathered from scratch;
- per target, the time of all three checks sharing one target's facts, as a run does;
- the whole-process time of `mis-audit run` over the three targets (a subprocess).

Run as root from the repository: `python bench/network_checks.py [--repeat N]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from whole_run import time_mis_audit_run  # noqa: E402
from tests.servers.mariadb import start_mariadb
from tests.servers.memcached import start_memcached
from tests.servers.postgres import (
    HARDENED_DB_HOST,
    HARDENED_PASSWORD,
    WEAK_DB_HOST,
    DatabaseServer,
    make_database_ca,
    silent_listeners,
    start_postgres,
)
from tests.servers.redis_server import start_redis

from audit.engine import evaluate
from audit.facts.context import Environment, TargetContext
from audit.facts.services import DATABASE_PORTS
from audit.model.inventory import BasicCredential, Scope, Service, Target
from audit.plan import PlanItem
from audit.profiles import PlannedCheck
from audit.registry import default_registry
from audit.run import RESULTS_FILE, read_results
from audit.vocabulary import Role

CHECKS = ("net.db_ports_reachable", "db.unauthenticated_access", "db.plaintext_accepted")
SILENT_HOST = "127.60.0.20"
PASSWORD_ENV = "MIS_AUDIT_BENCH_MARIADB_PASSWORD"
TIMEOUT = 8.0

PROFILE = """
id: network-bench
title: Port and database checks
version: "1"
controls:
""" + "".join(f"""  - id: C{index}
    title: {check_id}
    severity: high
    checks: [{{check: {check_id}}}]
""" for index, check_id in enumerate(CHECKS))

INVENTORY = f"""
organisation: Benchmark clinic
scope: {{networks: [127.60.0.0/16]}}
credentials:
  mariadb-root: {{type: basic, user: root, password_env: {PASSWORD_ENV}}}
targets:
  - {{name: db-weak, address: {WEAK_DB_HOST}, roles: [db]}}
  - name: db-hardened
    address: {HARDENED_DB_HOST}
    roles: [db]
    services: [{{kind: mariadb, port: 3306, credential: mariadb-root}}]
  - {{name: db-silent, address: {SILENT_HOST}, roles: [db]}}
"""


def targets() -> list[Target]:
    """The benchmark's targets, as the inventory declares them."""
    declared = Service(kind="mariadb", port=3306, credential="mariadb-root")
    return [Target(name="db-weak", address=WEAK_DB_HOST, roles=[Role.DB]),
            Target(name="db-hardened", address=HARDENED_DB_HOST, roles=[Role.DB],
                   services=[declared]),
            Target(name="db-silent", address=SILENT_HOST, roles=[Role.DB])]


@contextmanager
def database_hosts(workdir: Path) -> Iterator[None]:
    """Every weak and hardened server of the tests, and the silent listeners."""
    ca = make_database_ca(workdir / "ca")
    os.environ[PASSWORD_ENV] = HARDENED_PASSWORD     # root's on the hardened MariaDB
    starters: list[Callable[[], DatabaseServer]] = [
        lambda: start_postgres("weak", WEAK_DB_HOST),
        lambda: start_postgres("hardened", HARDENED_DB_HOST, ca),
        lambda: start_mariadb("weak", WEAK_DB_HOST),
        lambda: start_mariadb("hardened", HARDENED_DB_HOST, ca),
        lambda: start_redis("weak", WEAK_DB_HOST),
        lambda: start_redis("hardened", HARDENED_DB_HOST, ca),
        lambda: start_memcached("weak", WEAK_DB_HOST),
        lambda: start_memcached("hardened", HARDENED_DB_HOST),
    ]
    with ExitStack() as stack:
        for start in starters:
            server = start()
            stack.callback(server.stop)
        stack.enter_context(silent_listeners(SILENT_HOST, DATABASE_PORTS))
        yield


def environment() -> Environment:
    """What a run over the benchmark inventory gives the probes."""
    credential = BasicCredential(type="basic", user="root", password_env=PASSWORD_ENV)
    return Environment(base_dir=REPOSITORY, today=dt.date.today(), scope=Scope(),
                       credentials={"mariadb-root": credential}, timeout=TIMEOUT)


def time_check(check_id: str, target: Target, context: TargetContext) -> tuple[float, str]:
    """One check's seconds and status on one target, through the engine's `evaluate`."""
    spec = default_registry().get(check_id)
    item = PlanItem("BENCH", PlannedCheck(spec, spec.params()), target.name)
    started = time.perf_counter()
    result = evaluate(item, context)
    return time.perf_counter() - started, result.status.value


def per_target(repeat: int) -> None:
    """Print cold per-check times and shared-facts per-target times (medians)."""
    print(f"{'target':<12} {'check':<27} {'status':<8} {'cold s':>7}")
    for target in targets():
        cold: dict[str, list[float]] = {check_id: [] for check_id in CHECKS}
        shared: list[float] = []
        statuses: dict[str, str] = {}
        for _ in range(repeat):
            for check_id in CHECKS:   # a fresh context: the check gathers its own facts
                seconds, statuses[check_id] = time_check(
                    check_id, target, TargetContext(target, environment()))
                cold[check_id].append(seconds)
            context = TargetContext(target, environment())
            shared.append(sum(time_check(check_id, target, context)[0] for check_id in CHECKS))
        for check_id in CHECKS:
            print(f"{target.name:<12} {check_id:<27} {statuses[check_id]:<8} "
                  f"{statistics.median(cold[check_id]):>7.3f}")
        print(f"{target.name:<12} {'all three, facts shared':<27} {'':<8} "
              f"{statistics.median(shared):>7.3f}")


def whole_run(workdir: Path) -> None:
    """Time `mis-audit run` as a separate process over the three targets."""
    (workdir / "profile.yaml").write_text(PROFILE)
    (workdir / "inventory.yaml").write_text(INVENTORY)
    seconds, finished = time_mis_audit_run(str(workdir / "profile.yaml"),
                                           workdir / "inventory.yaml", workdir / "run",
                                           "--timeout", str(TIMEOUT))
    print(f"\nmis-audit run over 3 targets x {len(CHECKS)} checks: {seconds:.2f} s whole "
          f"process (exit {finished.returncode}; 1 means not ready, as expected)")
    if finished.returncode not in (0, 1):
        return
    record = read_results(workdir / "run" / RESULTS_FILE)
    probing = (record.finished_at - record.started_at).total_seconds()
    print(f"of which probing and scoring (results.json start to end): {probing:.2f} s")


def main() -> None:
    """Start the servers, time the checks, stop the servers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure (median)")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mis-audit-bench-") as directory:
        workdir = Path(directory)
        started = time.perf_counter()
        with database_hosts(workdir):
            print(f"servers started in {time.perf_counter() - started:.1f} s\n")
            per_target(arguments.repeat)
            whole_run(workdir)


if __name__ == "__main__":
    main()
