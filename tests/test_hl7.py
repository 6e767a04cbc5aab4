"""hl7.mllp_plaintext on hand-built facts."""

from __future__ import annotations

from audit.facts.hl7 import Hl7Facts, MllpEndpoint
from audit.facts.net import client_hello
from audit.registry import NoParams
from audit.vocabulary import Status
from checks.hl7 import mllp_plaintext

TLS_PORT = MllpEndpoint(6661, declared_tls=True, speaks_tls=True, answer="tls handshake")
PLAIN_PORT = MllpEndpoint(2575, declared_tls=None, speaks_tls=False, answer="silent")


def test_every_port_speaking_tls_passes() -> None:
    finding = mllp_plaintext(Hl7Facts("10.0.0.7", [TLS_PORT]), NoParams())
    assert finding.status is Status.PASS
    assert finding.summary == "MLLP on port 6661 speaks TLS"


def test_one_plain_port_fails_and_is_named() -> None:
    finding = mllp_plaintext(Hl7Facts("10.0.0.7", [TLS_PORT, PLAIN_PORT]), NoParams())
    assert finding.status is Status.FAIL
    assert finding.summary == "MLLP without TLS on port 2575 (silent)"
    assert finding.observed[1] == {"port": 2575, "declared_tls": None, "speaks_tls": False,
                                   "answer": "silent"}


def test_a_port_declared_tls_but_answering_plain_fails() -> None:
    declared = MllpEndpoint(6661, declared_tls=True, speaks_tls=False, answer="not tls")
    assert mllp_plaintext(Hl7Facts("10.0.0.7", [declared]), NoParams()).status is Status.FAIL


def test_client_hello_is_a_tls_handshake_record() -> None:
    hello = client_hello("10.0.0.7")
    assert hello[0] == 0x16 and hello[1] == 0x03 and len(hello) > 50
