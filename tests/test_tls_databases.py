"""TLS checks on database endpoints: PostgreSQL STARTTLS and Redis over TLS, weak and hardened."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit.facts.context import Environment, TargetContext
from audit.facts.services import service_map
from audit.model.inventory import Scope, Service, Target
from audit.vocabulary import Role, Status
from tests.servers.nginx import run_check
from tests.servers.pki import make_ca, make_server_cert
from tests.servers.postgres import DatabaseCA, PostgresServer, serving, start_postgres
from tests.servers.redis_server import RedisServer, start_redis

WEAK_ADDRESS = "127.61.3.10"
HARDENED_ADDRESS = "127.61.3.11"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> DatabaseCA:
    directory = tmp_path_factory.mktemp("tls-db-ca")
    ca_files, ca_cert, ca_key = make_ca(directory)
    cert = make_server_cert(directory, "db", [HARDENED_ADDRESS], ca=(ca_cert, ca_key))
    return DatabaseCA(ca_files.cert, {HARDENED_ADDRESS: cert})


@pytest.fixture(scope="module")
def postgres_plain() -> Iterator[PostgresServer]:
    yield from serving(start_postgres("weak", WEAK_ADDRESS))


@pytest.fixture(scope="module")
def postgres_tls(ca: DatabaseCA) -> Iterator[PostgresServer]:
    yield from serving(start_postgres("hardened", HARDENED_ADDRESS, ca))


@pytest.fixture(scope="module")
def redis_plain() -> Iterator[RedisServer]:
    yield from serving(start_redis("weak", WEAK_ADDRESS))


@pytest.fixture(scope="module")
def redis_tls(ca: DatabaseCA) -> Iterator[RedisServer]:
    yield from serving(start_redis("hardened", HARDENED_ADDRESS, ca))


def context_of(target: Target) -> TargetContext:
    return TargetContext(target, Environment(base_dir=Path.cwd(), today=dt.date.today(),
                                             scope=Scope(), timeout=10.0))


def db_target(address: str, kind: str, port: int) -> Target:
    return Target(name=f"{kind}-{address}", address=address, roles=[Role.DB],
                  services=[Service(kind=kind, port=port, tls=True)])


@pytest.mark.servers
def test_postgres_starttls_hardened_passes(postgres_tls: PostgresServer, ca: DatabaseCA) -> None:
    target = db_target(HARDENED_ADDRESS, "postgresql", postgres_tls.port)
    versions = run_check("tls.protocol_versions", target, ca.ca_file)
    assert versions.status is Status.PASS, versions
    assert versions.evidence.observed[0]["endpoint"] == \
        f"postgresql {HARDENED_ADDRESS}:5432 (STARTTLS POSTGRES)"
    assert versions.evidence.observed[0]["accepted"] == ["TLSv1.2", "TLSv1.3"]
    certificate = run_check("tls.certificate", target, ca.ca_file)
    assert certificate.status is Status.PASS, certificate


@pytest.mark.servers
def test_postgres_without_ssl_is_judged_by_the_plaintext_check(
        postgres_plain: PostgresServer) -> None:
    target = db_target(WEAK_ADDRESS, "postgresql", postgres_plain.port)
    for check_id in ("tls.protocol_versions", "tls.certificate"):
        result = run_check(check_id, target)
        assert result.status is Status.NOT_APPLICABLE, result
        assert result.summary.endswith("no TLS offered (judged by db.plaintext_accepted)")
    assert run_check("db.plaintext_accepted", target).status is Status.FAIL


@pytest.mark.servers
def test_redis_tls_hardened_passes(redis_tls: RedisServer, ca: DatabaseCA) -> None:
    target = db_target(HARDENED_ADDRESS, "redis", redis_tls.port)
    for check_id in ("tls.protocol_versions", "tls.certificate"):
        result = run_check(check_id, target, ca.ca_file)
        assert result.status is Status.PASS, result


@pytest.mark.servers
def test_plaintext_redis_declared_tls_is_an_error(redis_plain: RedisServer) -> None:
    # Redis waits in silence for the end of a command that a TLS hello never ends
    result = run_check("tls.protocol_versions", db_target(WEAK_ADDRESS, "redis",
                                                          redis_plain.port), timeout=4)
    assert result.status is Status.ERROR and result.error and result.error.type == "timeout"
    assert "plaintext-only" in result.summary


@pytest.mark.servers
def test_tls_found_by_the_scan_on_an_address_alone(postgres_tls: PostgresServer,
                                                   redis_tls: RedisServer, ca: DatabaseCA,
                                                   postgres_plain: PostgresServer,
                                                   redis_plain: RedisServer) -> None:
    hardened = Target(name="db-bare", address=HARDENED_ADDRESS, roles=[Role.DB])
    versions = run_check("tls.protocol_versions", hardened, ca.ca_file)
    assert versions.status is Status.PASS, versions
    assert [item["endpoint"] for item in versions.evidence.observed] == [
        f"postgresql {HARDENED_ADDRESS}:5432 (STARTTLS POSTGRES)", f"redis {HARDENED_ADDRESS}:6379"]
    assert run_check("tls.certificate", hardened, ca.ca_file).status is Status.PASS
    # in clear: PostgreSQL refuses the SSLRequest, Redis answers PING; only the plaintext
    # check judges them
    weak = Target(name="db-bare-weak", address=WEAK_ADDRESS, roles=[Role.DB])
    result = run_check("tls.protocol_versions", weak)
    assert result.status is Status.NOT_APPLICABLE, result
    assert result.summary.endswith("no TLS offered (judged by db.plaintext_accepted)")


@pytest.mark.servers
def test_the_service_map_names_each_port_by_its_answer(postgres_tls: PostgresServer,
                                                       redis_tls: RedisServer,
                                                       postgres_plain: PostgresServer,
                                                       redis_plain: RedisServer) -> None:
    def found(address: str) -> dict[int, tuple[str, bool, bool, str]]:
        scan = service_map(context_of(Target(name="bare", address=address, roles=[Role.DB])))
        assert scan.unavailable is None, scan.unavailable
        return {service.port: (service.kind, service.tls, service.confirmed, service.how)
                for service in scan.found}

    assert found(HARDENED_ADDRESS) == {
        5432: ("postgresql", False, True, "answered an SSLRequest with S"),
        6379: ("redis", True, False, "answered a TLS ClientHello")}
    assert found(WEAK_ADDRESS) == {
        5432: ("postgresql", False, True, "answered an SSLRequest with N"),
        6379: ("redis", False, True, "answered a Redis PING")}
