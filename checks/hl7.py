"""HL7 v2: interface messages must not cross the network in clear text."""

from __future__ import annotations

from dataclasses import asdict

from audit.facts.hl7 import Hl7Facts, MllpEndpoint, mllp_transport
from audit.messages import Message, listed, says
from audit.registry import Finding, NoParams, check, failed, passed
from audit.vocabulary import Role


@check(id="hl7.mllp_plaintext", title="HL7 v2 (MLLP) ports require TLS", applies_to=Role.HL7,
       probe=mllp_transport, params=NoParams)
def mllp_plaintext(facts: Hl7Facts, p: NoParams) -> Finding:
    """HL7 v2 messages carry names, identifiers, diagnoses and results; over plain MLLP anyone
    on the path reads them and can inject orders or results. Serve MLLP over TLS (with client
    certificates where the interface engine supports them) or inside a VPN tunnel, and close
    the plain port. The probe sends a TLS ClientHello and no HL7 message: a port that does
    not answer with TLS accepts plain TCP. Ports: the target's services of kind `hl7`, else
    2575."""
    observed = [asdict(endpoint) for endpoint in facts.endpoints]
    expected = "a TLS answer to a ClientHello on every MLLP port"
    plain = [_plain_port(endpoint) for endpoint in facts.endpoints if not endpoint.speaks_tls]
    if plain:
        return failed(says("MLLP without TLS on port {ports}", ports=listed(plain, ", ")),
                      observed=observed, expected=expected)
    ports = ", ".join(str(endpoint.port) for endpoint in facts.endpoints)
    return passed(says("MLLP on port {ports} speaks TLS", ports=ports), observed=observed,
                  expected=expected)


def _plain_port(endpoint: MllpEndpoint) -> Message:
    """A port that did not answer with TLS, and what it did instead."""
    port = endpoint.port
    if endpoint.answer == "silent":
        return says("{port} (silent)", port=port)
    if endpoint.answer == "closed":
        return says("{port} (closed)", port=port)
    if endpoint.answer == "not tls":
        return says("{port} (not tls)", port=port)
    return says("{port} ({answer})", port=port, answer=endpoint.answer)
