"""The services a target offers, as the scanner sees them: the service map.

One bounded TCP connect scan (nmap) of the common service ports of a medical network that
the inventory does not declare, then each open port identified by what it answers to the project's own
first messages: a TLS ClientHello, a PostgreSQL SSLRequest, a Redis PING, a memcached
`version`, an HTTP HEAD, a DICOM A-ASSOCIATE-RQ, or the banner a server sends first (SSH,
MySQL). A port that answers none of them keeps its conventional kind, unconfirmed, so a
silent database port is still probed (and said to be silent) rather than forgotten. Nothing
here writes to a service: each first message is one a client sends before logging in.

The map is gathered once per target and shared by every probe; what the inventory declares
comes first and is never overridden by what the scan guessed.
"""

from __future__ import annotations

import functools
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from audit.errors import FactUnavailable, Unavailable
from audit.facts.context import TargetContext
from audit.facts.net import USER_AGENT, first_answer, speaks_tls, tls_answer, url_host
from audit.facts.ports import (
    PortScan,
    PortTable,
    ServicePorts,
    canonical_service,
    scan_seconds,
    scan_tcp_ports,
    target_address,
)
from audit.model.inventory import Service

# The database services the database checks probe, on their conventional ports.
DATABASE_PORTS: dict[int, str] = {5432: "postgresql", 3306: "mysql", 6379: "redis",
                                  11211: "memcached"}
# Conventional kind behind each commonly used port of a clinic or hospital network.
COMMON_PORTS: dict[int, str] = {
    **DATABASE_PORTS,
    21: "ftp", 22: "ssh", 23: "telnet", 25: "smtp", 80: "http", 104: "dicom", 443: "https",
    445: "smb", 1433: "mssql", 1521: "oracle", 2222: "ssh", 2575: "hl7", 2762: "dicom",
    3000: "http",
    3389: "rdp", 4242: "dicom", 5000: "http", 5984: "couchdb", 6380: "redis", 8000: "http",
    8008: "http", 8042: "pacs-http", 8080: "http", 8081: "http", 8443: "https", 8888: "http",
    8123: "clickhouse", 9042: "cassandra", 9200: "elasticsearch", 11112: "dicom",
    27017: "mongodb",
}
# Kinds a plain-text answer is recognised by; each one's first message and recogniser.
SERVER_SPEAKS_FIRST = frozenset({"ssh", "mysql", "ftp", "smtp"})
HTTP_KINDS = frozenset({"http", "https", "pacs-http", "fhir"})
# Kinds recognised by a plain-text first message, and what that message is.
PLAIN_ASKED = {**{kind: "an HTTP HEAD" for kind in HTTP_KINDS}, "redis": "a Redis PING",
               "memcached": "a memcached version", "dicom": "a DICOM association request"}
PLAIN_FIRST = frozenset({"redis", "memcached", "dicom"})
POSTGRES_SSL_REQUEST = struct.pack("!II", 8, 80877103)
DICOM_ANSWERS = {0x02: "A-ASSOCIATE-AC", 0x03: "A-ASSOCIATE-RJ", 0x07: "A-ABORT"}
MYSQL_PROTOCOL_10, MYSQL_ERROR = 0x0A, 0xFF
MAX_IDENTIFYING = 8     # ports identified at once on one target
# The least a ClientHello is waited for on a port that answered a HEAD in plain HTTP.
TLS_AFTER_HTTP_WAIT = 0.5


@dataclass(frozen=True)
class FoundService:
    """One open port, what is behind it and how that was told.

    `confirmed` is False when nothing the port answered named its protocol: the kind is then
    the port's conventional one. `starttls` is set for a PostgreSQL that answered an
    SSLRequest (True: it offers TLS in-band; False: it refused).
    """

    port: int
    kind: str
    tls: bool
    confirmed: bool
    how: str
    starttls: bool | None = None
    silent: bool = False        # accepted the connection, then answered nothing at all

    def service(self) -> Service:
        """The found service as an inventory service: TLS when it answered TLS, otherwise
        unset (each probe judges a plain port its own way, as for an undeclared one). A
        port conventionally HTTPS that did not answer TLS is tried as plain HTTP."""
        kind = "http" if self.kind == "https" and not self.tls else self.kind
        return Service(kind=kind, port=self.port, tls=self.tls or None)


@dataclass(frozen=True)
class ServiceMap:
    """What the scan of one address found; `unavailable` says why there is no scan."""

    address: str
    scanned: tuple[int, ...] = ()
    found: tuple[FoundService, ...] = ()
    unavailable: Unavailable | None = None
    nmap_names: dict[int, str] = field(default_factory=dict)

    def on_port(self, port: int) -> FoundService | None:
        """What was found on `port`, if it is open."""
        return next((service for service in self.found if service.port == port), None)


def service_map(context: TargetContext) -> ServiceMap:
    """Scan the common ports the target does not declare, and identify each open one."""
    try:
        address = target_address(context)
    except FactUnavailable as unavailable:
        return ServiceMap("", unavailable=unavailable.unavailable)
    # Declared ports are the inventory's word: neither scanned nor second-guessed here.
    declared = {service.port for service in context.target.services}
    ports = {port: kind for port, kind in COMMON_PORTS.items() if port not in declared}
    try:
        scan = scan_tcp_ports(address, ports, scan_seconds(context.budget))
    except FactUnavailable as unavailable:
        return ServiceMap(address, tuple(sorted(ports)), unavailable=unavailable.unavailable)
    found = identify_all(address, scan.open, ports, context.budget.step())
    return ServiceMap(address, scan.scanned, found, nmap_names=scan.nmap_names)


def identify_all(address: str, ports: Sequence[int], hints: Mapping[int, str],
                 timeout: float) -> tuple[FoundService, ...]:
    """`identify` each open port of an address, a few at a time, in port order."""
    if not ports:
        return ()
    with ThreadPoolExecutor(max_workers=min(MAX_IDENTIFYING, len(ports)),
                            thread_name_prefix="mis-audit-identify") as pool:
        return tuple(pool.map(lambda port: identify(address, port, hints[port], timeout),
                              ports))


def map_of(context: TargetContext) -> ServiceMap:
    """The target's service map, gathered once and shared by every probe."""
    return context.gather(service_map)


def known_services(context: TargetContext, need_scan: bool = False) -> list[Service]:
    """The target's declared services, then those the scan found on the other ports. With
    `need_scan`, a scan that could not run is the probe's own failure (an empty list must
    never read as "nothing there")."""
    scan = map_of(context)
    if need_scan and scan.unavailable is not None:
        raise scan.unavailable.error()
    return list(context.target.services) + [service.service() for service in scan.found]


def services_of_kind(context: TargetContext, *kinds: str) -> list[Service]:
    """The target's services of the given kinds, declared ones first."""
    wanted = {canonical_service(kind) for kind in kinds}
    return [service for service in known_services(context)
            if canonical_service(service.kind) in wanted]


def identify(address: str, port: int, hint: str, timeout: float) -> FoundService:
    """What answers on an open port, told by the first messages of the protocols it may
    speak; its conventional kind, unconfirmed, when none of them is recognised."""
    try:
        if hint in SERVER_SPEAKS_FIRST:
            banner = _banner_kind(first_answer(address, port, b"", timeout, limit=8))
            if banner:
                return FoundService(port, banner[0], False, True, banner[1])
        if hint == "postgresql":
            return _postgres(address, port, timeout)
        if hint in PLAIN_FIRST:
            return _plain_then_tls(address, port, hint, timeout)
        return _tls_then_plain(address, port, hint, timeout)
    except FactUnavailable as unavailable:
        return FoundService(port, hint, False, False,
                            f"open, then {unavailable.unavailable.message}")


def _plain_then_tls(address: str, port: int, hint: str, timeout: float) -> FoundService:
    """For protocols a TLS listener refuses at once in clear, but whose plain listener
    would wait for a line a ClientHello never ends (Redis, memcached, DICOM)."""
    how, answer = _plain_answer(address, port, hint, timeout)
    if how:
        return FoundService(port, hint, False, True, how)
    if answer is None:
        return FoundService(port, hint, False, False, f"open; silent to {PLAIN_ASKED[hint]}",
                            silent=True)
    if speaks_tls(tls_answer(address, port, timeout)):
        return FoundService(port, hint, True, False, "answered a TLS ClientHello")
    return FoundService(port, hint, False, False, "open; no answer named its protocol")


def _web_port(address: str, port: int, hint: str, timeout: float) -> FoundService:
    """A web port: a timed HTTP HEAD, then a ClientHello. A plain HTTP server may wait in
    silence for the end of a request line that a ClientHello never sends (Apache, Python's
    servers): after a HEAD answered in HTTP with anything but 400, the ClientHello is given
    a few of the HEAD's round trips, not ANSWER_WAIT. A TLS server answers a ClientHello as
    fast as a HEAD, and one that answers plain HTTP at all says 400 (nginx, Apache's
    "plain HTTP to an SSL-enabled port"): then the ClientHello gets its whole wait."""
    started = time.monotonic()
    how, answer = _plain_answer(address, port, hint, timeout)
    round_trip = time.monotonic() - started
    plainly_http = how is not None and answer is not None and answer[9:12] not in (b"400", b"")
    wait = min(timeout, max(TLS_AFTER_HTTP_WAIT, 4 * round_trip)) if plainly_http else timeout
    if speaks_tls(tls_answer(address, port, wait)):
        return FoundService(port, _tls_kind(hint), True, False, "answered a TLS ClientHello")
    if how:
        return FoundService(port, _plain_kind(hint, hint), False, True, how)
    return FoundService(port, hint, False, False, "open; no answer named its protocol")


def _tls_then_plain(address: str, port: int, hint: str, timeout: float) -> FoundService:
    """For protocols whose plain listener answers garbage at once but whose TLS listener
    may answer plain text too; web ports have their own order (`_web_port`)."""
    if hint in HTTP_KINDS:
        return _web_port(address, port, hint, timeout)
    answer = tls_answer(address, port, timeout)
    if speaks_tls(answer):
        return FoundService(port, _tls_kind(hint), True, False, "answered a TLS ClientHello")
    if answer == "silent":
        # it waits for its own protocol's first message (MLLP)
        return FoundService(port, hint, False, False, "open; silent to a TLS ClientHello",
                            silent=True)
    how, _ = _plain_answer(address, port, "http", timeout)
    if how:
        return FoundService(port, _plain_kind(hint, "http"), False, True, how)
    return FoundService(port, hint, False, False, "open; no answer named its protocol")


def _tls_kind(hint: str) -> str:
    """The kind of a TLS port: a web port is https, any other keeps its conventional kind."""
    return "https" if hint == "http" else hint


def _plain_kind(hint: str, recognised: str) -> str:
    """An HTTP answer on a port conventionally holding another HTTP API keeps that kind."""
    return hint if recognised == "http" and hint in HTTP_KINDS and hint != "https" else recognised


def _postgres(address: str, port: int, timeout: float) -> FoundService:
    answer = first_answer(address, port, POSTGRES_SSL_REQUEST, timeout)
    if answer in (b"S", b"N"):
        offers = answer == b"S"
        return FoundService(port, "postgresql", False, True,
                            f"answered an SSLRequest with {answer.decode()}", starttls=offers)
    return FoundService(port, "postgresql", False, False, "open; did not answer an SSLRequest",
                        silent=answer is None)


def _banner_kind(banner: bytes | None) -> tuple[str, str] | None:
    """(kind, how) from the first bytes a server sent unasked."""
    if not banner:
        return None
    if banner.startswith(b"SSH-"):
        return "ssh", "sent an SSH banner"
    if len(banner) >= 5 and banner[3] == 0 and banner[4] in (MYSQL_PROTOCOL_10, MYSQL_ERROR):
        return "mysql", "sent a MySQL greeting"
    if banner[:3].isdigit():
        return ("smtp" if banner.startswith(b"220") else "ftp"), "sent a numbered greeting"
    return None


def _plain_answer(address: str, port: int, kind: str,
                  timeout: float) -> tuple[str | None, bytes | None]:
    """How a plain-text first message of `kind` was answered in that protocol (None: not
    recognised), and the answer itself (None: silence)."""
    if kind not in PLAIN_ASKED:
        return None, b""
    request, need, recognised = _plain_exchange(address, kind)
    answer = first_answer(address, port, request, timeout, need=need)
    return (recognised(answer) if answer else None), answer


def _plain_exchange(address: str, kind: str) -> tuple[bytes, int, Callable[[bytes], str | None]]:
    """The first message of `kind`, the bytes its answer needs, and its recogniser."""
    if kind in HTTP_KINDS:
        request = (f"HEAD / HTTP/1.0\r\nHost: {url_host(address)}\r\n"
                   f"User-Agent: {USER_AGENT}\r\n\r\n").encode()
        return request, 5, lambda answer: "answered HTTP" if answer.startswith(b"HTTP/") \
            else None
    if kind == "redis":
        return b"PING\r\n", 1, lambda answer: "answered a Redis PING" \
            if answer[:1] in (b"+", b"-") else None
    if kind == "memcached":
        return b"version\r\n", 8, lambda answer: "answered a memcached version" \
            if answer.startswith(b"VERSION") else None
    return association_request(), 1, lambda answer: \
        f"answered a DICOM association with {DICOM_ANSWERS[answer[0]]}" \
        if answer[0] in DICOM_ANSWERS else None


@functools.cache
def association_request() -> bytes:
    """An A-ASSOCIATE-RQ for Verification from the auditor to any called AE title (built once,
    by pynetdicom, imported here: only a port that may be DICOM needs it)."""
    from pynetdicom.pdu import A_ASSOCIATE_RQ
    from pynetdicom.pdu_primitives import A_ASSOCIATE, MaximumLengthNotification
    from pynetdicom.presentation import build_context

    primitive = A_ASSOCIATE()
    primitive.application_context_name = "1.2.840.10008.3.1.1.1"
    primitive.calling_ae_title = "MIS-AUDIT-PROBE"
    primitive.called_ae_title = "ANY-SCP"
    context = build_context("1.2.840.10008.1.1")
    context.context_id = 1
    primitive.presentation_context_definition_list = [context]
    length = MaximumLengthNotification()
    length.maximum_length_received = 16384
    primitive.user_information = [length]
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    return bytes(pdu.encode())



def service_ports(context: TargetContext, params: PortTable) -> ServicePorts:
    """Which ports of a table (plus the target's declared services of the table's kinds)
    are open: from the service map where it scanned them, the rest in one scan of its own."""
    services = {port: canonical_service(name) for port, name in params.ports.items()}
    kinds = set(services.values())
    services.update({service.port: canonical_service(service.kind)
                     for service in context.target.services
                     if canonical_service(service.kind) in kinds})
    address = target_address(context)
    known = map_of(context)
    mapped = set(known.scanned) if known.unavailable is None else set()
    rest = scan_tcp_ports(address, [port for port in services if port not in mapped],
                          scan_seconds(context.budget))
    open_ports = {service.port for service in known.found if service.port in services}
    names = {**{port: known.nmap_names.get(port, "unknown") for port in open_ports},
             **rest.nmap_names}
    scan = PortScan(address, tuple(sorted(services)), tuple(sorted(open_ports | set(rest.open))),
                    {port: names[port] for port in sorted(open_ports | set(rest.open))})
    return ServicePorts(scan, services)
