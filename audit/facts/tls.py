"""TLS facts: the protocol versions an endpoint accepts and the certificate it shows.

One handshake per protocol version (two where the default cipher list is refused: sslyze's own
F5 workaround), newest first, through sslyze's connection helper: it speaks SSLv2 to TLS 1.3
with its own OpenSSL builds (so it sees the TLS 1.0/1.1 that OpenSSL 3's ssl module refuses)
and does PostgreSQL's STARTTLS. The certificate chain comes from the newest accepted
handshake and is validated against the run's trust anchors only (sslyze's TrustStore, loaded
once per file). No check asks for cipher suites, so none are enumerated: that is what made a
TLS endpoint cost hundreds of handshakes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning
from nassl._nassl import OpenSSLError
from sslyze.connection_helpers.opportunistic_tls_helpers import ProtocolWithOpportunisticTlsEnum
from sslyze.connection_helpers.tls_connection import SslConnection
from sslyze.errors import (
    ConnectionToServerFailed,
    ConnectionToServerTimedOut,
    ServerHostnameCouldNotBeResolved,
    ServerRejectedOpportunisticTlsNegotiation,
    TlsHandshakeFailed,
)
from sslyze.plugins.certificate_info.trust_stores.trust_store import TrustStore
from sslyze.server_connectivity import TlsVersionEnum
from sslyze.server_setting import ServerNetworkConfiguration, ServerNetworkLocation

from audit.errors import FactUnavailable, Unavailable
from audit.facts.context import TargetContext
from audit.facts.net import expect_tls_answer, trust_anchor_file
from audit.facts.services import known_services, map_of
from audit.messages import says
from audit.model.inventory import Service, Target
from audit.vocabulary import Reason

# Protocol versions, oldest first: name and sslyze's version.
PROTOCOLS: tuple[tuple[str, TlsVersionEnum], ...] = (
    ("SSLv2", TlsVersionEnum.SSL_2_0),
    ("SSLv3", TlsVersionEnum.SSL_3_0),
    ("TLSv1.0", TlsVersionEnum.TLS_1_0),
    ("TLSv1.1", TlsVersionEnum.TLS_1_1),
    ("TLSv1.2", TlsVersionEnum.TLS_1_2),
    ("TLSv1.3", TlsVersionEnum.TLS_1_3),
)
PROTOCOL_NAMES: tuple[str, ...] = tuple(name for name, _ in PROTOCOLS)
# The client's cipher lists, tried in turn: the default, then everything (a peer that wants
# an old cipher the default leaves out). SSLv2 has ciphers of its own.
CIPHER_LISTS = ("DEFAULT", "ALL:COMPLEMENTOFALL:-PSK:-SRP")
SSL2_CIPHER_LISTS = ("SSLv2",)

# Services spoken in clear that upgrade to TLS in-band (kind in the inventory -> sslyze protocol).
STARTTLS_KINDS: dict[str, ProtocolWithOpportunisticTlsEnum] = {
    "postgresql": ProtocolWithOpportunisticTlsEnum.POSTGRES,
    "postgres": ProtocolWithOpportunisticTlsEnum.POSTGRES,
    "pgsql": ProtocolWithOpportunisticTlsEnum.POSTGRES,
}
DIRECT_TLS_KINDS = frozenset({"https"})
MAX_NETWORK_TIMEOUT = 5
# The scan error of an endpoint whose handshake brought no certificate chain.
NO_CERTIFICATE = "no certificate received"

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
        raise FactUnavailable(Reason.UNSUPPORTED, says(
            "target {name} has no TLS endpoint (no TLS service, PostgreSQL service or https "
            "URL declared, none found by the scan of {count} ports)",
            name=repr(context.target.name), count=len(scan.scanned)))
    # sslyze takes whole seconds: a step of the check's budget, at most MAX_NETWORK_TIMEOUT
    timeout = int(context.budget.step(high=MAX_NETWORK_TIMEOUT))
    trust_file = trust_anchor_file(context.environment.ca_file)
    scanned_at = dt.datetime.now(dt.UTC)
    return TlsFacts(tuple(scan_endpoint(endpoint, trust_file, timeout)
                          for endpoint in endpoints), scanned_at)


def scan_endpoint(endpoint: TlsEndpoint, trust_file: Path, timeout: int) -> EndpointScan:
    """The versions one endpoint accepts, newest first, and the certificate of the newest."""
    try:
        location, configuration = _connection_settings(endpoint, timeout)
    except FactUnavailable as unavailable:
        return EndpointScan(endpoint, unavailable=unavailable.unavailable)
    protocols: dict[str, bool | None] = {}
    errors: dict[str, str] = {}
    chain: list[str] | None = None
    for name, version in reversed(PROTOCOLS):
        try:
            accepted, received = _handshake(location, configuration, version)
        except ServerRejectedOpportunisticTlsNegotiation as refused:
            return EndpointScan(endpoint, tls_offered=False,
                                refusal=f"{endpoint.label}: {_reason(refused)}")
        except ConnectionToServerTimedOut as silent:
            return EndpointScan(endpoint, unavailable=Unavailable(
                Reason.TIMEOUT, says("{endpoint}: {error}", endpoint=endpoint.label,
                                     error=_reason(silent))))
        except (ConnectionToServerFailed, OSError, OpenSSLError) as failure:
            protocols[name], errors[name] = None, _reason(failure)
            continue
        protocols[name] = accepted
        chain = chain or received
    if not any(protocols.values()):
        if all(value is None for value in protocols.values()):
            return EndpointScan(endpoint, unavailable=Unavailable(
                Reason.UNREACHABLE, says("{endpoint}: {error}", endpoint=endpoint.label,
                                         error=errors["TLSv1.3"]) if "TLSv1.3" in errors
                else says("{endpoint}: no answer", endpoint=endpoint.label)))
        return EndpointScan(endpoint, tls_offered=False,
                            refusal=f"{endpoint.label}: no TLS or SSL version accepted")
    certificate = certificate_facts(endpoint.host, chain, trust_store(trust_file)) \
        if chain else None
    if certificate is None:
        errors["certificate"] = NO_CERTIFICATE
    return EndpointScan(endpoint, protocols={name: protocols[name] for name in PROTOCOL_NAMES},
                        certificate=certificate, errors=errors)


def _connection_settings(endpoint: TlsEndpoint, timeout: int
                         ) -> tuple[ServerNetworkLocation, ServerNetworkConfiguration]:
    starttls = STARTTLS_KINDS.get(endpoint.kind) if endpoint.starttls else None
    if starttls is None:
        # A silent direct-TLS listener would cost a timeout per version: one handshake of
        # our own first keeps it to one (and refuses a handshake message of megabytes).
        expect_tls_answer(endpoint.host, endpoint.port, timeout, endpoint.label)
    try:
        location = ServerNetworkLocation(endpoint.host, endpoint.port)
    except ServerHostnameCouldNotBeResolved:
        raise FactUnavailable(Reason.UNREACHABLE, says(
            "{endpoint}: cannot resolve {host}", endpoint=endpoint.label,
            host=endpoint.host)) from None
    return location, ServerNetworkConfiguration(
        tls_server_name_indication=endpoint.host, tls_opportunistic_encryption=starttls,
        network_timeout=timeout, network_max_retries=0)


def _handshake(location: ServerNetworkLocation, configuration: ServerNetworkConfiguration,
               version: TlsVersionEnum) -> tuple[bool, list[str] | None]:
    """Whether the peer completes a handshake at `version`, and the chain it sent."""
    lists = SSL2_CIPHER_LISTS if version is TlsVersionEnum.SSL_2_0 else CIPHER_LISTS
    if version is TlsVersionEnum.TLS_1_3:
        lists = ("",)                 # TLS 1.3 suites are not set by the cipher list
    for cipher_list in lists:
        connection = SslConnection(location, configuration, version,
                                   should_ignore_client_auth=True)
        if cipher_list:
            connection.ssl_client.set_cipher_list(cipher_list)
        try:
            connection.connect(should_retry_connection=False)
            return True, connection.ssl_client.get_received_chain()
        except TlsHandshakeFailed:
            continue
        finally:
            connection.close()
    return False, None


def _reason(error: Exception) -> str:
    return str(getattr(error, "error_message", "") or error).strip()[:300] or type(error).__name__


@cache
def trust_store(path: Path) -> TrustStore:
    """The trust anchors of a file, parsed once per process and path."""
    return TrustStore(path, "trust anchors", "")


def certificate_facts(host: str, chain: list[str], store: TrustStore) -> CertificateFacts | None:
    """The leaf of a received chain (PEM, leaf first) and whether it validates for `host`
    against the trust anchors (None: no readable certificate)."""
    try:
        leaf = x509.load_pem_x509_certificate(chain[0].encode("ascii"))
        subject = _server_subject(host)
        validation = store.verify_certificate_chain(chain, subject)
    except (ValueError, IndexError):
        return None
    dns_names, ip_addresses = _subject_alternative_names(leaf)
    key_type, key_bits = _key_description(leaf)
    return CertificateFacts(
        subject=leaf.subject.rfc4514_string(), issuer=leaf.issuer.rfc4514_string(),
        not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc,
        self_signed=_self_signed(leaf), key_type=key_type, key_bits=key_bits,
        dns_names=dns_names, ip_addresses=ip_addresses,
        matches_host=host_matches(host, dns_names, ip_addresses),
        trusted=validation.was_validation_successful, trust_error=validation.validation_error,
        trust_store=str(store.path))


def _server_subject(host: str) -> x509.DNSName | x509.IPAddress:
    try:
        return x509.IPAddress(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return x509.DNSName(host.lower().rstrip("."))


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
