"""TLS checks against real servers: nginx weak and hardened, a silent listener, a closed port."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.servers.hostile import silent_listener
from tests.servers.nginx import WebServer, run_check, site_fixture

from audit.model.inventory import Service, Target
from audit.vocabulary import Role, Status

WEAK_ADDRESS = "127.61.1.10"
HARDENED_ADDRESS = "127.61.1.11"
SILENT_ADDRESS = "127.61.1.20"


weak_site = site_fixture("weak", WEAK_ADDRESS)
hardened_site = site_fixture("hardened", HARDENED_ADDRESS)


def web_target(site: WebServer) -> Target:
    return Target(name=f"web-{site.variant}", address=site.address, roles=[Role.WEB],
                  urls=[site.https_url])


@pytest.mark.servers
def test_protocol_versions_pass_on_hardened(hardened_site: WebServer) -> None:
    result = run_check("tls.protocol_versions", web_target(hardened_site), hardened_site.ca_file)
    assert result.status is Status.PASS, result
    assert result.evidence.observed == [{"endpoint": f"https {HARDENED_ADDRESS}:443",
                                         "accepted": ["TLSv1.2", "TLSv1.3"], "problems": []}]


@pytest.mark.servers
def test_protocol_versions_fail_on_weak_naming_old_versions(weak_site: WebServer) -> None:
    result = run_check("tls.protocol_versions", web_target(weak_site), weak_site.ca_file)
    assert result.status is Status.FAIL, result
    assert result.evidence.observed[0]["accepted"] == ["TLSv1.0", "TLSv1.1", "TLSv1.2"]
    assert "accepts TLSv1.0, TLSv1.1" in result.summary


@pytest.mark.servers
def test_minimum_tls_1_0_accepts_weak_versions(weak_site: WebServer) -> None:
    result = run_check("tls.protocol_versions", web_target(weak_site), weak_site.ca_file,
                       minimum="TLSv1.0")
    assert result.status is Status.PASS, result


@pytest.mark.servers
def test_certificate_passes_on_hardened(hardened_site: WebServer) -> None:
    result = run_check("tls.certificate", web_target(hardened_site), hardened_site.ca_file)
    assert result.status is Status.PASS, result
    endpoint = result.evidence.observed[0]
    assert endpoint["trusted"] is True and endpoint["ip_addresses"] == [HARDENED_ADDRESS]


@pytest.mark.servers
def test_certificate_untrusted_without_the_inventory_ca(hardened_site: WebServer) -> None:
    result = run_check("tls.certificate", web_target(hardened_site), ca_file=None)
    assert result.status is Status.FAIL
    assert "does not chain to the trust anchors" in result.summary


@pytest.mark.servers
def test_certificate_fails_on_weak_expired_self_signed(weak_site: WebServer) -> None:
    result = run_check("tls.certificate", web_target(weak_site), weak_site.ca_file)
    assert result.status is Status.FAIL
    problems = result.evidence.observed[0]["problems"]
    assert any(problem.startswith("expired on") for problem in problems)
    assert "self-signed" in problems


@pytest.mark.servers
def test_certificate_key_size_parameter(hardened_site: WebServer) -> None:
    result = run_check("tls.certificate", web_target(hardened_site), hardened_site.ca_file,
                       min_ec_bits=384)
    assert result.status is Status.FAIL
    assert "EC secp256r1 key of 256 bits (minimum 384)" in result.summary


def test_no_tls_endpoint_is_not_applicable() -> None:
    target = Target(name="plain", address="127.61.1.30", roles=[Role.DB],
                    services=[Service(kind="redis", port=6379)])
    assert run_check("tls.protocol_versions", target).status is Status.NOT_APPLICABLE


@pytest.mark.parametrize("kind", ["https", "postgresql"])
def test_silent_listener_costs_no_more_than_the_timeout(kind: str) -> None:
    with silent_listener(SILENT_ADDRESS) as port:
        target = Target(name="silent", address=SILENT_ADDRESS, roles=[Role.DB],
                        services=[Service(kind=kind, port=port, tls=True)])
        started = time.monotonic()
        result = run_check("tls.protocol_versions", target, timeout=4)   # 1 s per connection
    assert time.monotonic() - started < 3
    assert result.status is Status.ERROR and result.error and result.error.type == "timeout"


def test_closed_port_is_unreachable() -> None:
    target = Target(name="closed", address="127.61.1.31", roles=[Role.WEB],
                    services=[Service(kind="https", port=9)])
    result = run_check("tls.certificate", target)
    assert result.status is Status.ERROR and result.error and result.error.type == "unreachable"


def test_missing_trust_file_is_an_error(tmp_path: Path) -> None:
    target = Target(name="web", address="127.61.1.32", roles=[Role.WEB],
                    services=[Service(kind="https", port=443)])
    result = run_check("tls.certificate", target, ca_file=tmp_path / "absent.pem")
    assert result.status is Status.ERROR and result.error and result.error.type == "not_found"


@pytest.mark.servers
def test_https_found_by_the_scan_on_an_address_alone(weak_site: WebServer,
                                                     hardened_site: WebServer) -> None:
    def bare(site: WebServer) -> Target:
        return Target(name=f"bare-{site.variant}", address=site.address, roles=[Role.WEB])

    good = run_check("tls.protocol_versions", bare(hardened_site), hardened_site.ca_file)
    assert good.status is Status.PASS, good
    assert [item["endpoint"] for item in good.evidence.observed] == [
        f"https {HARDENED_ADDRESS}:443"]
    bad = run_check("tls.protocol_versions", bare(weak_site), weak_site.ca_file)
    assert bad.status is Status.FAIL, bad
    assert run_check("tls.certificate", bare(weak_site), weak_site.ca_file).status \
        is Status.FAIL
