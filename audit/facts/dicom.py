"""PACS facts: DICOM associations made by a stranger, and the PACS's HTTP APIs without a login.

Service kinds read from the inventory:
- `dicom`: the DICOM (DIMSE) port; its `ae_title` is the PACS's own (called) AE title,
  `ORTHANC` when not given. Without such a service the ports 104 and 4242 are tried, and
  2762 over TLS.
- `pacs-http`: the PACS's HTTP port (Orthanc REST API and DICOMweb); https when `tls` is
  true. Without such a service, http on port 8042 is tried.

Every query is read-only; a C-FIND asks for study UIDs only and the answers are counted,
then dropped: no patient name or identifier is ever requested, let alone kept.

The associations themselves are made by `audit.facts.dimse`, for which pynetdicom (a third
of a second to import) is loaded only when a PACS is probed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from audit.errors import FactUnavailable
from audit.facts.context import TargetContext
from audit.facts.net import (
    HttpClient,
    access_probe_client,
    http_origin,
    open_connection,
)
from audit.facts.ports import target_address
from audit.facts.services import services_of_kind
from audit.messages import Message, listed, says
from audit.model.inventory import AE_TITLE_PATTERN, Service
from audit.vocabulary import Reason

DICOM_SERVICE_KIND = "dicom"
PACS_HTTP_SERVICE_KIND = "pacs-http"
DEFAULT_DICOM_PORTS = (104, 4242)
DICOM_TLS_PORT = 2762          # DICOM's registered port for TLS (PS3.15 B.1)
DEFAULT_PACS_HTTP_PORT = 8042
DEFAULT_CALLED_AE = "ORTHANC"
# AE titles no PACS should know: the auditor calls as a stranger, and calls a PACS by a name
# that is not its own.
UNKNOWN_CALLING_AE = "MIS-AUDIT-PROBE"
WRONG_CALLED_AE = "NOT-THIS-PACS"
# Counting stops here: enough to prove exposure, bounded for a PACS holding millions.
MAX_STUDIES_COUNTED = 1000
REST_PATHS = ("/system", "/patients", "/studies")
DICOMWEB_STUDIES = "/dicom-web/studies"
# A PACS HTTP answer is read up to this (a list of 1001 study ids fits many times over).
MAX_HTTP_BYTES = 1024 * 1024
AE_TITLE_TEXT = re.compile(AE_TITLE_PATTERN)


@dataclass(frozen=True)
class AssociationAttempt:
    """What a PACS did with one association request, and with an echo and a study query."""

    calling_ae: str
    called_ae: str
    outcome: str                      # accepted, rejected, aborted, no answer, skipped,
                                      # not dicom
    rejection_reason: str | None = None
    echo_accepted: bool | None = None
    find_outcome: str | None = None   # answered, refused (0x...), aborted, not negotiated,
                                      # no answer
    study_count: int | None = None
    study_count_capped: bool = False
    # The services whose presentation contexts the PACS accepted (SERVICES_ASKED keys), and
    # its implementation class UID and version name (to match against vendor advisories).
    granted: tuple[str, ...] = ()
    implementation: str | None = None

    @property
    def find_answered(self) -> bool:
        """Whether the PACS answered the study query with its studies."""
        return self.find_outcome == "answered"


@dataclass(frozen=True)
class DicomEndpoint:
    """One DICOM port: a stranger with the right called AE, and a caller with a wrong one."""

    port: int
    called_ae: str
    tls: bool
    unknown_caller: AssociationAttempt
    wrong_called_ae: AssociationAttempt


@dataclass(frozen=True)
class DicomFacts:
    """The target's DICOM ports and how each treated strangers."""

    address: str
    endpoints: list[DicomEndpoint]


def dicom_associations(context: TargetContext) -> DicomFacts:
    """Associate with each DICOM port as an unknown AE, then with a wrong called AE title."""
    address = target_address(context)
    timeout = context.budget.step()
    return DicomFacts(address, [_endpoint(address, port, called, tls, timeout)
                                for port, called, tls in _dicom_ports(context, address, timeout)])


def _endpoint(address: str, port: int, called_ae: str, tls: bool,
              timeout: float) -> DicomEndpoint:
    from audit.facts.dimse import associate

    unknown_caller = associate(address, port, UNKNOWN_CALLING_AE, called_ae, timeout, tls)
    if unknown_caller.outcome == "aborted" and not tls:
        # Cut off before any answer: a DICOM TLS port, perhaps, declared without `tls: true`.
        over_tls = associate(address, port, UNKNOWN_CALLING_AE, called_ae, timeout, tls=True)
        if over_tls.outcome in ("accepted", "rejected"):
            tls, unknown_caller = True, over_tls
    if unknown_caller.outcome == "not dicom":
        # Refusing a stranger is not what it did: nothing about access control can be said.
        raise FactUnavailable(Reason.REFUSED, says(
            "{address}:{port}: the peer does not speak DICOM (it sent an unrecognised or "
            "oversized PDU)", address=address, port=port))
    if unknown_caller.outcome == "no answer":
        # A silent port would only cost a second timeout to learn nothing more.
        wrong_called = AssociationAttempt(UNKNOWN_CALLING_AE, WRONG_CALLED_AE, "skipped")
    else:
        wrong_called = associate(address, port, UNKNOWN_CALLING_AE, WRONG_CALLED_AE, timeout,
                                 tls)
    return DicomEndpoint(port, called_ae, tls, unknown_caller, wrong_called)


def _dicom_ports(context: TargetContext, address: str,
                 timeout: float) -> list[tuple[int, str, bool]]:
    """(port, called AE title, DICOM over TLS) of each DICOM service of the target."""
    declared = services_of_kind(context, DICOM_SERVICE_KIND)
    called = context.target.ae_title or DEFAULT_CALLED_AE
    if declared:
        return [(service.port, service.ae_title or called, bool(service.tls))
                for service in declared]
    tried = [*DEFAULT_DICOM_PORTS, DICOM_TLS_PORT]
    open_ports = [port for port in tried if _accepts_tcp(address, port, timeout)]
    if not open_ports:
        raise FactUnavailable(Reason.UNREACHABLE, says(
            "no DICOM port open on {address} (tried {ports}; declare a service of kind "
            "'{kind}')", address=address, ports=", ".join(map(str, tried)),
            kind=DICOM_SERVICE_KIND))
    return [(port, called, port == DICOM_TLS_PORT) for port in open_ports]


def _accepts_tcp(address: str, port: int, timeout: float) -> bool:
    try:
        open_connection(address, port, timeout).close()
    except FactUnavailable:
        return False
    return True


@dataclass(frozen=True)
class HttpExposure:
    """How one PACS HTTP path answered without credentials: the status and a count only."""

    path: str
    status: int
    count: int | None
    count_capped: bool = False        # more entries than MAX_STUDIES_COUNTED were listed


@dataclass(frozen=True)
class PacsHttpFacts:
    """The PACS HTTP base and the anonymous answers of its REST API and DICOMweb paths."""

    base_url: str
    rest: list[HttpExposure]
    dicomweb: HttpExposure


def pacs_http_anonymous(context: TargetContext) -> PacsHttpFacts:
    """GET the Orthanc REST paths and the DICOMweb study search without credentials."""
    base = pacs_http_base(context)
    # Lists are asked for one more than is counted: enough to say "more than", never more.
    limit = f"limit={MAX_STUDIES_COUNTED + 1}"
    with access_probe_client(context) as client:
        rest = [_anonymous_count(client, base, path,
                                 path if path == "/system" else f"{path}?since=0&{limit}")
                for path in REST_PATHS]
        dicomweb = _anonymous_count(client, base, DICOMWEB_STUDIES,
                                    f"{DICOMWEB_STUDIES}?{limit}", accept="application/dicom+json")
    return PacsHttpFacts(base, rest, dicomweb)


def revealed_ae_title(origin: str, timeout: float) -> str | None:
    """The AE title an Orthanc HTTP API tells whoever asks: `/system`, without a login."""
    with HttpClient(timeout, verify=False, tls_failure=Reason.UNREACHABLE) as client:
        try:
            answer = client.get(f"{origin}/system", MAX_HTTP_BYTES, accept="application/json")
        except FactUnavailable:
            return None
    document = answer.json() if answer.status == 200 else None
    title = document.get("DicomAet") if isinstance(document, dict) else None
    return title if isinstance(title, str) and AE_TITLE_TEXT.fullmatch(title) else None


def pacs_http_base(context: TargetContext) -> str:
    """The base URL of the PACS's HTTP API: a `pacs-http` service, else port 8042."""
    declared = services_of_kind(context, PACS_HTTP_SERVICE_KIND)
    default = Service(kind=PACS_HTTP_SERVICE_KIND, port=DEFAULT_PACS_HTTP_PORT)
    return http_origin(target_address(context), declared[0] if declared else default)


def _anonymous_count(client: HttpClient, base: str, path: str, request: str,
                     accept: str = "application/json") -> HttpExposure:
    answer = client.get(base + request, MAX_HTTP_BYTES, accept=accept)
    document = answer.json()
    count = len(document) if answer.status == 200 and isinstance(document, list) else None
    if answer.status == 204:  # DICOMweb's "no match": answered, nothing to list
        count = 0
    if count is not None and count > MAX_STUDIES_COUNTED:
        return HttpExposure(path, answer.status, MAX_STUDIES_COUNTED, count_capped=True)
    return HttpExposure(path, answer.status, count)


@dataclass(frozen=True)
class PacsChannel:
    """One way into the PACS and whether what crosses it is encrypted (None: cannot tell)."""

    channel: str          # "DICOM port 4242", "HTTP API http://10.0.0.5:8042"
    encrypted: bool | None
    seen: str             # what showed it
    # `channel` and `seen` as messages a report can translate (for summaries, not evidence).
    label: Message = field(compare=False, repr=False)
    seen_said: Message = field(compare=False, repr=False)

    def evidence(self) -> dict[str, object]:
        """What the channel showed, for a finding's `observed`."""
        return {"channel": self.channel, "encrypted": self.encrypted, "seen": self.seen}


@dataclass(frozen=True)
class PacsTransport:
    """The PACS's DICOM ports and HTTP API, and what could not be reached."""

    channels: list[PacsChannel]
    unreached: list[str]


def pacs_transport(context: TargetContext) -> PacsTransport:
    """Whether DICOM and the HTTP API are spoken in clear, from the probes that talked to
    them (their facts, gathered once, are shared with the access checks)."""
    channels: list[PacsChannel] = []
    unreached: list[Message] = []
    try:
        for endpoint in context.gather(dicom_associations).endpoints:
            channels.append(_dicom_channel(endpoint))
    except FactUnavailable as error:
        unreached.append(says("DICOM: {reason}", reason=error.unavailable.text))
    try:
        http = context.gather(pacs_http_anonymous)
        status = http.rest[0].status
        channels.append(PacsChannel(f"HTTP API {http.base_url}",
                                    http.base_url.startswith("https://"),
                                    f"answered HTTP {status}",
                                    says("HTTP API {url}", url=http.base_url),
                                    says("answered HTTP {status}", status=status)))
    except FactUnavailable as error:
        unreached.append(says("HTTP API: {reason}", reason=error.unavailable.text))
    if not channels and unreached:
        raise FactUnavailable(Reason.UNREACHABLE, listed(unreached))
    return PacsTransport(channels, [str(reason) for reason in unreached])


def _dicom_channel(endpoint: DicomEndpoint) -> PacsChannel:
    outcome = endpoint.unknown_caller.outcome
    answered = outcome in ("accepted", "rejected")
    seen = f"association {outcome}" + (" over TLS" if endpoint.tls else " in clear")
    return PacsChannel(f"DICOM port {endpoint.port}", endpoint.tls if answered else None, seen,
                       says("DICOM port {port}", port=endpoint.port),
                       _association_seen(outcome, endpoint.tls))


# How the unknown caller's association went, by (outcome, over TLS): whole sentences, so that
# each language can word them its own way.
ASSOCIATION_SEEN = {
    ("accepted", True): says("association accepted over TLS"),
    ("rejected", True): says("association rejected over TLS"),
    ("aborted", True): says("association aborted over TLS"),
    ("no answer", True): says("association no answer over TLS"),
    ("accepted", False): says("association accepted in clear"),
    ("rejected", False): says("association rejected in clear"),
    ("aborted", False): says("association aborted in clear"),
    ("no answer", False): says("association no answer in clear"),
}


def _association_seen(outcome: str, tls: bool) -> Message:
    """How the unknown caller's association went, and whether over TLS, as a message."""
    if (outcome, tls) in ASSOCIATION_SEEN:
        return ASSOCIATION_SEEN[(outcome, tls)]
    if tls:
        return says("association {outcome} over TLS", outcome=outcome)
    return says("association {outcome} in clear", outcome=outcome)
