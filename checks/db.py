"""Databases and caches: who can read them, and whether they talk in clear."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, field_validator

from audit.errors import Unavailable
from audit.facts.databases import (
    PROBERS,
    DatabaseFacts,
    EndpointFacts,
    database_access,
)
from audit.facts.ports import canonical_service
from audit.messages import Message, listed, says
from audit.registry import Finding, Params, check, could_not_tell, failed, passed
from audit.vocabulary import Reason, Role


class DatabaseServicesParams(Params):
    """Which kinds of database service the check judges (postgresql, mysql, redis,
    memcached); a profile may leave one out, e.g. memcached, which has no TLS in Debian."""

    services: list[str] = Field(default_factory=lambda: list(PROBERS))

    @field_validator("services")
    @classmethod
    def _known_services(cls, services: list[str]) -> list[str]:
        names = [canonical_service(name) for name in services]
        unknown = sorted(set(names) - set(PROBERS))
        if unknown:
            raise ValueError(f"unknown database services {unknown}; known: {sorted(PROBERS)}")
        return names


@dataclass(frozen=True)
class Question:
    """One yes/no question asked of every endpoint; `yes` is the failing answer."""

    attribute: str          # the EndpointFacts field holding the answer
    yes: Message            # "{services} readable without credentials at {address}"
    no: Message             # "{services} require credentials at {address}"
    expected: str


def _name(endpoint: EndpointFacts) -> str:
    return f"{endpoint.service}:{endpoint.port}"


def _judge(facts: DatabaseFacts, p: DatabaseServicesParams, question: Question) -> Finding:
    """Fail on any endpoint answering yes; could not tell on any without an answer."""
    judged = [e for e in facts.endpoints if e.reachable and e.service in p.services]
    evidence = [e.evidence() for e in facts.endpoints]
    answers = {_name(e): getattr(e, question.attribute) for e in judged}
    guilty = [e for e in judged if answers[_name(e)] is True]
    if guilty:
        return failed(question.yes.given(services=", ".join(map(_name, guilty)),
                                         address=facts.address),
                      observed=[e.evidence() for e in guilty], expected=question.expected,
                      address=facts.address, endpoints=evidence)
    unknown = [e for e in judged if answers[_name(e)] is None]
    if unknown:
        # No verdict from partial facts: `error` with the reason, and what was seen.
        return could_not_tell(Unavailable(
            unknown[0].problem or Reason.CHECK_FAILED,
            says("could not tell for {services}", services=listed([
                says("{service}: {reason}", service=_name(e),
                     reason=e.note_text or says("no answer")) for e in unknown]))),
            address=facts.address, endpoints=evidence)
    if not judged:
        return passed(says("no database service reachable at {address}",
                           address=facts.address), observed=[],
                      expected=question.expected, address=facts.address, endpoints=evidence)
    return passed(question.no.given(services=", ".join(map(_name, judged)),
                                    address=facts.address),
                  observed=[], expected=question.expected, address=facts.address,
                  endpoints=evidence)


UNAUTHENTICATED = Question("unauthenticated",
                           says("{services} readable without credentials at {address}"),
                           says("{services} require credentials at {address}"),
                           "every database requires credentials")
PLAINTEXT = Question("plaintext", says("{services} accept unencrypted connections at {address}"),
                     says("{services} refuse unencrypted connections at {address}"),
                     "every database refuses unencrypted client connections")


@check(id="db.unauthenticated_access", title="Databases and caches cannot be read without "
       "credentials", applies_to=Role.DB, probe=database_access, params=DatabaseServicesParams)
def unauthenticated_access(facts: DatabaseFacts, p: DatabaseServicesParams) -> Finding:
    """A database that lets anyone in (PostgreSQL `trust`, MariaDB `root` without a password,
    Redis without `requirepass`, memcached on the network) hands every record, session and
    cached patient identifier to whoever reaches the port. The probe proves access with
    metadata only: server version and database or key counts. Require a password (PostgreSQL
    `scram-sha-256`, Redis `requirepass` or ACLs, MariaDB `root` by unix socket only), and keep
    memcached off the network (it has no login in Debian)."""
    return _judge(facts, p, UNAUTHENTICATED)


@check(id="db.plaintext_accepted", title="Databases and caches refuse unencrypted client "
       "connections", applies_to=Role.DB, probe=database_access, params=DatabaseServicesParams)
def plaintext_accepted(facts: DatabaseFacts, p: DatabaseServicesParams) -> Finding:
    """Queries and results sent in clear carry patients' data and passwords across the network
    for anyone on the path to read. Accept TLS only: PostgreSQL `hostssl` lines in pg_hba.conf,
    MariaDB `require_secure_transport=ON`, Redis `port 0` with a `tls-port`. For MariaDB, which
    answers a plaintext client with the same "access denied" as a wrong password, give the
    service a credential in the inventory so the probe can tell."""
    return _judge(facts, p, PLAINTEXT)
