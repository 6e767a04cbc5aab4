"""db.* checks on hand-built facts (exact statuses and evidence), and the database probe's
helpers that need no server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError

from audit.errors import FactUnavailable
from audit.facts.budget import Budget
from audit.facts.context import Environment
from audit.facts.databases import (
    DatabaseFacts,
    Endpoint,
    EndpointFacts,
    Login,
    connect_seconds,
    probe_endpoint,
    service_login,
)
from audit.model.inventory import BasicCredential, Scope, SshCredential
from audit.registry import Finding
from audit.vocabulary import Reason, Status
from checks.db import DatabaseServicesParams, plaintext_accepted, unauthenticated_access

ADDRESS = "10.0.0.5"
OPEN_POSTGRES = EndpointFacts("postgresql", 5432, unauthenticated=True, plaintext=True,
                              proof={"version": "15.4", "databases": 3, "tls": False})
LOCKED_POSTGRES = EndpointFacts("postgresql", 5432, unauthenticated=False, plaintext=False,
                                note="no pg_hba.conf entry ..., no encryption")
OPEN_REDIS = EndpointFacts("redis", 6379, unauthenticated=True, plaintext=True,
                           proof={"version": "7.0.15", "keys": 12, "tls": False})
TLS_REDIS = EndpointFacts("redis", 6379, unauthenticated=False, plaintext=False)
CLOSED_MEMCACHED = EndpointFacts("memcached", 11211, reachable=False, note="connection refused")
OPEN_MEMCACHED = EndpointFacts("memcached", 11211, unauthenticated=True, plaintext=True)
SILENT_MYSQL = EndpointFacts("mysql", 3306, problem=Reason.TIMEOUT,
                             note="no answer within the timeout")


def facts(*endpoints: EndpointFacts) -> DatabaseFacts:
    return DatabaseFacts(ADDRESS, endpoints)


def unauthenticated(*endpoints: EndpointFacts, **params: object) -> Finding:
    return unauthenticated_access(facts(*endpoints), DatabaseServicesParams(**params))


def plaintext(*endpoints: EndpointFacts, **params: object) -> Finding:
    return plaintext_accepted(facts(*endpoints), DatabaseServicesParams(**params))


def test_unauthenticated_access_fails_naming_each_open_service_with_its_proof() -> None:
    finding = unauthenticated(OPEN_POSTGRES, OPEN_REDIS, CLOSED_MEMCACHED)
    assert finding.status is Status.FAIL
    assert finding.summary == ("postgresql:5432, redis:6379 readable without credentials "
                               "at 10.0.0.5")
    assert [item["proof"] for item in finding.observed] == [
        {"version": "15.4", "databases": 3, "tls": False},
        {"version": "7.0.15", "keys": 12, "tls": False}]
    assert len(finding.details["endpoints"]) == 3


def test_unauthenticated_access_passes_when_every_reachable_service_asks_for_credentials(
) -> None:
    finding = unauthenticated(LOCKED_POSTGRES, TLS_REDIS, CLOSED_MEMCACHED)
    assert finding.status is Status.PASS
    assert finding.summary == "postgresql:5432, redis:6379 require credentials at 10.0.0.5"
    assert finding.observed == []


def test_nothing_reachable_passes() -> None:
    finding = unauthenticated(CLOSED_MEMCACHED)
    assert finding.status is Status.PASS
    assert finding.summary == "no database service reachable at 10.0.0.5"


def test_a_silent_service_is_could_not_tell_with_its_reason() -> None:
    finding = unauthenticated(LOCKED_POSTGRES, SILENT_MYSQL)
    assert finding.status is Status.ERROR and finding.reason is Reason.TIMEOUT
    assert "mysql:3306: no answer within the timeout" in finding.summary
    assert len(finding.details["endpoints"]) == 2, "what was seen stays in the evidence"


def test_a_proven_failure_outweighs_a_silent_service() -> None:
    assert unauthenticated(OPEN_REDIS, SILENT_MYSQL).status is Status.FAIL


def test_plaintext_fails_on_clear_text_services_and_passes_on_tls_only() -> None:
    failing = plaintext(OPEN_POSTGRES, TLS_REDIS)
    assert failing.status is Status.FAIL
    assert failing.summary == "postgresql:5432 accept unencrypted connections at 10.0.0.5"
    passing = plaintext(LOCKED_POSTGRES, TLS_REDIS)
    assert passing.status is Status.PASS
    assert passing.summary == ("postgresql:5432, redis:6379 refuse unencrypted connections "
                               "at 10.0.0.5")


def test_a_service_left_out_by_the_profile_is_not_judged() -> None:
    assert plaintext(LOCKED_POSTGRES, OPEN_MEMCACHED).status is Status.FAIL
    finding = plaintext(LOCKED_POSTGRES, OPEN_MEMCACHED,
                        services=["postgresql", "mysql", "redis"])
    assert finding.status is Status.PASS
    assert len(finding.details["endpoints"]) == 2, "evidence still lists every endpoint"


def test_undetermined_plaintext_without_a_credential_is_could_not_tell() -> None:
    tls_offered = EndpointFacts("mysql", 3306, unauthenticated=False,
                                note="TLS is offered; telling whether plaintext logins are "
                                     "refused needs a credential for this service")
    assert unauthenticated(tls_offered).status is Status.PASS
    finding = plaintext(tls_offered)
    assert finding.status is Status.ERROR and finding.reason is Reason.CHECK_FAILED
    assert "needs a credential" in finding.summary


def test_service_names_are_validated_and_aliases_accepted() -> None:
    assert DatabaseServicesParams(services=["MariaDB", "postgres"]).services == [
        "mysql", "postgresql"]
    with pytest.raises(ValidationError, match="unknown database services"):
        DatabaseServicesParams(services=["oracle"])
    with pytest.raises(ValidationError):
        DatabaseServicesParams(servics=["redis"])  # type: ignore[call-arg]


def test_endpoint_evidence_is_plain_json() -> None:
    assert SILENT_MYSQL.evidence() == {"service": "mysql", "port": 3306, "reachable": True,
                                       "note": "no answer within the timeout",
                                       "problem": "timeout"}


# Probe helpers that need no server ------------------------------------------------------------

def environment(tmp_path: Path, timeout: float = 30.0) -> Environment:
    credentials = {
        "by-env": BasicCredential(type="basic", user="root", password_env="MIS_AUDIT_TEST_PW"),
        "by-file": BasicCredential(type="basic", user="app", password_file="secret.txt"),
        "ssh": SshCredential(type="ssh", user="auditor"),
    }
    return Environment(base_dir=tmp_path, today=dt.date.today(), scope=Scope(),
                       credentials=credentials, timeout=timeout)


def test_service_credentials_are_read_from_their_reference(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIS_AUDIT_TEST_PW", "from-env")
    (tmp_path / "secret.txt").write_text("from-file\n")
    env = environment(tmp_path)
    assert service_login(env, "by-env") == Login("root", "from-env")
    assert service_login(env, "by-file") == Login("app", "from-file")
    assert service_login(env, None) is None
    assert "from-env" not in repr(service_login(env, "by-env")), "never shown in a repr"


def test_a_missing_secret_is_a_clear_could_not_tell(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIS_AUDIT_TEST_PW", raising=False)
    env = environment(tmp_path)
    for name, message in (("by-env", "MIS_AUDIT_TEST_PW is not set"),
                          ("by-file", "cannot read"), ("ssh", "not a basic")):
        with pytest.raises(FactUnavailable, match=message) as raised:
            service_login(env, name)
        assert raised.value.reason is Reason.NOT_FOUND


def test_connections_get_a_bounded_slice_of_the_check_timeout(tmp_path: Path) -> None:
    assert [connect_seconds(Budget(t)) for t in (2, 16, 30, 300)] == [1.0, 2.0, 3.75, 5.0]


def test_an_unforeseen_client_error_stays_with_its_endpoint() -> None:
    # pymysql refuses a negative timeout before connecting: no server is contacted.
    found = probe_endpoint(Endpoint("mysql", "127.60.0.22", 3306, timeout=-1.0))
    assert found.problem is Reason.CHECK_FAILED
    assert found.note.startswith("ValueError: ")
