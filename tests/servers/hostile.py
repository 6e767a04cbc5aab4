"""Hostile and silent peers for the tests: TCP listeners that never behave.

One helper, `hostile_listener`, serves every misbehaviour a probe must survive, chosen by
`Mode`:

- `silent`: the connection is accepted and nothing is ever said (a hung server);
- `garbage`: `preamble`, then a burst of `filler` (random bytes by default), then silence;
- `endless`: `preamble`, then `filler` without end, as fast as the peer reads (endless HTTP
  headers, an MLLP frame that never closes);
- `drip`: `preamble` and then `filler`, one byte per `interval` (each byte arrives well
  within any per-read timeout, so only an overall deadline ends the exchange);
- `huge_tls_chain`: a TLS server whose certificate chain is several megabytes
  (`huge_chain_files` makes one).

The random bytes are the same on every run (`seed`): a failure can be replayed.

Every connection is served by its own thread; leaving the context stops the acceptor and
every connection thread and closes every socket, whatever the peer did.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import random
import selectors
import socket
import ssl
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from tests.servers.pki import CertFiles, make_ca, make_server_cert

GARBAGE_BYTES = SEND_BLOCK = 64 * 1024
POLL = 0.1                  # how often a blocked thread looks at the stop flag
# A private-use OID for the padding extension of the huge chain.
PADDING_OID = ObjectIdentifier("1.3.6.1.4.1.55555.1.1")


class Mode(StrEnum):
    """How a hostile listener treats each connection."""

    SILENT = "silent"
    GARBAGE = "garbage"
    ENDLESS = "endless"
    DRIP = "drip"
    HUGE_TLS_CHAIN = "huge_tls_chain"
    # HTTP that answers only a whole request head, as Apache or an asyncio server does:
    # silent to a ClientHello, which never ends one
    WHOLE_REQUEST_HTTP = "whole_request_http"


@dataclass
class HostileListener:
    """A running hostile listener: where it listens, and how many connections it took."""

    address: str
    ports: list[int]
    connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def port(self) -> int:
        """The first (usually the only) port."""
        return self.ports[0]


@contextlib.contextmanager
def hostile_listener(address: str, mode: Mode | str = Mode.SILENT, ports: Iterable[int] = (0,),
                     preamble: bytes = b"", filler: bytes | None = None,
                     interval: float = 0.2, tls_files: CertFiles | None = None,
                     seed: int = 74) -> Iterator[HostileListener]:
    """Listen on each of `ports` of `address` (0: a free one) and misbehave per `mode`."""
    mode = Mode(mode)
    noise = random.Random(seed).randbytes(GARBAGE_BYTES)
    stream = preamble + (filler or noise)
    block = (filler * (SEND_BLOCK // len(filler) + 1))[:SEND_BLOCK] if filler else noise
    tls_context = None
    if mode is Mode.HUGE_TLS_CHAIN:
        if tls_files is None:
            raise ValueError("huge_tls_chain needs tls_files (see huge_chain_files)")
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(tls_files.cert, tls_files.key)
    stop = threading.Event()
    selector = selectors.DefaultSelector()
    listeners: list[socket.socket] = []
    held: list[socket.socket] = []
    workers: list[threading.Thread] = []
    try:
        for port in ports:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((address, port))
            listener.listen(128)   # room for every connection a benchmark makes
            listener.setblocking(False)
            selector.register(listener, selectors.EVENT_READ)
            listeners.append(listener)
    except OSError:
        for listener in listeners:
            listener.close()
        selector.close()
        raise
    state = HostileListener(address, [listener.getsockname()[1] for listener in listeners])

    def serve(connection: socket.socket) -> None:
        connection.settimeout(POLL)
        with contextlib.suppress(OSError, ValueError):
            if mode is Mode.HUGE_TLS_CHAIN:
                assert tls_context is not None
                connection.settimeout(10)
                connection = tls_context.wrap_socket(connection, server_side=True)
                held.append(connection)
                connection.settimeout(POLL)
            elif mode is Mode.GARBAGE:
                _send_all(connection, stream, stop)
            elif mode is Mode.WHOLE_REQUEST_HTTP:
                _answer_a_whole_request(connection, stop)
            elif mode is Mode.ENDLESS:
                _send_all(connection, preamble, stop)
                while not stop.is_set():
                    _send_all(connection, block, stop)
            elif mode is Mode.DRIP:
                # the preamble once, then the filler over and over, one byte at a time
                for byte in itertools.chain(preamble, itertools.cycle(filler or noise)):
                    if stop.wait(interval):
                        break
                    connection.sendall(bytes([byte]))
            _hold(connection, stop)

    def accept_forever() -> None:
        while not stop.is_set():
            for key, _ in selector.select(timeout=POLL):
                with contextlib.suppress(OSError):
                    connection, _ = key.fileobj.accept()  # type: ignore[union-attr]
                    held.append(connection)
                    with state._lock:
                        state.connections += 1
                    worker = threading.Thread(target=serve, args=(connection,), daemon=True,
                                              name=f"hostile-{mode}")
                    workers.append(worker)
                    worker.start()

    acceptor = threading.Thread(target=accept_forever, daemon=True, name="hostile-acceptor")
    acceptor.start()
    try:
        yield state
    finally:
        stop.set()
        acceptor.join(timeout=5)
        for worker in workers:
            worker.join(timeout=5)
        for opened in [*held, *listeners]:
            with contextlib.suppress(OSError):
                opened.close()
        selector.close()


def _send_all(connection: socket.socket, data: bytes, stop: threading.Event) -> None:
    """Send `data`, waiting for a slow reader but giving up as soon as `stop` is set."""
    view = memoryview(data)
    while view and not stop.is_set():
        try:
            sent = connection.send(view)
        except TimeoutError:
            continue
        view = view[sent:]


def _answer_a_whole_request(connection: socket.socket, stop: threading.Event) -> None:
    received = b""
    while b"\r\n\r\n" not in received:
        if stop.is_set():
            return
        try:
            chunk = connection.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            return
        received += chunk
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def _hold(connection: socket.socket, stop: threading.Event) -> None:
    """Keep the connection open and say nothing; what the peer sends is read and dropped."""
    while not stop.is_set():
        try:
            if not connection.recv(SEND_BLOCK):
                return
        except TimeoutError:
            continue


@contextlib.contextmanager
def silent_listener(address: str) -> Iterator[int]:
    """A port on `address` that accepts TCP connections and never says a word (yields it)."""
    with hostile_listener(address, Mode.SILENT) as listener:
        yield listener.port


@contextlib.contextmanager
def silent_listeners(address: str, ports: Iterable[int]) -> Iterator[str]:
    """The given ports on `address`, all silent: a hung server (yields the address)."""
    with hostile_listener(address, Mode.SILENT, ports=ports):
        yield address


def huge_chain_files(directory: Path, address: str, megabytes: int = 4) -> CertFiles:
    """A server certificate for `address` followed by enough padded intermediates to make
    a chain of about `megabytes` MB (each intermediate carries a 200 KB extension)."""
    _, ca_cert, ca_key = make_ca(directory, "hostile huge-chain CA")
    leaf = make_server_cert(directory, "huge-leaf", [address], ca=(ca_cert, ca_key))
    padding = 200 * 1024
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    pem = [leaf.cert.read_bytes()]
    for index in range(megabytes * 1024 * 1024 // padding):
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"padding {index}")])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.UnrecognizedExtension(PADDING_OID, os.urandom(padding)),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        pem.append(cert.public_bytes(serialization.Encoding.PEM))
    chain = directory / "huge-chain.pem"
    chain.write_bytes(b"".join(pem))
    return CertFiles(chain, leaf.key)
