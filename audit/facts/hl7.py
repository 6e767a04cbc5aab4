"""HL7 v2 facts: does each MLLP port speak TLS, or accept plain TCP?

Service kind read from the inventory: `hl7` (an MLLP listener); without one, port 2575 is
tried. No HL7 message is ever sent: the probe opens a TCP connection, sends a TLS
ClientHello and looks at the first bytes that come back. A TLS server answers with a TLS
record (a ServerHello or an alert); a plain MLLP listener stays silent (it waits for a
framed message), closes, or answers something that is not TLS.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass

from audit.facts.context import TargetContext
from audit.facts.net import open_connection, services_of_kind, unverified_context
from audit.facts.ports import target_address

HL7_SERVICE_KIND = "hl7"
DEFAULT_MLLP_PORT = 2575
TLS_HANDSHAKE, TLS_ALERT = 0x16, 0x15
TLS_MAJOR_VERSION = 0x03


@dataclass(frozen=True)
class MllpEndpoint:
    """One MLLP port and what came back after a TLS ClientHello."""

    port: int
    declared_tls: bool | None
    speaks_tls: bool
    answer: str        # tls handshake, tls alert, silent, closed, not tls


@dataclass(frozen=True)
class Hl7Facts:
    """The target's MLLP ports."""

    address: str
    endpoints: list[MllpEndpoint]


# A TLS server answers a ClientHello at once; a plain MLLP listener waits for a frame that
# never comes, so waiting the whole step timeout for it only slows every weak audit.
TLS_ANSWER_WAIT = 2.0


def mllp_transport(context: TargetContext) -> Hl7Facts:
    """Probe every MLLP port of the target for TLS."""
    address = target_address(context)
    timeout = context.budget.step()
    services = services_of_kind(context, HL7_SERVICE_KIND)
    ports = [(service.port, service.tls) for service in services] or [(DEFAULT_MLLP_PORT, None)]
    return Hl7Facts(address, [_probe_port(address, port, declared, timeout)
                              for port, declared in ports])


def _probe_port(address: str, port: int, declared_tls: bool | None,
                timeout: float) -> MllpEndpoint:
    answer = tls_answer(address, port, timeout)
    return MllpEndpoint(port, declared_tls, answer in ("tls handshake", "tls alert"), answer)


def tls_answer(address: str, port: int, timeout: float) -> str:
    """Send a ClientHello to address:port and classify the first bytes of the answer."""
    connection = open_connection(address, port, timeout)
    with connection:
        try:
            connection.sendall(client_hello(address))
            wait = min(timeout, TLS_ANSWER_WAIT)
            first = _receive_record_header(connection, time.monotonic() + wait)
        except TimeoutError:
            return "silent"
        except OSError:  # reset by the peer: it did not speak TLS to us
            return "closed"
    if not first:
        return "closed"
    if len(first) >= 2 and first[1] == TLS_MAJOR_VERSION:
        if first[0] == TLS_HANDSHAKE:
            return "tls handshake"
        if first[0] == TLS_ALERT:
            return "tls alert"
    return "not tls"


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


def _receive_record_header(connection: socket.socket, deadline: float) -> bytes:
    """Up to the first two bytes (record type and major version), or b'' when closed."""
    received = b""
    while len(received) < 2:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        connection.settimeout(remaining)
        chunk = connection.recv(2 - len(received))
        if not chunk:
            return received
        received += chunk
    return received
