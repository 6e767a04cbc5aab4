"""Databases and caches as an unauthenticated client sees them: PostgreSQL, MariaDB/MySQL,
Redis, memcached.

For each endpoint of a target (its declared `services` of these kinds, plus the standard
ports found open by a TCP connect scan), two questions: can it be read without credentials, and does it accept
unencrypted client connections? Access is proven with metadata only (server version,
database or key counts); no row, key or value is ever read. Sessions are read-only where the
server has the notion, and every connection is bounded by a timeout, so a port that accepts
and never speaks costs one timeout.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
import pymysql  # type: ignore[import-untyped]
import redis
from pymemcache.client.base import Client as MemcacheClient  # type: ignore[import-untyped]
from pymemcache.exceptions import (  # type: ignore[import-untyped]
    MemcacheError,
    MemcacheUnexpectedCloseError,
)
from redis.backoff import NoBackoff
from redis.retry import Retry

from audit.errors import FactUnavailable
from audit.facts.budget import Budget
from audit.facts.context import Environment, TargetContext
from audit.facts.ports import canonical_service, target_address
from audit.facts.services import FoundService, known_services, map_of
from audit.messages import Message, Text, english, message_of, says
from audit.model.inventory import BasicCredential
from audit.vocabulary import Reason

# At most three connections per endpoint, endpoints in parallel, after a scan of at most half
# the check's time: each connection gets a slice small enough to end within the check's time.
CONNECT_SHARE, MIN_CONNECT_SECONDS, MAX_CONNECT_SECONDS = 1 / 8, 1.0, 5.0
MAX_TEXT = 120
# What proves access: server version, database or key counts, whether TLS carried the session.
Proof = dict[str, str | int | bool]
# libpq reads ~/.pgpass unless told otherwise: a path that cannot exist keeps it out.
NO_PASSFILE = "/dev/null/mis-audit-no-passfile"


@dataclass(frozen=True)
class Login:
    """A credential the inventory names for a service (used only where anonymity cannot tell)."""

    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Endpoint:
    """One database service to probe."""

    service: str
    address: str
    port: int
    timeout: float
    login: Login | None = None


@dataclass(frozen=True)
class EndpointFacts:
    """What an anonymous client learned from one endpoint; None means it could not tell."""

    service: str
    port: int
    reachable: bool = True
    unauthenticated: bool | None = None
    plaintext: bool | None = None
    proof: Proof = field(default_factory=dict)
    note: str = ""                       # in English, as the evidence shows it
    problem: Reason | None = None
    # The note as a message a report says in its language, when the probe worded it (see
    # `noted`); a note that is the server's own text has none.
    note_message: Message | None = field(default=None, compare=False, repr=False)

    @property
    def note_text(self) -> Text:
        """The note as a report says it."""
        return self.note_message or self.note

    def evidence(self) -> dict[str, Any]:
        """A plain, JSON-ready summary for a result's evidence."""
        record: dict[str, Any] = {"service": self.service, "port": self.port,
                                  "reachable": self.reachable}
        for key in ("unauthenticated", "plaintext"):
            if getattr(self, key) is not None:
                record[key] = getattr(self, key)
        if self.proof:
            record["proof"] = dict(self.proof)
        return with_outcome(record, self.note, self.problem)


def noted(facts: EndpointFacts, note: Text, **changes: Any) -> EndpointFacts:
    """`facts` with `note` (a message, or text the server sent) and the other `changes`."""
    return replace(facts, note=english(note), note_message=message_of(note), **changes)


def with_outcome(record: dict[str, Any], note: str, problem: Reason | None) -> dict[str, Any]:
    """An evidence record with the probe's note and the reason it fell short, where there are."""
    if note:
        record["note"] = note
    if problem is not None:
        record["problem"] = problem.value
    return record


@dataclass(frozen=True)
class DatabaseFacts:
    """Every database endpoint probed on one target address."""

    address: str
    endpoints: tuple[EndpointFacts, ...]


def untrusted_text(value: object) -> str:
    """Text a server sent, made printable and short."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(value)).strip()
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "..."


def _network_failure(facts: EndpointFacts, error: BaseException) -> EndpointFacts:
    """A refused, timed-out or broken connection, as facts."""
    if isinstance(error, ConnectionRefusedError) or "refused" in str(error).lower():
        return noted(facts, says("connection refused"), reachable=False)
    if isinstance(error, TimeoutError) or "timeout" in str(error).lower() \
            or "timed out" in str(error).lower():
        return noted(facts, says("no answer within the timeout"), problem=Reason.TIMEOUT)
    return noted(facts, untrusted_text(error), problem=Reason.UNREACHABLE)


# PostgreSQL ---------------------------------------------------------------------------------

def _postgres_proof(endpoint: Endpoint, sslmode: str) -> Proof:
    params: dict[str, Any] = {
        "host": endpoint.address, "port": endpoint.port, "user": "postgres", "password": "",
        "dbname": "postgres", "sslmode": sslmode, "passfile": NO_PASSFILE,
        # libpq waits at least 2 s, whatever it is told
        "connect_timeout": max(2, math.ceil(endpoint.timeout)), "gssencmode": "disable",
        "application_name": "mis-audit",
        "options": "-c default_transaction_read_only=on -c statement_timeout=5000"}
    with psycopg.connect(autocommit=True, **params) as connection:
        version = connection.execute("SHOW server_version").fetchone()
        databases = connection.execute("SELECT count(*) FROM pg_database").fetchone()
    return {"version": untrusted_text(version[0] if version else ""),
            "databases": int(databases[0]) if databases else 0,
            "tls": sslmode != "disable"}


def _postgres_refusal(error: psycopg.Error) -> str:
    # libpq prefixes "connection failed: connection to server at ... failed:"; keep the reason.
    return untrusted_text(str(error).rsplit("failed:", 1)[-1])


def probe_postgresql(endpoint: Endpoint) -> EndpointFacts:
    """Log in as `postgres` without a password, first without TLS, then with TLS."""
    facts = EndpointFacts("postgresql", endpoint.port)
    try:
        return replace(facts, unauthenticated=True, plaintext=True,
                       proof=_postgres_proof(endpoint, "disable"))
    except psycopg.Error as error:
        refusal = _postgres_refusal(error)
        if "no pg_hba.conf entry" not in refusal and "password" not in refusal \
                and "does not exist" not in refusal:
            return _network_failure(facts, error)
    # Refused by pg_hba for want of encryption, or asked for a password: in both cases the
    # server spoke; only a hostssl-only pg_hba refuses the plaintext session itself.
    facts = noted(facts, refusal, plaintext="no encryption" not in refusal,
                  unauthenticated=False)
    try:
        return replace(facts, unauthenticated=True, proof=_postgres_proof(endpoint, "require"))
    except psycopg.Error as error:
        over_tls = _postgres_refusal(error)
        if "SSL" in over_tls and "support" in over_tls:
            return facts                       # no TLS at all: the plaintext answer stands
        return noted(facts, says("without TLS: {refusal}; with TLS: {over_tls}",
                                 refusal=refusal, over_tls=over_tls))


# MariaDB / MySQL ----------------------------------------------------------------------------

ACCESS_DENIED = 1045
SECURE_TRANSPORT_REQUIRED = 3159      # MySQL's answer; MariaDB answers ACCESS_DENIED instead
CLIENT_SSL = 0x800


def _mysql_connection(endpoint: Endpoint, tls: bool, login: Login | None) -> pymysql.Connection:
    # No ssl_* arguments means "preferred" TLS without certificate checks: this probe tests
    # logins, not certificates.
    return pymysql.connect(host=endpoint.address, port=endpoint.port,
                           user=login.user if login else "root",
                           password=login.password if login else "",
                           connect_timeout=endpoint.timeout, read_timeout=endpoint.timeout,
                           write_timeout=endpoint.timeout, ssl_disabled=not tls,
                           autocommit=True, defer_connect=True)


def _mysql_session(endpoint: Endpoint, tls: bool,
                   login: Login | None = None) -> tuple[Proof | None, int, bool]:
    """(proof when the login worked, the error code otherwise, whether TLS is offered)."""
    connection = _mysql_connection(endpoint, tls, login)
    try:
        connection.connect()
    except pymysql.err.OperationalError as error:
        offered = bool(getattr(connection, "server_capabilities", 0) & CLIENT_SSL)
        code = error.args[0] if error.args and isinstance(error.args[0], int) else 0
        if code not in (ACCESS_DENIED, SECURE_TRANSPORT_REQUIRED):
            raise
        return None, code, offered
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            cursor.execute("SELECT VERSION(), (SELECT COUNT(*) FROM information_schema.SCHEMATA)")
            version, schemas = cursor.fetchone()
        offered = bool(connection.server_capabilities & CLIENT_SSL)
        return {"version": untrusted_text(version), "databases": int(schemas), "tls": tls}, 0, \
            offered
    finally:
        connection.close()


def probe_mysql(endpoint: Endpoint) -> EndpointFacts:
    """Log in as `root` with an empty password, without TLS, then with TLS if offered."""
    facts = EndpointFacts("mysql", endpoint.port)
    try:
        proof, code, tls_offered = _mysql_session(endpoint, tls=False)
        if proof:
            return replace(facts, unauthenticated=True, plaintext=True, proof=proof)
        if not tls_offered:
            return noted(facts, says("root needs a password; the server offers no TLS"),
                         unauthenticated=False, plaintext=True)
        proof, _, _ = _mysql_session(endpoint, tls=True)
        facts = replace(facts, unauthenticated=proof is not None, proof=proof or {})
        if code == SECURE_TRANSPORT_REQUIRED or proof:
            # MySQL says so; MariaDB denies in clear the very login it accepts over TLS.
            return noted(facts, says("plaintext connections are refused"), plaintext=False)
        return _mysql_plaintext_with_login(endpoint, facts)
    except (pymysql.err.MySQLError, OSError) as error:
        return _network_failure(facts, error.__cause__ or error)


def _mysql_plaintext_with_login(endpoint: Endpoint, facts: EndpointFacts) -> EndpointFacts:
    """MariaDB refuses a plaintext client with "access denied", the same answer as a wrong
    password: only a login that works over TLS can tell the two apart."""
    if endpoint.login is None:
        return noted(facts, says("TLS is offered; telling whether plaintext logins are "
                                 "refused needs a credential for this service"))
    over_tls, _, _ = _mysql_session(endpoint, tls=True, login=endpoint.login)
    if over_tls is None:
        return noted(facts, says("the inventory's credential for this service was refused"),
                     problem=Reason.PERMISSION_DENIED)
    in_clear, _, _ = _mysql_session(endpoint, tls=False, login=endpoint.login)
    return noted(facts, says("the inventory's credential logs in without TLS too") if in_clear
                 else says("the inventory's credential logs in over TLS only"),
                 plaintext=in_clear is not None)


# Redis --------------------------------------------------------------------------------------

def redis_client(address: str, port: int, timeout: float, tls: bool,
                 login: Login | None = None) -> redis.Redis:
    """A Redis client for one bounded exchange: no retries, RESP2, no CLIENT SETINFO, so
    nothing is written; any certificate accepted (the TLS checks judge it)."""
    return redis.Redis(host=address, port=port, protocol=2, driver_info=None,
                       username=login.user if login else None,
                       password=login.password if login else None,
                       socket_connect_timeout=timeout, socket_timeout=timeout,
                       retry=Retry(NoBackoff(), 0), ssl=tls, ssl_cert_reqs="none",
                       ssl_check_hostname=False, single_connection_client=True)


def _redis_access(endpoint: Endpoint, tls: bool) -> EndpointFacts:
    """Raises redis.ConnectionError when the port does not speak RESP over this transport."""
    facts = EndpointFacts("redis", endpoint.port, plaintext=not tls)
    client = redis_client(endpoint.address, endpoint.port, endpoint.timeout, tls)
    try:
        client.ping()
        version = client.info("server").get("redis_version", "")
        return replace(facts, unauthenticated=True,
                       proof={"version": untrusted_text(version), "keys": int(client.dbsize()),
                              "tls": tls})
    except redis.AuthenticationError as error:
        return noted(facts, untrusted_text(error), unauthenticated=False)
    except redis.ResponseError as error:          # protected mode: DENIED
        return noted(facts, untrusted_text(error), unauthenticated=False)
    finally:
        client.close()


def probe_redis(endpoint: Endpoint) -> EndpointFacts:
    """PING and INFO without a password, in clear, then over TLS when the clear port hangs up."""
    facts = EndpointFacts("redis", endpoint.port)
    try:
        return _redis_access(endpoint, tls=False)
    except redis.TimeoutError as error:
        return _network_failure(facts, error)
    except redis.ConnectionError as error:
        if "refused" in str(error).lower():
            return _network_failure(facts, error)
    try:                                        # closed on a plaintext PING: a TLS-only port?
        return _redis_access(endpoint, tls=True)
    except redis.RedisError as error:
        return replace(_network_failure(facts, error), plaintext=False)


# memcached ----------------------------------------------------------------------------------

def probe_memcached(endpoint: Endpoint) -> EndpointFacts:
    """`stats` without SASL: memcached's text protocol has no encryption."""
    facts = EndpointFacts("memcached", endpoint.port)
    client = MemcacheClient((endpoint.address, endpoint.port), connect_timeout=endpoint.timeout,
                            timeout=endpoint.timeout, no_delay=True)
    try:
        stats = client.stats()
    except MemcacheUnexpectedCloseError:
        return noted(facts, says("the server closed the connection on `stats`"),
                     unauthenticated=False, plaintext=False)
    except MemcacheError as error:               # a SASL build answers errors until login
        return noted(facts, untrusted_text(error), unauthenticated=False, plaintext=True)
    except OSError as error:
        return _network_failure(facts, error)
    finally:
        client.close()
    return replace(facts, unauthenticated=True, plaintext=True,
                   proof={"version": untrusted_text(stats.get(b"version", b"").decode(
                              "utf-8", "replace")),
                          "items": int(stats.get(b"curr_items", 0))})


PROBERS: dict[str, Callable[[Endpoint], EndpointFacts]] = {
    "postgresql": probe_postgresql, "mysql": probe_mysql, "redis": probe_redis,
    "memcached": probe_memcached,
}


def connect_seconds(budget: Budget) -> float:
    """Each connection's timeout: a slice of the check's time, between 1 and 5 seconds."""
    return budget.step(CONNECT_SHARE, MIN_CONNECT_SECONDS, MAX_CONNECT_SECONDS)


def service_login(environment: Environment, credential: str | None) -> Login | None:
    """The user and password of a basic credential the inventory names (never logged)."""
    if credential is None:
        return None
    reference = environment.credentials.get(credential)
    if not isinstance(reference, BasicCredential):
        raise FactUnavailable(Reason.NOT_FOUND, says(
            "credential {credential} is not a basic (user and password) credential",
            credential=repr(credential)))
    if reference.password_env is not None:
        password = os.environ.get(reference.password_env)
        if password is None:
            raise FactUnavailable(Reason.NOT_FOUND, says(
                "credential {credential}: environment variable {variable} is not set",
                credential=repr(credential), variable=reference.password_env))
        return Login(reference.user, password)
    path = environment.resolve(str(reference.password_file))
    try:
        return Login(reference.user, path.read_text(encoding="utf-8").strip())
    except OSError as error:
        raise FactUnavailable(Reason.NOT_FOUND, says(
            "credential {credential}: cannot read {path}: {error}", credential=repr(credential),
            path=str(path), error=str(error.strerror))) from None


def database_endpoints(context: TargetContext) -> list[Endpoint]:
    """The target's database services: declared ones, then those the scan found (identified
    by their own handshake, or silent on their conventional port)."""
    address = target_address(context)
    environment = context.environment
    timeout = connect_seconds(context.budget)
    return [Endpoint(canonical_service(service.kind), address, service.port, timeout,
                     service_login(environment, service.credential))
            for service in known_services(context, need_scan=True)
            if canonical_service(service.kind) in PROBERS]


def database_access(context: TargetContext) -> DatabaseFacts:
    """Probe every database endpoint of the target, in parallel."""
    endpoints = database_endpoints(context)
    if not endpoints:
        return DatabaseFacts(target_address(context), ())
    scan = map_of(context)
    with ThreadPoolExecutor(max_workers=len(endpoints),
                            thread_name_prefix="mis-audit-db") as pool:
        found = pool.map(lambda endpoint: _silent(scan.on_port(endpoint.port), endpoint)
                         or probe_endpoint(endpoint), endpoints)
        return DatabaseFacts(target_address(context), tuple(found))


def _silent(found: FoundService | None, endpoint: Endpoint) -> EndpointFacts | None:
    """The fact of a port the scan found silent, without waiting for it a second time."""
    if found is None or not found.silent:
        return None
    return noted(EndpointFacts(endpoint.service, endpoint.port, problem=Reason.TIMEOUT),
                 says("accepted the connection, then no answer within the timeout"))


def probe_endpoint(endpoint: Endpoint) -> EndpointFacts:
    """One endpoint's facts; a failure the prober did not foresee (a server answering
    something no client library expects) stays with that endpoint instead of losing them all."""
    try:
        return PROBERS[endpoint.service](endpoint)
    except Exception as error:  # noqa: BLE001 (the other endpoints' facts must survive)
        return EndpointFacts(endpoint.service, endpoint.port, problem=Reason.CHECK_FAILED,
                             note=untrusted_text(f"{type(error).__name__}: {error}"))
