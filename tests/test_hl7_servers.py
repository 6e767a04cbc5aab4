"""hl7.mllp_plaintext against real MLLP listeners: plain (weak) and behind TLS (hardened)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from audit.model.inventory import Service, Target
from audit.vocabulary import Role, Status
from tests.servers.base import ServerProcess
from tests.servers.hostile import silent_listener
from tests.servers.mllp import (
    ACK,
    END_BLOCK,
    START_BLOCK,
    ca_signed_cert,
    run_check_within,
    running,
    start_mllp,
)
from tests.servers.nginx import run_check

pytestmark = pytest.mark.servers

WEAK_ADDRESS, HARDENED_ADDRESS, SILENT_ADDRESS = "127.62.0.20", "127.62.0.21", "127.62.0.22"
MLLP_PORT = 2575


@pytest.fixture(scope="module")
def listeners(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    """A plain and a TLS MLLP listener, stopped by PID."""
    work = tmp_path_factory.mktemp("mllp")
    cert = ca_signed_cert(work / "pki", "mllp", HARDENED_ADDRESS)
    with running(
            weak=lambda: start_mllp("mllp-weak", WEAK_ADDRESS, MLLP_PORT, work / "weak"),
            hardened=lambda: start_mllp("mllp-hardened", HARDENED_ADDRESS, MLLP_PORT,
                                        work / "hardened", cert.cert, cert.key)) as servers:
        yield servers


def _target(name: str, address: str, port: int = MLLP_PORT) -> Target:
    return Target(name=name, address=address, roles=[Role.HL7],
                  services=[Service(kind="hl7", port=port)])


def test_the_weak_listener_is_a_real_mllp_server(listeners: dict[str, ServerProcess]) -> None:
    with socket.create_connection((WEAK_ADDRESS, MLLP_PORT), timeout=5) as connection:
        connection.sendall(START_BLOCK + b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\r"
                           + END_BLOCK)
        assert connection.recv(len(ACK)).startswith(START_BLOCK + b"MSH|")


def test_plain_mllp_fails(listeners: dict[str, ServerProcess]) -> None:
    result = run_check("hl7.mllp_plaintext", _target("hl7-weak", WEAK_ADDRESS), timeout=4)
    assert result.status is Status.FAIL, result.summary
    assert result.evidence.observed == [{"port": MLLP_PORT, "declared_tls": None,
                                         "speaks_tls": False, "answer": "silent"}]


def test_mllp_over_tls_passes(listeners: dict[str, ServerProcess]) -> None:
    result = run_check("hl7.mllp_plaintext", _target("hl7-hardened", HARDENED_ADDRESS))
    assert result.status is Status.PASS, result.summary
    assert result.evidence.observed[0]["answer"] == "tls handshake"


def test_the_default_port_is_used_without_a_declared_service(
        listeners: dict[str, ServerProcess]) -> None:
    target = Target(name="hl7-default", address=HARDENED_ADDRESS, roles=[Role.HL7])
    assert run_check("hl7.mllp_plaintext", target).status is Status.PASS


def test_a_closed_port_is_an_error() -> None:
    result = run_check("hl7.mllp_plaintext", _target("hl7-down", SILENT_ADDRESS, 2599))
    assert result.status is Status.ERROR
    assert result.error is not None and result.error.type == "unreachable"


def test_a_silent_listener_costs_no_more_than_the_timeout() -> None:
    with silent_listener(SILENT_ADDRESS) as port:
        result = run_check_within("hl7.mllp_plaintext", _target("hl7-silent", SILENT_ADDRESS, port),
                                  timeout=4.0)
    assert result.status is Status.FAIL
    assert result.evidence.observed[0]["answer"] == "silent"
