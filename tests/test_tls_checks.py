"""TLS checks as pure functions over hand-built facts; endpoint discovery from the inventory."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from audit.errors import Unavailable
from audit.facts.tls import (
    CertificateFacts,
    EndpointScan,
    TlsEndpoint,
    TlsFacts,
    host_matches,
    tls_endpoints,
)
from audit.model.inventory import Service, Target
from audit.vocabulary import Reason, Role, Status
from checks.tls import CertificateParams, ProtocolVersionParams, certificate, protocol_versions

NOW = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
ENDPOINT = TlsEndpoint("10.0.0.5", 443, "https")
GOOD_CERTIFICATE = CertificateFacts(
    subject="CN=10.0.0.5", issuer="CN=Clinic CA", not_before=NOW - dt.timedelta(days=10),
    not_after=NOW + dt.timedelta(days=80), self_signed=False, key_type="RSA", key_bits=2048,
    dns_names=(), ip_addresses=("10.0.0.5",), matches_host=True, trusted=True, trust_error=None,
    trust_store="/pki/ca.pem")
MODERN = {"SSLv2": False, "SSLv3": False, "TLSv1.0": False, "TLSv1.1": False, "TLSv1.2": True,
          "TLSv1.3": True}


def facts(*scans: EndpointScan) -> TlsFacts:
    return TlsFacts(scans, NOW)


def scan(protocols: dict[str, bool | None] | None = None,
         certificate_facts: CertificateFacts | None = GOOD_CERTIFICATE,
         endpoint: TlsEndpoint = ENDPOINT) -> EndpointScan:
    return EndpointScan(endpoint, protocols=protocols or dict(MODERN),
                        certificate=certificate_facts)


def test_modern_protocols_pass() -> None:
    finding = protocol_versions(facts(scan()), ProtocolVersionParams())
    assert finding.status is Status.PASS
    assert finding.observed == [{"endpoint": "https 10.0.0.5:443", "accepted": ["TLSv1.2",
                                                                             "TLSv1.3"],
                                 "problems": []}]


@pytest.mark.parametrize("old", ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"])
def test_each_old_protocol_fails(old: str) -> None:
    finding = protocol_versions(facts(scan({**MODERN, old: True})), ProtocolVersionParams())
    assert finding.status is Status.FAIL
    assert finding.summary == f"https 10.0.0.5:443: accepts {old}"


def test_minimum_is_a_parameter() -> None:
    only_12 = {**MODERN, "TLSv1.3": False}
    assert protocol_versions(facts(scan(only_12)),
                             ProtocolVersionParams(minimum="TLSv1.3")).status is Status.FAIL
    assert protocol_versions(facts(scan({**MODERN, "TLSv1.1": True})),
                             ProtocolVersionParams(minimum="TLSv1.1")).status is Status.PASS


def test_unknown_minimum_is_rejected() -> None:
    with pytest.raises(ValueError):
        ProtocolVersionParams(minimum="TLS1.2")  # type: ignore[arg-type]


def test_an_https_endpoint_without_tls_fails() -> None:
    plain = EndpointScan(TlsEndpoint("10.0.0.6", 443, "https"), tls_offered=False,
                         refusal="server rejected the TLS handshake")
    finding = protocol_versions(facts(scan(), plain), ProtocolVersionParams())
    assert finding.status is Status.FAIL
    assert finding.summary == "https 10.0.0.6:443: does not offer TLS"


def test_a_database_without_tls_is_the_plaintext_checks_finding_not_a_second_one() -> None:
    refusing = EndpointScan(TlsEndpoint("10.0.0.6", 5432, "postgresql", "POSTGRES"),
                            tls_offered=False, refusal="server rejected STARTTLS")
    for check_function, params in [(protocol_versions, ProtocolVersionParams()),
                                   (certificate, CertificateParams())]:
        alone = check_function(facts(refusing), params)  # type: ignore[operator]
        assert alone.status is Status.NOT_APPLICABLE
        assert alone.summary == ("postgresql 10.0.0.6:5432 (STARTTLS POSTGRES): no TLS offered "
                                 "(judged by db.plaintext_accepted)")
    beside = protocol_versions(facts(scan(), refusing), ProtocolVersionParams())
    assert beside.status is Status.PASS and "judged by db.plaintext_accepted" in beside.summary


def test_unscanned_endpoint_is_an_error_unless_another_fails() -> None:
    down = EndpointScan(TlsEndpoint("10.0.0.7", 443, "https"),
                        unavailable=Unavailable(Reason.TIMEOUT, "no TLS answer within 2 s"))
    finding = protocol_versions(facts(scan(), down), ProtocolVersionParams())
    assert finding.status is Status.ERROR and finding.reason is Reason.TIMEOUT
    weak = scan({**MODERN, "TLSv1.0": True})
    assert protocol_versions(facts(weak, down), ProtocolVersionParams()).status is Status.FAIL


def test_a_scan_command_that_failed_cannot_pass() -> None:
    partial = EndpointScan(ENDPOINT, protocols={**MODERN, "TLSv1.0": None}, certificate=None,
                           errors={"TLSv1.0": "connection reset", "certificate": "timed out"})
    for check_function, params in [(protocol_versions, ProtocolVersionParams()),
                                   (certificate, CertificateParams())]:
        finding = check_function(facts(partial), params)  # type: ignore[operator]
        assert finding.status is Status.ERROR and finding.reason is Reason.UNREACHABLE
    # an untested version the minimum allows anyway does not matter
    assert protocol_versions(facts(partial), ProtocolVersionParams(minimum="TLSv1.0")).status \
        is Status.PASS


def test_good_certificate_passes() -> None:
    assert certificate(facts(scan()), CertificateParams()).status is Status.PASS


@pytest.mark.parametrize(("change", "problem"), [
    ({"not_after": NOW - dt.timedelta(days=3)}, "expired on 2026-11-20"),
    ({"not_before": NOW + dt.timedelta(days=3)}, "not valid before 2026-11-26"),
    ({"matches_host": False}, "does not name the host in its subject alternative names"),
    ({"self_signed": True, "trusted": False}, "self-signed"),
    ({"trusted": False, "trust_error": "unknown issuer"},
     "does not chain to the trust anchors: unknown issuer"),
    ({"key_bits": 1024}, "RSA key of 1024 bits (minimum 2048)"),
    ({"key_type": "EC secp224r1", "key_bits": 224}, "EC secp224r1 key of 224 bits (minimum 256)"),
])
def test_certificate_problems(change: dict[str, object], problem: str) -> None:
    bad = replace(GOOD_CERTIFICATE, **change)  # type: ignore[arg-type]
    finding = certificate(facts(scan(certificate_facts=bad)), CertificateParams())
    assert finding.status is Status.FAIL
    assert finding.observed[0]["problems"] == [problem]


def test_self_signed_may_be_allowed() -> None:
    self_signed = replace(GOOD_CERTIFICATE, self_signed=True, trusted=False)
    finding = certificate(facts(scan(certificate_facts=self_signed)),
                          CertificateParams(allow_self_signed=True))
    assert finding.status is Status.PASS


def test_expiring_soon_is_a_parameter() -> None:
    finding = certificate(facts(scan()), CertificateParams(min_days_left=90))
    assert finding.status is Status.FAIL and "expires in 80 days" in finding.summary


def test_no_certificate_fails() -> None:
    finding = certificate(facts(scan(certificate_facts=None)), CertificateParams())
    assert finding.summary == "https 10.0.0.5:443: presented no certificate"


@pytest.mark.parametrize(("host", "dns", "ips", "matches"), [
    ("10.0.0.5", (), ("10.0.0.5",), True),
    ("10.0.0.5", ("10.0.0.5",), (), False),            # an IP is matched by IP SANs only
    ("mis.clinic.kz", ("mis.clinic.kz",), (), True),
    ("MIS.clinic.kz.", ("mis.clinic.kz",), (), True),
    ("mis.clinic.kz", ("*.clinic.kz",), (), True),
    ("a.mis.clinic.kz", ("*.clinic.kz",), (), False),  # a wildcard covers one label
    ("clinic.kz", ("*.clinic.kz",), (), False),
    ("mis.clinic.kz", ("pacs.clinic.kz",), (), False),
])
def test_host_matching(host: str, dns: tuple[str, ...], ips: tuple[str, ...],
                       matches: bool) -> None:
    assert host_matches(host, dns, ips) is matches


def test_endpoints_from_the_inventory() -> None:
    target = Target(name="mixed", address="10.0.0.5", roles=[Role.WEB, Role.DB], services=[
        Service(kind="postgresql", port=5432), Service(kind="redis", port=6380, tls=True),
        Service(kind="redis", port=6379), Service(kind="https", port=8443),
        Service(kind="postgresql", port=5433, tls=False)],
        urls=["https://10.0.0.5:8443/app", "https://portal.clinic.kz/", "http://10.0.0.5/"])
    assert [endpoint.label for endpoint in tls_endpoints(target, target.services)] == [
        "postgresql 10.0.0.5:5432 (STARTTLS POSTGRES)", "redis 10.0.0.5:6380",
        "https 10.0.0.5:8443", "https portal.clinic.kz:443"]
