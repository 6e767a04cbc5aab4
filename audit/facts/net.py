"""The one way mis-audit reaches a peer: trust, deadlines, raw TCP, and a bounded HTTP client.

- **Trust**: client TLS contexts are built once per trust configuration (the inventory's
  `trust.ca_file`, or the system store) and shared by every probe; loading a CA store costs
  tens of milliseconds of CPU, far more than a handshake. Libraries that speak their protocol
  themselves (sslyze, pynetdicom) are handed the same contexts or the anchors' file.
- **Deadlines**: a socket timeout bounds each read, not an exchange; `SocketDeadline` cuts a
  peer that drips bytes (headers, a handshake, a PDU) when the exchange's time is up.
- **Raw TCP** (DICOM, MLLP, a TLS hello): `open_connection`, a refusal or a silence a value.
- **HTTP**: `HttpClient`, one per probe: GET and POST with a byte cap and a deadline on every
  exchange, redirects never followed (where they point is itself the fact), one User-Agent,
  no proxy, no secret, and one kept-alive connection per origin.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import json
import os
import select
import socket
import ssl
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Self
from urllib.parse import urlencode, urlsplit, urlunsplit

from audit.errors import FactUnavailable
from audit.facts.context import TargetContext
from audit.messages import says
from audit.model.inventory import Service
from audit.vocabulary import Reason

USER_AGENT = "mis-audit (security posture audit; read-only)"
PAGE_BYTES = 64 * 1024
MAX_HEADERS = 64
MAX_HEADER_VALUE = 500
SYSTEM_CA_FILE = Path("/etc/ssl/certs/ca-certificates.crt")
# OpenSSL's refusal of a handshake message over its limit (100 KiB for a certificate chain):
# a client reads no further, so a server cannot make the probe hold megabytes.
OVERSIZED_HANDSHAKE = "EXCESSIVE_MESSAGE_SIZE"


@lru_cache(maxsize=16)
def verifying_context(ca_file: Path | None) -> ssl.SSLContext:
    """The client context that verifies certificates against `ca_file` (None: the system
    store) and host names: built once per trust configuration, shared by every probe."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


@lru_cache(maxsize=1)
def unverified_context() -> ssl.SSLContext:
    """A client context that accepts any certificate (no CA store is loaded).

    Probes of access control use it: an expired or self-signed certificate must not hide a
    PACS or FHIR API that is open (the TLS checks judge certificates).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def trust_anchor_file(ca_file: Path | None) -> Path:
    """The file of trust anchors for libraries that load their own (sslyze): the inventory's,
    else the system bundle; FactUnavailable when it is not there."""
    path = ca_file or SYSTEM_CA_FILE
    if not path.is_file():
        raise FactUnavailable(Reason.NOT_FOUND, says("trust anchors {path} not found",
                                                     path=str(path)))
    return path


class SocketDeadline:
    """Shuts down the sockets it watches once `seconds` have passed.

    Shutting a socket down wakes whichever thread reads it with an end of stream. The deadline
    holds a duplicate of each descriptor, so it cuts the right socket even after a TLS wrapper
    took the original over, and never one that reused a closed descriptor. Use as a context
    manager around the exchange; `expired` tells afterwards why it ended. Every deadline of
    the process is kept by one watchdog thread, not a timer thread each.
    """

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._seconds = seconds
        self._finished = False
        self._duplicates: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        _WATCHDOG.add(time.monotonic() + self._seconds, self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._finished = True
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

    def expire(self) -> None:
        """The time is up: cut what is watched, unless the exchange already ended."""
        with self._lock:
            if self._finished:
                return
            self.expired = True
            for duplicate in self._duplicates:
                _shut_down(duplicate)


class _Watchdog:
    """One thread that expires every SocketDeadline at its time (a heap of expiry times);
    a deadline whose exchange ended is dropped when its time comes."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, SocketDeadline]] = []
        self._condition = threading.Condition()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, when: float, deadline: SocketDeadline) -> None:
        with self._condition:
            heapq.heappush(self._heap, (when, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="mis-audit-deadlines")
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._condition.wait(self._heap[0][0] - time.monotonic() if self._heap
                                         else None)
                deadline = heapq.heappop(self._heap)[2]
            deadline.expire()

    def forget_thread(self) -> None:
        """In a forked child the thread is gone: the next deadline starts one."""
        self._condition = threading.Condition()
        self._heap.clear()
        self._thread = None


_WATCHDOG = _Watchdog()
os.register_at_fork(after_in_child=_WATCHDOG.forget_thread)


def _shut_down(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def open_connection(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to address:port; a refusal or a silence becomes FactUnavailable."""
    try:
        return socket.create_connection((address, port), timeout=timeout)
    except TimeoutError as error:
        raise FactUnavailable(Reason.TIMEOUT, says(
            "{where}: no TCP answer within {seconds} s", where=f"{address}:{port}",
            seconds=f"{timeout:g}")) from error
    except OSError as error:
        raise FactUnavailable(Reason.UNREACHABLE, says(
            "{where}: {error}", where=f"{address}:{port}",
            error=str(error.strerror or error))) from error


# A TLS server answers a ClientHello at once; a listener that waits for its own protocol's
# first message (MLLP, a DICOM acceptor) stays silent, and waiting a whole step for it only
# slows every audit of a weak network.
ANSWER_WAIT = 2.0
TLS_HANDSHAKE, TLS_ALERT, TLS_MAJOR_VERSION = 0x16, 0x15, 0x03


def first_answer(address: str, port: int, payload: bytes, timeout: float, need: int = 1,
                 limit: int = 64) -> bytes | None:
    """Send `payload` (empty: the peer speaks first) and return what comes back within
    ANSWER_WAIT: at least `need` bytes, at most `limit`; b"" when the peer closed or reset,
    None when it stayed silent. A refused or unanswered connection is FactUnavailable."""
    with open_connection(address, port, timeout) as connection:
        deadline = time.monotonic() + min(timeout, ANSWER_WAIT)
        try:
            if payload:
                connection.sendall(payload)
            return _receive_at_least(connection, deadline, need, limit)
        except TimeoutError:
            return None
        except OSError:     # reset by the peer: it did not speak our protocol
            return b""


def _receive_at_least(connection: socket.socket, deadline: float, need: int,
                      limit: int) -> bytes:
    received = b""
    while len(received) < need:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        connection.settimeout(remaining)
        chunk = connection.recv(limit - len(received))
        if not chunk:
            return received
        received += chunk
    return received


def tls_answer(address: str, port: int, timeout: float) -> str:
    """Send a ClientHello to address:port and classify the first bytes of the answer:
    tls handshake, tls alert, silent, closed, or not tls."""
    first = first_answer(address, port, client_hello(address), timeout, need=2)
    if first is None:
        return "silent"
    if not first:
        return "closed"
    if len(first) >= 2 and first[1] == TLS_MAJOR_VERSION:
        if first[0] == TLS_HANDSHAKE:
            return "tls handshake"
        if first[0] == TLS_ALERT:
            return "tls alert"
    return "not tls"


def speaks_tls(answer: str) -> bool:
    """Whether a `tls_answer` classification is TLS (an alert is TLS refusing our offer)."""
    return answer in ("tls handshake", "tls alert")


def client_hello(server_name: str) -> bytes:
    """The bytes of a TLS ClientHello, produced by the ssl module without any socket."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    hostname = None if _is_ip_address(server_name) else server_name
    tls = unverified_context().wrap_bio(incoming, outgoing, server_hostname=hostname)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass  # expected: the ClientHello is written, the answer has not been read
    return outgoing.read()


def _is_ip_address(name: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in name else socket.AF_INET, name)
    except OSError:
        return False
    return True


def expect_tls_answer(address: str, port: int, timeout: float, label: str) -> None:
    """Raise unless address:port accepts a connection and answers a ClientHello in time (a
    refusal of our offer is an answer). A handshake message larger than clients accept (a
    certificate chain of megabytes) is REFUSED: the client reads no further."""
    try:
        with SocketDeadline(timeout) as deadline, \
                socket.create_connection((address, port), timeout=timeout) as raw:
            deadline.watch(raw)
            try:
                with unverified_context().wrap_socket(raw, server_hostname=address):
                    return
            except (ssl.SSLError, ConnectionResetError) as error:
                if deadline.expired:
                    raise TimeoutError from error
                if isinstance(error, ssl.SSLError) and error.reason == OVERSIZED_HANDSHAKE:
                    raise FactUnavailable(Reason.REFUSED, says(
                        "{where}: the server sent a TLS handshake message larger than clients "
                        "accept (a certificate chain of megabytes?)", where=label)) from None
                return
            except OSError:
                if deadline.expired:
                    raise TimeoutError from None
                raise
    except TimeoutError:
        raise FactUnavailable(Reason.TIMEOUT, says(
            "{where}: accepted the connection but did not answer a TLS hello within {seconds} s"
            " (a silent or plaintext-only service)", where=label,
            seconds=f"{timeout:g}")) from None
    except socket.gaierror:
        raise FactUnavailable(Reason.UNREACHABLE, says("{where}: cannot resolve {address}",
                                                       where=label, address=address)) from None
    except OSError as error:
        raise FactUnavailable(Reason.UNREACHABLE, says(
            "{where}: {error}", where=label, error=str(error.strerror or error))) from None


def url_host(address: str) -> str:
    """An address as the host part of a URL (an IPv6 address in brackets)."""
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def http_origin(address: str, service: Service) -> str:
    """`http(s)://address:port` of a service (https when `tls` is true or its kind is
    https)."""
    secure = service.tls or service.kind.lower() == "https"
    return f"{'https' if secure else 'http'}://{url_host(address)}:{service.port}"


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL."""
    return urlunsplit((*urlsplit(url)[:2], "", "", ""))


@dataclass(frozen=True)
class HttpAnswer:
    """One response, as far as it was read: status, headers (lower-case names, capped),
    body (capped), the time it took, and whether the certificate was verified (plain HTTP:
    nothing to verify, True)."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool
    elapsed: float
    verified: bool

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def json(self) -> object | None:
        """The body as JSON, None when it is not (or was cut)."""
        if self.truncated or not self.body:
            return None
        try:
            return json.loads(self.body)  # type: ignore[no-any-return]
        except (ValueError, UnicodeDecodeError):
            return None


class _Connection(http.client.HTTPConnection):
    """An HTTP/1.1 connection whose (re)connect hands its raw socket to the exchange's
    deadline before any TLS handshake."""

    def __init__(self, host: str, port: int, timeout: float, tls: ssl.SSLContext | None) -> None:
        super().__init__(host, port, timeout=timeout)
        self.tls = tls
        self.deadline: SocketDeadline | None = None
        if tls is not None:
            self.default_port = 443         # `Host:` without the port, as browsers send it

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.deadline is not None:
                self.deadline.watch(raw)
            self.sock = raw if self.tls is None else \
                self.tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise

    def dropped(self) -> bool:
        """Whether a kept-alive connection was closed by the peer (or sent unasked bytes)."""
        if self.sock is None:
            return False
        try:
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True


class _HandshakeFailed(Exception):
    """A verified TLS handshake failed: the exchange is asked again unverified."""


class HttpClient:
    """Bounded HTTP requests for one probe; close it (or use `with`) when done.

    `timeout` bounds each exchange as a whole (connect, handshake, headers, body). With
    `verify`, an https request is verified against `ca_file` first and, when only TLS failed,
    asked again unverified and marked so; the TLS checks judge the certificate, the web
    checks still see what the server says. An origin that did not answer is not asked again
    by this client (each would cost a timeout). A failed handshake is `tls_failure`.
    """

    def __init__(self, timeout: float, ca_file: Path | None = None, verify: bool = True,
                 tls_failure: Reason = Reason.REFUSED) -> None:
        self.timeout = timeout
        self.tls_failure = tls_failure
        self._verifying = verifying_context(ca_file) if verify else None
        self._pool: dict[tuple[str, bool], _Connection] = {}
        self._unverifiable: set[str] = set()
        self.silent: dict[str, FactUnavailable] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every kept-alive connection."""
        for connection in self._pool.values():
            connection.close()
        self._pool.clear()

    def get(self, url: str, max_bytes: int = PAGE_BYTES, accept: str = "*/*",
            headers: dict[str, str] | None = None) -> HttpAnswer:
        """GET without following redirects; raises FactUnavailable when nothing answered."""
        return self.request("GET", url, max_bytes, accept=accept, headers=headers)

    def request(self, method: str, url: str, max_bytes: int = PAGE_BYTES,
                form: dict[str, str] | None = None, accept: str = "*/*",
                headers: dict[str, str] | None = None, content: bytes | None = None
                ) -> HttpAnswer:
        """One request (a form is sent url-encoded, else `content` as it is, its type in
        `headers`; `headers` added); FactUnavailable when it got no answer."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FactUnavailable(Reason.NOT_FOUND, says("not an http(s) URL: {url}",
                                                         url=repr(url)))
        origin = origin_of(url)
        if origin in self.silent:
            earlier = self.silent[origin]
            raise FactUnavailable(earlier.reason, says("{url}: skipped, {reason}", url=url,
                                                       reason=earlier.text))
        body = urlencode(form).encode() if form is not None else content
        headers = {"User-Agent": USER_AGENT, "Accept": accept, **(headers or {})}
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            if parts.scheme == "https" and self._verifying is not None \
                    and origin not in self._unverifiable:
                try:
                    return self._exchange(method, url, path, body, headers, max_bytes, True)
                except _HandshakeFailed:
                    self._unverifiable.add(origin)
            return self._exchange(method, url, path, body, headers, max_bytes, False)
        except FactUnavailable as unavailable:
            self.silent[origin] = unavailable
            raise

    def _connection(self, url: str, verified: bool) -> _Connection:
        parts = urlsplit(url)
        key = (origin_of(url), verified)
        connection = self._pool.get(key)
        if connection is not None and connection.dropped():
            connection.close()
        if connection is None:
            tls = None if parts.scheme == "http" else \
                self._verifying if verified and self._verifying else unverified_context()
            port = parts.port or (443 if parts.scheme == "https" else 80)
            connection = _Connection(parts.hostname or "", port, self.timeout, tls)
            self._pool[key] = connection
        return connection

    def _exchange(self, method: str, url: str, path: str, body: bytes | None,
                  headers: dict[str, str], max_bytes: int, verified: bool) -> HttpAnswer:
        connection = self._connection(url, verified)
        started = time.monotonic()
        with SocketDeadline(self.timeout) as deadline:
            connection.deadline = deadline
            if connection.sock is not None:       # kept alive from an earlier request
                deadline.watch(connection.sock)
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                data, truncated = _read_capped(response, max_bytes, started + self.timeout)
                response.close()        # read to its end or cut: the connection may go on
                if deadline.expired:    # http.client takes a cut for the end of headers
                    raise TimeoutError("the exchange was cut at its deadline")
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                if isinstance(error, ssl.SSLError) and verified and not deadline.expired:
                    raise _HandshakeFailed from None
                raise self._unavailable(url, error, deadline.expired) from None
            finally:
                connection.deadline = None
        if truncated or response.will_close:
            connection.close()                  # unread bytes would spoil the next answer
        answer_headers = {name.lower(): value[:MAX_HEADER_VALUE]
                          for name, value in response.getheaders()[:MAX_HEADERS]}
        return HttpAnswer(url, response.status, answer_headers, data, truncated,
                          time.monotonic() - started, verified or url.startswith("http:"))

    def _unavailable(self, url: str, error: Exception, expired: bool) -> FactUnavailable:
        if expired:
            return FactUnavailable(Reason.TIMEOUT, says(
                "{where}: no complete answer within {seconds} s", where=url,
                seconds=f"{self.timeout:g}"))
        if isinstance(error, TimeoutError):
            return FactUnavailable(Reason.TIMEOUT, says(
                "{where}: no answer within {seconds} s", where=url, seconds=f"{self.timeout:g}"))
        if isinstance(error, ssl.SSLError):
            return FactUnavailable(self.tls_failure, says(
                "{where}: TLS handshake failed: {error}", where=url,
                error=str(error.reason or error)))
        return FactUnavailable(Reason.UNREACHABLE, says(
            "{where}: {kind}: {error}", where=url, kind=type(error).__name__,
            error=str(error)[:200]))


def _read_capped(response: http.client.HTTPResponse, max_bytes: int,
                 deadline: float) -> tuple[bytes, bool]:
    """At most max_bytes of the body (truncated: more was there), never past the deadline
    (a server may drip)."""
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        if time.monotonic() > deadline:
            raise TimeoutError("body not received in time")
        chunk = response.read1(65536)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:max_bytes], True


def http_client(context: TargetContext, verify: bool = True,
                tls_failure: Reason = Reason.REFUSED) -> HttpClient:
    """An HTTP client for one probe of the target: a step of the check's budget per exchange,
    the inventory's trust anchors."""
    return HttpClient(context.budget.step(), context.environment.ca_file, verify, tls_failure)


def access_probe_client(context: TargetContext) -> HttpClient:
    """The client of probes that test access control (FHIR, PACS HTTP): unverified, since an
    expired or self-signed certificate must not hide an open API (the TLS checks judge
    certificates); a failed handshake leaves the API unreachable."""
    return http_client(context, verify=False, tls_failure=Reason.UNREACHABLE)
