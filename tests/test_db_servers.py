"""Database probes and checks against real servers: a weak and a hardened database host, a
listener that accepts and never speaks, and a whole run through the engine."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from runs import run_audit, statuses

from audit.facts.context import Environment, TargetContext
from audit.facts.databases import DatabaseFacts, EndpointFacts, database_access
from audit.facts.services import DATABASE_PORTS
from audit.model.inventory import BasicCredential, Scope, Service, Target
from audit.model.results import Result, RunResults
from audit.run import results_json
from audit.vocabulary import Role, Status

if TYPE_CHECKING:  # imported for real by pytest_plugins, so that pytest rewrites their asserts
    from tests.servers.mariadb import MariaDBServer
    from tests.servers.memcached import MemcachedServer
    from tests.servers.postgres import DatabaseCA, PostgresServer
    from tests.servers.redis_server import RedisServer

pytest_plugins = ["tests.servers.postgres", "tests.servers.mariadb", "tests.servers.redis_server",
                  "tests.servers.memcached"]
pytestmark = pytest.mark.servers

SILENT_HOST = "127.60.0.20"
PASSWORD_ENV = "MIS_AUDIT_TEST_MARIADB_PASSWORD"
ROOT_CREDENTIAL = BasicCredential(type="basic", user="root", password_env=PASSWORD_ENV)


@pytest.fixture(scope="module")
def weak_host(postgres_weak: PostgresServer, mariadb_weak: MariaDBServer,
              redis_weak: RedisServer, memcached_weak: MemcachedServer) -> str:
    """Every weak database server, on one address."""
    return postgres_weak.address


@pytest.fixture(scope="module")
def hardened_host(postgres_hardened: PostgresServer, mariadb_hardened: MariaDBServer,
                  redis_hardened: RedisServer, memcached_hardened: MemcachedServer,
                  monkeypatch_module: pytest.MonkeyPatch) -> str:
    """Every hardened database server, on one address; root's password in the environment."""
    monkeypatch_module.setenv(PASSWORD_ENV, str(mariadb_hardened.password))
    return postgres_hardened.address


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture()
def silent_host() -> Iterator[str]:
    """Every standard database port accepts TCP connections and never says a word."""
    from tests.servers.hostile import silent_listeners
    with silent_listeners(SILENT_HOST, DATABASE_PORTS) as address:
        yield address


def gather(target: Target, timeout: float = 8.0) -> DatabaseFacts:
    environment = Environment(base_dir=Path.cwd(), today=dt.date.today(), scope=Scope(),
                              credentials={"mariadb-root": ROOT_CREDENTIAL}, timeout=timeout)
    return TargetContext(target, environment).gather(database_access)


def db_target(address: str, *services: Service) -> Target:
    return Target(name=f"db-{address}", address=address, roles=[Role.DB],
                  services=list(services))


def by_service(facts: DatabaseFacts) -> dict[str, EndpointFacts]:
    return {endpoint.service: endpoint for endpoint in facts.endpoints}


def test_weak_host_is_readable_in_clear_with_metadata_as_proof(weak_host: str) -> None:
    found = by_service(gather(db_target(weak_host)))
    assert sorted(found) == ["memcached", "mysql", "postgresql", "redis"]
    assert all(e.unauthenticated and e.plaintext for e in found.values())
    assert found["postgresql"].proof["version"].startswith("15.")
    assert found["postgresql"].proof["databases"] == 3      # postgres, template0, template1
    assert "MariaDB" in str(found["mysql"].proof["version"])
    assert found["redis"].proof == {"version": found["redis"].proof["version"], "keys": 0,
                                    "tls": False}
    assert set(found["memcached"].proof) == {"version", "items"}


def test_hardened_host_needs_credentials_and_tls(hardened_host: str) -> None:
    declared = Service(kind="mariadb", port=3306, credential="mariadb-root")
    found = by_service(gather(db_target(hardened_host, declared)))
    assert sorted(found) == ["mysql", "postgresql", "redis"], "memcached is off the network"
    for endpoint in found.values():
        assert (endpoint.unauthenticated, endpoint.plaintext) == (False, False), endpoint
    assert "no encryption" in found["postgresql"].note
    assert found["mysql"].note == "the inventory's credential logs in over TLS only"
    assert found["redis"].proof == {}


def test_tls_only_mariadb_without_a_credential_cannot_tell_plaintext(hardened_host: str) -> None:
    mysql = by_service(gather(db_target(hardened_host)))["mysql"]
    assert mysql.unauthenticated is False
    assert mysql.plaintext is None
    assert "needs a credential" in mysql.note


@pytest.fixture()
def tls_only_but_open(database_ca: DatabaseCA) -> Iterator[Target]:
    """TLS required, yet no password: PostgreSQL `hostssl ... trust`, MariaDB requiring TLS with
    root's password emptied, Redis TLS-only with its default user turned on without a password; on the hardened host's
    address (its certificate), on ports of their own, for one test only (the service scan of
    the hardened host would rightly find them)."""
    import psycopg
    import pymysql
    import redis

    from tests.servers.mariadb import start_mariadb
    from tests.servers.postgres import HARDENED_DB_HOST, HARDENED_PASSWORD, start_postgres
    from tests.servers.redis_server import start_redis

    address = HARDENED_DB_HOST
    with ExitStack() as stack:
        postgres = start_postgres("hardened", address, database_ca, port=5433)
        stack.callback(postgres.stop)
        (postgres.process.workdir / "data" / "pg_hba.conf").write_text(
            "hostssl all all 0.0.0.0/0 trust\n")
        os.kill(postgres.process.pid, signal.SIGHUP)
        mariadb = start_mariadb("hardened", address, database_ca, port=3307)
        stack.callback(mariadb.stop)
        with pymysql.connect(host=address, port=3307, user="root", password=HARDENED_PASSWORD,
                             ssl={"ca": str(database_ca.ca_file)}) as admin, \
                admin.cursor() as cursor:
            for host in ("localhost", "127.0.0.1", "::1"):
                cursor.execute(f"ALTER USER 'root'@'{host}' IDENTIFIED BY ''")
        cache = start_redis("hardened", address, database_ca, port=6380)
        stack.callback(cache.stop)
        redis.Redis(host=address, port=6380, ssl=True, ssl_cert_reqs="none", username="admin",
                    password=HARDENED_PASSWORD).acl_setuser("default", enabled=True, nopass=True,
                                                            keys=["*"], commands=["+@all"])
        deadline = time.monotonic() + 10       # until PostgreSQL has re-read pg_hba.conf
        while True:
            try:
                psycopg.connect(host=address, port=5433, user="postgres", dbname="postgres",
                                sslmode="require", connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield db_target(address, Service(kind="postgresql", port=5433),
                        Service(kind="mysql", port=3307), Service(kind="redis", port=6380))


def test_tls_only_services_without_a_password_are_open_over_tls(
        tls_only_but_open: Target) -> None:
    found = gather(tls_only_but_open)
    own_ports = {service.port for service in tls_only_but_open.services}
    endpoints = {e.service: e for e in found.endpoints if e.port in own_ports}
    assert sorted(endpoints) == ["mysql", "postgresql", "redis"]
    for endpoint in endpoints.values():
        assert (endpoint.unauthenticated, endpoint.plaintext) == (True, False), endpoint
        assert endpoint.proof["tls"] is True


def test_a_declared_service_that_is_closed_is_unreachable(hardened_host: str) -> None:
    found = gather(db_target(hardened_host, Service(kind="memcached", port=11211)))
    assert EndpointFacts("memcached", 11211, reachable=False,
                         note="connection refused") in found.endpoints


def test_silent_listeners_cost_no_more_than_the_timeout(silent_host: str) -> None:
    timeout = 6.0
    started = time.monotonic()
    found = gather(db_target(silent_host), timeout=timeout)
    elapsed = time.monotonic() - started
    assert elapsed < timeout * 0.75, f"took {elapsed:.1f} s"   # one connect timeout: 2 s
    assert sorted(e.service for e in found.endpoints) == sorted(DATABASE_PORTS.values())
    assert all(e.problem == "timeout" and e.unauthenticated is None for e in found.endpoints)


PROFILE = """
id: db-test
title: Database checks
version: "1"
threshold: 80
controls:
  - id: NET-DB
    title: No database port answers from the network
    severity: critical
    checks: [{check: net.db_ports_reachable}]
  - id: DB-AUTH
    title: Databases require credentials
    severity: critical
    checks: [{check: db.unauthenticated_access}]
  - id: DB-TLS
    title: Databases refuse plaintext clients
    severity: high
    checks: [{check: db.plaintext_accepted}]
"""

INVENTORY = """
organisation: Database test clinic
scope: {{networks: [127.60.0.0/16]}}
credentials:
  mariadb-root: {{type: basic, user: root, password_env: {password_env}}}
targets:
  - {{name: db-weak, address: {weak}, roles: [db]}}
  - name: db-hardened
    address: {hardened}
    roles: [db]
    services: [{{kind: mariadb, port: 3306, credential: mariadb-root}}]
  - {{name: db-silent, address: {silent}, roles: [db]}}
  - {{name: front, address: 127.60.0.30, roles: [web]}}
"""


def result_of(results: RunResults, check: str, target: str) -> Result:
    return next(r for r in results.results if (r.check, r.target) == (check, target))


def test_a_run_through_the_engine(weak_host: str, hardened_host: str, silent_host: str,
                                  tmp_path: Path) -> None:
    results = run_audit(tmp_path, PROFILE, INVENTORY.format(
        password_env=PASSWORD_ENV, weak=weak_host, hardened=hardened_host, silent=silent_host),
        timeout=8.0)
    assert statuses(results) == {
        ("net.db_ports_reachable", "db-weak"): Status.FAIL,
        ("net.db_ports_reachable", "db-hardened"): Status.FAIL,   # reachable, but locked
        ("net.db_ports_reachable", "db-silent"): Status.FAIL,
        ("net.db_ports_reachable", "front"): Status.PASS,
        ("db.unauthenticated_access", "db-weak"): Status.FAIL,
        ("db.unauthenticated_access", "db-hardened"): Status.PASS,
        ("db.unauthenticated_access", "db-silent"): Status.ERROR,
        ("db.plaintext_accepted", "db-weak"): Status.FAIL,
        ("db.plaintext_accepted", "db-hardened"): Status.PASS,
        ("db.plaintext_accepted", "db-silent"): Status.ERROR,
    }
    silent = result_of(results, "db.unauthenticated_access", "db-silent")
    assert silent.error is not None and silent.error.type == "timeout"
    assert silent.duration_ms < 8000, "a silent server costs less than the check's timeout"
    assert os.environ[PASSWORD_ENV] not in results_json(results), "a secret never reaches results"
    weak = result_of(results, "db.unauthenticated_access", "db-weak")
    assert weak.summary == ("mysql:3306, postgresql:5432, redis:6379, memcached:11211 readable "
                            f"without credentials at {weak_host}")
    exposed = result_of(results, "net.db_ports_reachable", "db-hardened")
    assert [item["port"] for item in exposed.evidence.observed] == [3306, 5432, 6379]
