"""FHIR facts: how a server answers a patient search made without a token.

Also the small network helpers the PACS, HL7 and web probes share: the per-step timeout, the
target's services of a kind, a deadline that cuts a peer's sockets, a bounded HTTP GET that
never follows redirects and never sends a secret.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Self
from urllib.parse import urlsplit

from audit.errors import FactUnavailable
from audit.facts.context import TargetContext
from audit.facts.ports import target_address
from audit.model.inventory import Service
from audit.vocabulary import Reason

# One network step (connect, handshake, request) never waits longer than this, whatever the
# run's timeout, so that a silent service costs seconds, not the whole check budget.
MAX_STEP_TIMEOUT = 10.0
MAX_BODY_BYTES = 1024 * 1024
USER_AGENT = "mis-audit (read-only security audit)"
FHIR_SERVICE_KIND = "fhir"
FHIR_JSON = "application/fhir+json, application/json;q=0.9"


def step_timeout(context: TargetContext) -> float:
    """How long one network step may wait: a quarter of the check's budget, within bounds."""
    return max(1.0, min(MAX_STEP_TIMEOUT, context.environment.timeout / 4))


def services_of_kind(context: TargetContext, *kinds: str) -> list[Service]:
    """The target's declared services of the given kinds, in inventory order."""
    return [service for service in context.target.services if service.kind in kinds]


def http_origin(address: str, service: Service) -> str:
    """`http(s)://address:port` of a declared service (https when `tls` is true)."""
    host = f"[{address}]" if ":" in address else address
    return f"{'https' if service.tls else 'http'}://{host}:{service.port}"


def open_connection(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to address:port; a refusal or a silence becomes FactUnavailable."""
    try:
        return socket.create_connection((address, port), timeout=timeout)
    except TimeoutError as error:
        raise FactUnavailable(Reason.TIMEOUT, f"{address}:{port}: no TCP answer within "
                                              f"{timeout:g} s") from error
    except OSError as error:
        raise FactUnavailable(Reason.UNREACHABLE, f"{address}:{port}: {error.strerror or error}") \
            from error


class SocketDeadline:
    """Shuts down the sockets it watches once `seconds` have passed.

    A socket timeout bounds each read, not an exchange: a peer that drips a byte per second
    (headers, a handshake, a PDU) keeps every read within it for ever. Shutting the socket
    down wakes whichever thread reads it with an end of stream. The deadline holds a
    duplicate of each descriptor, so it cuts the right socket even after a TLS wrapper took
    the original over, and never one that reused a closed descriptor. Use as a context
    manager around the exchange; `expired` tells afterwards why it ended.
    """

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._duplicates: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Self:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        with self._lock:
            for duplicate in self._duplicates:
                duplicate.close()
            self._duplicates.clear()

    def watch(self, sock: socket.socket) -> None:
        """Cut `sock` at the deadline (at once when it has already passed)."""
        with self._lock, suppress(OSError):
            duplicate = socket.fromfd(sock.fileno(), sock.family, sock.type)
            self._duplicates.append(duplicate)
            if self.expired:
                _shut_down(duplicate)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for duplicate in self._duplicates:
                _shut_down(duplicate)


def _shut_down(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def unverified_tls_context() -> ssl.SSLContext:
    """A client TLS context that accepts any certificate.

    These probes test access control, not certificates (the TLS checks judge those): an
    expired or self-signed certificate must not hide a PACS or FHIR API that is open.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass(frozen=True)
class HttpAnswer:
    """The status, media type and (size-capped) body of one HTTP answer."""

    status: int
    content_type: str
    body: bytes
    truncated: bool

    def json(self) -> object | None:
        """The body as JSON, None when it is not (or was cut)."""
        if self.truncated or not self.body:
            return None
        try:
            return json.loads(self.body)  # type: ignore[no-any-return]
        except (ValueError, UnicodeDecodeError):
            return None


def http_get(url: str, timeout: float, accept: str = "application/json",
             max_bytes: int = MAX_BODY_BYTES) -> HttpAnswer:
    """GET `url` without credentials, following no redirect, reading at most `max_bytes`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FactUnavailable(Reason.NOT_FOUND, f"not an http(s) URL: {url!r}")
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # The whole exchange (handshake, headers, body) within `timeout`, not each read.
    with SocketDeadline(timeout) as deadline:
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            raw = socket.create_connection((parts.hostname, port), timeout=timeout)
            connection.sock = raw
            deadline.watch(raw)
            if parts.scheme == "https":
                connection.sock = unverified_tls_context().wrap_socket(
                    raw, server_hostname=parts.hostname)
            connection.request("GET", path, headers={"User-Agent": USER_AGENT,
                                                     "Accept": accept})
            response = connection.getresponse()
            body, truncated = _read_capped(response, max_bytes, time.monotonic() + timeout)
            if deadline.expired:    # cut short: http.client takes a cut as the end of headers
                raise TimeoutError("the exchange was cut at its deadline")
            return HttpAnswer(response.status, response.getheader("Content-Type", "") or "",
                              body, truncated)
        except (OSError, http.client.HTTPException) as error:
            if deadline.expired:
                raise FactUnavailable(Reason.TIMEOUT, f"{url}: no complete answer within "
                                                      f"{timeout:g} s") from error
            if isinstance(error, TimeoutError):
                raise FactUnavailable(Reason.TIMEOUT, f"{url}: no answer within "
                                                      f"{timeout:g} s") from error
            if isinstance(error, ssl.SSLError):
                raise FactUnavailable(Reason.UNREACHABLE, f"{url}: TLS handshake failed: "
                                                          f"{error.reason or error}") from error
            raise FactUnavailable(Reason.UNREACHABLE, f"{url}: {type(error).__name__}: "
                                                      f"{str(error)[:200]}") from error
        finally:
            connection.close()


def _read_capped(response: http.client.HTTPResponse, max_bytes: int,
                 deadline: float) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        if time.monotonic() > deadline:  # a server dripping bytes must not hold the probe
            raise TimeoutError("body not received in time")
        chunk = response.read1(65536)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:max_bytes], True


@dataclass(frozen=True)
class FhirSearchAnswer:
    """How one FHIR base answered `/metadata` and `Patient?_count=1` without a token.

    Only counts are kept: never a name, an identifier or any other part of a resource.
    """

    base_url: str
    metadata_status: int | None
    search_status: int
    bundle: bool
    total: int | None
    entries: int | None


@dataclass(frozen=True)
class FhirFacts:
    """The answers of every FHIR base of a target."""

    answers: list[FhirSearchAnswer]


def fhir_base_urls(context: TargetContext) -> list[str]:
    """The target's `urls`, else one base per service of kind `fhir` (path `/`)."""
    if context.target.urls:
        return list(context.target.urls)
    services = services_of_kind(context, FHIR_SERVICE_KIND)
    if not services:
        raise FactUnavailable(Reason.NOT_FOUND, f"target {context.target.name!r} names no FHIR "
                              f"base: give it `urls` or a service of kind '{FHIR_SERVICE_KIND}'")
    address = target_address(context)
    return [http_origin(address, service) + "/" for service in services]


def fhir_anonymous_search(context: TargetContext) -> FhirFacts:
    """Ask each FHIR base for its metadata and for one Patient, without a token."""
    timeout = step_timeout(context)
    return FhirFacts([_search_one(base, timeout) for base in fhir_base_urls(context)])


def _search_one(base_url: str, timeout: float) -> FhirSearchAnswer:
    root = base_url.rstrip("/")
    search = http_get(f"{root}/Patient?_count=1", timeout, accept=FHIR_JSON)
    try:
        metadata_status: int | None = http_get(f"{root}/metadata", timeout,
                                               accept=FHIR_JSON).status
    except FactUnavailable:
        metadata_status = None  # only context for the report: the search decides
    is_bundle, total, entries = bundle_counts(search.json())
    return FhirSearchAnswer(base_url=base_url, metadata_status=metadata_status,
                            search_status=search.status, bundle=is_bundle, total=total,
                            entries=entries)


def bundle_counts(document: object) -> tuple[bool, int | None, int | None]:
    """Whether a JSON document is a FHIR Bundle, its `total` and its number of entries."""
    if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
        return False, None, None
    total = document.get("total")
    entries = document.get("entry", [])
    return (True, total if isinstance(total, int) and not isinstance(total, bool) else None,
            len(entries) if isinstance(entries, list) else None)
