"""HL7 v2 facts: does each MLLP port speak TLS, or accept plain TCP?

Service kind read from the inventory: `hl7` (an MLLP listener); without one, port 2575 is
tried. No HL7 message is ever sent: the probe opens a TCP connection, sends a TLS
ClientHello and looks at the first bytes that come back. A TLS server answers with a TLS
record (a ServerHello or an alert); a plain MLLP listener stays silent (it waits for a
framed message), closes, or answers something that is not TLS.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.facts.context import TargetContext
from audit.facts.net import speaks_tls, tls_answer
from audit.facts.ports import target_address
from audit.facts.services import services_of_kind

HL7_SERVICE_KIND = "hl7"
DEFAULT_MLLP_PORT = 2575


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
    return MllpEndpoint(port, declared_tls, speaks_tls(answer), answer)
