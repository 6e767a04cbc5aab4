"""TLS facts from sslyze: the protocol versions an endpoint accepts and the certificate it shows.

One sslyze scan per endpoint, all endpoints of a target in one scanner, with only the scan
commands the checks need (one cipher-suite command per protocol version, and certificate info).
sslyze speaks SSLv2 to TLS 1.3 through its own OpenSSL builds, so it sees the TLS 1.0/1.1 that
the standard ssl module of OpenSSL 3 refuses to negotiate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning
from sslyze.connection_helpers.opportunistic_tls_helpers import ProtocolWithOpportunisticTlsEnum
from sslyze.errors import (
    ConnectionToServerTimedOut,
    ServerHostnameCouldNotBeResolved,
    ServerRejectedOpportunisticTlsNegotiation,
    ServerRejectedTlsHandshake,
    ServerTlsConfigurationNotSupported,
    TlsHandshakeTimedOut,
)
from sslyze.plugins.certificate_info.implementation import (
    CertificateInfoExtraArgument,
    CertificateInfoScanResult,
)
from sslyze.plugins.scan_commands import ScanCommand
from sslyze.scanner.models import (
    ScanCommandsExtraArguments,
    ServerScanRequest,
    ServerScanResult,
    ServerScanStatusEnum,
)
from sslyze.scanner.scan_command_attempt import ScanCommandAttemptStatusEnum
from sslyze.scanner.scanner import Scanner
from sslyze.server_setting import ServerNetworkConfiguration, ServerNetworkLocation

from audit.errors import FactUnavailable, Unavailable
from audit.facts.context import TargetContext
from audit.facts.net import expect_tls_answer, trust_anchor_file
from audit.facts.services import known_services, map_of
from audit.model.inventory import Service, Target
from audit.vocabulary import Reason

# Protocol versions, oldest first: name, sslyze scan command, attribute of the scan result.
PROTOCOLS: tuple[tuple[str, ScanCommand, str], ...] = (
    ("SSLv2", ScanCommand.SSL_2_0_CIPHER_SUITES, "ssl_2_0_cipher_suites"),
    ("SSLv3", ScanCommand.SSL_3_0_CIPHER_SUITES, "ssl_3_0_cipher_suites"),
    ("TLSv1.0", ScanCommand.TLS_1_0_CIPHER_SUITES, "tls_1_0_cipher_suites"),
    ("TLSv1.1", ScanCommand.TLS_1_1_CIPHER_SUITES, "tls_1_1_cipher_suites"),
    ("TLSv1.2", ScanCommand.TLS_1_2_CIPHER_SUITES, "tls_1_2_cipher_suites"),
    ("TLSv1.3", ScanCommand.TLS_1_3_CIPHER_SUITES, "tls_1_3_cipher_suites"),
)
PROTOCOL_NAMES: tuple[str, ...] = tuple(name for name, _, _ in PROTOCOLS)
SCAN_COMMANDS = frozenset({command for _, command, _ in PROTOCOLS} | {ScanCommand.CERTIFICATE_INFO})

# Services spoken in clear that upgrade to TLS in-band (kind in the inventory -> sslyze protocol).
STARTTLS_KINDS: dict[str, ProtocolWithOpportunisticTlsEnum] = {
    "postgresql": ProtocolWithOpportunisticTlsEnum.POSTGRES,
    "postgres": ProtocolWithOpportunisticTlsEnum.POSTGRES,
    "pgsql": ProtocolWithOpportunisticTlsEnum.POSTGRES,
}
DIRECT_TLS_KINDS = frozenset({"https"})
CONNECTIONS_PER_ENDPOINT = 10
MAX_NETWORK_TIMEOUT = 5
SUPPLIED_STORE = "Supplied CA file"     # sslyze's name for the custom trust store

# sslyze's bundled trust stores hold a root with a negative serial number, and cryptography
# warns about it each time they load: noise on the user's terminal, nothing about the target.
warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module=r"sslyze\.")


@dataclass(frozen=True)
class TlsEndpoint:
    """Where TLS is expected: a host, a port, and the protocol that upgrades to TLS, if any."""

    host: str
    port: int
    kind: str
    starttls: str | None = None

    @property
    def label(self) -> str:
        """How the endpoint is named in evidence."""
        upgrade = f" (STARTTLS {self.starttls})" if self.starttls else ""
        return f"{self.kind} {self.host}:{self.port}{upgrade}"


@dataclass(frozen=True)
class CertificateFacts:
    """The leaf certificate an endpoint presented, and whether it chains to the trust anchors."""

    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    self_signed: bool
    key_type: str
    key_bits: int
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    matches_host: bool
    trusted: bool
    trust_error: str | None
    trust_store: str


@dataclass(frozen=True)
class EndpointScan:
    """What one endpoint showed: accepted protocol versions (None: could not tell) and certificate.

    `unavailable` is set when the endpoint could not be scanned at all (down, silent);
    `tls_offered` is False when it answered but refused to speak TLS (`refusal` says how);
    `errors` names the scan commands that failed part-way ("TLSv1.0", "certificate").
    """

    endpoint: TlsEndpoint
    tls_offered: bool = True
    protocols: dict[str, bool | None] | None = None
    certificate: CertificateFacts | None = None
    unavailable: Unavailable | None = None
    refusal: str | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def accepted(self) -> list[str]:
        """The protocol versions the endpoint accepted, oldest first."""
        return [name for name in PROTOCOL_NAMES if (self.protocols or {}).get(name)]


@dataclass(frozen=True)
class TlsFacts:
    """Every TLS endpoint of a target, scanned at `scanned_at`."""

    endpoints: tuple[EndpointScan, ...]
    scanned_at: dt.datetime


def tls_endpoints(target: Target, services: list[Service]) -> list[TlsEndpoint]:
    """The endpoints where a target should speak TLS: its TLS or STARTTLS services (declared
    or found by the scan), and its https URLs."""
    found: dict[tuple[str, int], TlsEndpoint] = {}
    for service in services if target.address else []:
        kind = service.kind.lower()
        if kind in STARTTLS_KINDS and service.tls is not False:
            endpoint = TlsEndpoint(target.address or "", service.port, kind,
                                   STARTTLS_KINDS[kind].name)
        elif service.tls or kind in DIRECT_TLS_KINDS:
            endpoint = TlsEndpoint(target.address or "", service.port, kind)
        else:
            continue
        found.setdefault((endpoint.host, endpoint.port), endpoint)
    for url in target.urls:
        parts = urlsplit(url)
        if parts.scheme.lower() == "https" and parts.hostname:
            found.setdefault((parts.hostname, parts.port or 443),
                             TlsEndpoint(parts.hostname, parts.port or 443, "https"))
    return list(found.values())


def tls_facts(context: TargetContext) -> TlsFacts:
    """Scan every TLS endpoint of the target; not applicable when it has none."""
    endpoints = tls_endpoints(context.target, known_services(context))
    if not endpoints:
        scan = map_of(context)
        if scan.unavailable is not None:
            raise scan.unavailable.error()      # nothing declared, nothing seen: cannot tell
        raise FactUnavailable(Reason.UNSUPPORTED, f"target {context.target.name!r} has no TLS "
                              "endpoint (no TLS service, PostgreSQL service or https URL "
                              f"declared, none found by the scan of {len(scan.scanned)} ports)")
    # sslyze takes whole seconds: a step of the check's budget, at most MAX_NETWORK_TIMEOUT
    timeout = int(context.budget.step(high=MAX_NETWORK_TIMEOUT))
    trust_file = trust_anchor_file(context.environment.ca_file)
    scanned_at = dt.datetime.now(dt.UTC)
    return TlsFacts(tuple(scan_endpoints(endpoints, trust_file, timeout)), scanned_at)


def scan_endpoints(endpoints: list[TlsEndpoint], trust_file: Path,
                   timeout: int) -> list[EndpointScan]:
    """Scan endpoints concurrently; one failure becomes that endpoint's fact, never a lost scan."""
    scans: dict[TlsEndpoint, EndpointScan] = {}
    requests: dict[str, tuple[TlsEndpoint, ServerScanRequest]] = {}
    for endpoint in endpoints:
        try:
            request = _scan_request(endpoint, trust_file, timeout)
        except FactUnavailable as unavailable:
            scans[endpoint] = EndpointScan(endpoint, unavailable=unavailable.unavailable)
            continue
        requests[str(request.uuid)] = (endpoint, request)
    if requests:
        scanner = Scanner(per_server_concurrent_connections_limit=CONNECTIONS_PER_ENDPOINT,
                          concurrent_server_scans_limit=len(requests))
        scanner.queue_scans([request for _, request in requests.values()])
        for result in scanner.get_results():
            endpoint = requests[str(result.uuid)][0]
            scans[endpoint] = _endpoint_scan(endpoint, result)
    return [scans[endpoint] for endpoint in endpoints]


def _scan_request(endpoint: TlsEndpoint, trust_file: Path, timeout: int) -> ServerScanRequest:
    starttls = STARTTLS_KINDS.get(endpoint.kind) if endpoint.starttls else None
    if starttls is None:
        # sslyze probes a silent direct-TLS listener version by version, each up to the
        # timeout; one handshake of our own first keeps a silent endpoint to one timeout.
        # (it also refuses a handshake message of megabytes, which sslyze would take for
        # "no TLS version supported").
        expect_tls_answer(endpoint.host, endpoint.port, timeout, endpoint.label)
    try:
        location = ServerNetworkLocation(endpoint.host, endpoint.port)
    except ServerHostnameCouldNotBeResolved:
        raise FactUnavailable(Reason.UNREACHABLE, f"{endpoint.label}: cannot resolve "
                              f"{endpoint.host}") from None
    configuration = ServerNetworkConfiguration(
        tls_server_name_indication=endpoint.host, tls_opportunistic_encryption=starttls,
        network_timeout=timeout, network_max_retries=0)
    extra = ScanCommandsExtraArguments(
        certificate_info=CertificateInfoExtraArgument(custom_ca_file=trust_file))
    return ServerScanRequest(server_location=location, network_configuration=configuration,
                             scan_commands=set(SCAN_COMMANDS), scan_commands_extra_arguments=extra)


def _endpoint_scan(endpoint: TlsEndpoint, result: ServerScanResult) -> EndpointScan:
    if result.scan_status != ServerScanStatusEnum.COMPLETED or result.scan_result is None:
        return _connectivity_failure(endpoint, result)
    protocols: dict[str, bool | None] = {}
    errors: dict[str, str] = {}
    for name, _, attribute in PROTOCOLS:
        attempt = getattr(result.scan_result, attribute)
        if attempt.status == ScanCommandAttemptStatusEnum.COMPLETED:
            protocols[name] = bool(attempt.result.accepted_cipher_suites)
        else:
            protocols[name] = None
            errors[name] = str(attempt.error_reason)
    certificate_attempt = result.scan_result.certificate_info
    certificate = None
    if certificate_attempt.result is not None:
        certificate = certificate_facts(endpoint.host, certificate_attempt.result)
    else:
        errors["certificate"] = str(certificate_attempt.error_reason)
    return EndpointScan(endpoint, protocols=protocols, certificate=certificate, errors=errors)


def _connectivity_failure(endpoint: TlsEndpoint, result: ServerScanResult) -> EndpointScan:
    trace = result.connectivity_error_trace
    error_type = trace.exc_type if trace else None
    message = f"{endpoint.label}: {str(trace).strip() if trace else 'no connectivity'}"
    if error_type is not None and issubclass(error_type, (
            ServerRejectedOpportunisticTlsNegotiation, ServerRejectedTlsHandshake,
            ServerTlsConfigurationNotSupported)):
        return EndpointScan(endpoint, tls_offered=False, refusal=message)
    timed_out = error_type is not None and issubclass(error_type, (ConnectionToServerTimedOut,
                                                                   TlsHandshakeTimedOut))
    return EndpointScan(endpoint, unavailable=Unavailable(
        Reason.TIMEOUT if timed_out else Reason.UNREACHABLE, message))


def certificate_facts(host: str, result: CertificateInfoScanResult) -> CertificateFacts | None:
    """The facts of the first certificate deployment sslyze found (None: no certificate)."""
    if not result.certificate_deployments:
        return None
    deployment = result.certificate_deployments[0]
    leaf = deployment.received_certificate_chain[0]
    validation = next((item for item in deployment.path_validation_results
                       if item.trust_store.name == SUPPLIED_STORE), None)
    dns_names, ip_addresses = _subject_alternative_names(leaf)
    key_type, key_bits = _key_description(leaf)
    return CertificateFacts(
        subject=leaf.subject.rfc4514_string(), issuer=leaf.issuer.rfc4514_string(),
        not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc,
        self_signed=_self_signed(leaf), key_type=key_type, key_bits=key_bits,
        dns_names=dns_names, ip_addresses=ip_addresses,
        matches_host=host_matches(host, dns_names, ip_addresses),
        trusted=bool(validation and validation.was_validation_successful),
        trust_error=validation.validation_error if validation else "not validated",
        trust_store=str(validation.trust_store.path) if validation else "")


def _subject_alternative_names(leaf: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, x509.DuplicateExtension):
        return (), ()
    return (tuple(names.get_values_for_type(x509.DNSName)),
            tuple(str(ip) for ip in names.get_values_for_type(x509.IPAddress)))


def host_matches(host: str, dns_names: tuple[str, ...], ip_addresses: tuple[str, ...]) -> bool:
    """Whether a certificate's SANs name the host (RFC 6125: no CN fallback, one-label wildcard)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        wanted = host.lower().rstrip(".")
        return any(_dns_name_matches(name.lower().rstrip("."), wanted) for name in dns_names)
    return any(ipaddress.ip_address(item) == address for item in ip_addresses)


def _dns_name_matches(pattern: str, host: str) -> bool:
    if not pattern.startswith("*."):
        return pattern == host
    _, _, parent = host.partition(".")
    return bool(parent) and parent == pattern[2:]


def _self_signed(leaf: x509.Certificate) -> bool:
    if leaf.issuer != leaf.subject:
        return False
    try:
        leaf.verify_directly_issued_by(leaf)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _key_description(leaf: x509.Certificate) -> tuple[str, int]:
    key = leaf.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}", key.curve.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    return type(key).__name__, 0
