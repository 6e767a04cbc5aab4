"""PACS facts: DICOM associations made by a stranger, and the PACS's HTTP APIs without a login.

Service kinds read from the inventory:
- `dicom`: the DICOM (DIMSE) port; its `ae_title` is the PACS's own (called) AE title,
  `ORTHANC` when not given. Without such a service the ports 104 and 4242 are tried, and
  2762 over TLS.
- `pacs-http`: the PACS's HTTP port (Orthanc REST API and DICOMweb); https when `tls` is
  true. Without such a service, http on port 8042 is tried.

Every query is read-only; a C-FIND asks for study UIDs only and the answers are counted,
then dropped: no patient name or identifier is ever requested, let alone kept.

A peer is never trusted with the probe's memory or time: a PDU longer than `MAX_PDU_BYTES`
ends the association before it is read (pynetdicom would read any length the peer
announces), and each association's socket is cut at a deadline (pynetdicom's own timeouts
bound each wait, not a peer that drips bytes).
"""

from __future__ import annotations

import re
import ssl
import time
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.transport import AddressInformation, AssociationSocket

from audit.errors import FactUnavailable
from audit.facts.context import TargetContext
from audit.facts.net import (
    HttpClient,
    SocketDeadline,
    access_probe_client,
    http_origin,
    open_connection,
    unverified_context,
)
from audit.facts.ports import target_address
from audit.facts.services import services_of_kind
from audit.messages import Message, listed, says
from audit.model.inventory import AE_TITLE_PATTERN, Service
from audit.vocabulary import Reason

VERIFICATION = UID("1.2.840.10008.1.1")
STUDY_ROOT_FIND = UID("1.2.840.10008.5.1.4.1.2.2.1")
# What else a stranger asks for in the same association: which of these the PACS accepts in
# negotiation is what it grants an unknown AE. No C-MOVE, C-GET or C-STORE is ever sent.
SERVICES_ASKED: dict[str, tuple[UID, ...]] = {
    "query (patient root C-FIND)": (UID("1.2.840.10008.5.1.4.1.2.1.1"),),
    "retrieve (C-MOVE)": (UID("1.2.840.10008.5.1.4.1.2.1.2"), UID("1.2.840.10008.5.1.4.1.2.2.2")),
    "retrieve (C-GET)": (UID("1.2.840.10008.5.1.4.1.2.1.3"), UID("1.2.840.10008.5.1.4.1.2.2.3")),
    "modality worklist (C-FIND)": (UID("1.2.840.10008.5.1.4.31"),),
    # CT, MR, CR, digital X-ray, ultrasound, secondary capture, encapsulated PDF
    "storage (C-STORE)": tuple(UID(uid) for uid in (
        "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.1",
        "1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.6.1",
        "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.104.1")),
}
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
FIND_SUCCESS = 0x0000
FIND_PENDING = frozenset({0xFF00, 0xFF01})
REST_PATHS = ("/system", "/patients", "/studies")
DICOMWEB_STUDIES = "/dicom-web/studies"
# Far above any A-ASSOCIATE-AC and the P-DATA PDUs the probe asks for (16 KB): a longer
# one is a peer that does not speak DICOM, or one trying to exhaust the auditor's memory.
MAX_PDU_BYTES = 1024 * 1024
# A PACS HTTP answer is read up to this (a list of 1001 study ids fits many times over).
MAX_HTTP_BYTES = 1024 * 1024
AE_TITLE_TEXT = re.compile(AE_TITLE_PATTERN)
# An association is at most four waits (associate, echo, find, release), each one step.
ASSOCIATION_STEPS = 4
UNRECOGNISED_PDU = "Evt19"    # pynetdicom's state-machine event for an invalid PDU


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


def associate(address: str, port: int, calling_ae: str, called_ae: str, timeout: float,
              tls: bool = False) -> AssociationAttempt:
    """Request an association (over TLS when asked, any certificate accepted: access control
    is judged here, certificates by the TLS checks); when accepted, send a C-ECHO and a
    study-level C-FIND."""
    # pynetdicom reports a failed connect as a bare abort: find out why before associating.
    open_connection(address, port, timeout).close()
    with SocketDeadline(timeout * ASSOCIATION_STEPS) as deadline:
        entity = _BoundedAE(deadline, ae_title=calling_ae)
        entity.acse_timeout = entity.dimse_timeout = entity.network_timeout = timeout
        entity.connection_timeout = timeout
        for abstract_syntax in (VERIFICATION, STUDY_ROOT_FIND,
                                *(uid for uids in SERVICES_ASKED.values() for uid in uids)):
            entity.add_requested_context(abstract_syntax)
        started = time.monotonic()
        association = entity.associate(
            address, port, ae_title=called_ae,
            tls_args=(unverified_context(), address) if tls else None,
            evt_handlers=[(evt.EVT_FSM_TRANSITION, entity.note_transition)])
        try:
            if association.is_rejected:
                return AssociationAttempt(calling_ae, called_ae, outcome="rejected",
                                          rejection_reason=_rejection_reason(association))
            if not association.is_established:
                # Ended before the ACSE timeout: the peer closed or aborted (or said something
                # that is not DICOM); else it stayed silent.
                waited = time.monotonic() - started
                outcome = "not dicom" if entity.protocol_violation and not entity.spoke_tls \
                    else "aborted" if waited < timeout else "no answer"
                return AssociationAttempt(calling_ae, called_ae, outcome=outcome)
            granted, implementation = _negotiated(association)
            echo = _echo(association)
            find_outcome, count, capped = _count_studies(association, timeout)
            return AssociationAttempt(calling_ae, called_ae, outcome="accepted",
                                      echo_accepted=echo, find_outcome=find_outcome,
                                      study_count=count, study_count_capped=capped,
                                      granted=granted, implementation=implementation)
        finally:
            if association.is_established:
                association.release()
            entity.shutdown()


class _BoundedAE(AE):
    """An AE whose association sockets refuse oversized PDUs and are cut at `deadline`."""

    def __init__(self, deadline: SocketDeadline, ae_title: str) -> None:
        super().__init__(ae_title=ae_title)
        self.deadline = deadline
        self.protocol_violation = False
        self.first_bytes = b""

    @property
    def spoke_tls(self) -> bool:
        """Whether the peer answered with a TLS record (a DICOM TLS port, not a stranger)."""
        return self.first_bytes[:1] in (b"\x15", b"\x16") and self.first_bytes[1:2] == b"\x03"

    def note_transition(self, event: evt.Event) -> None:
        """Remember a PDU that pynetdicom found invalid or unrecognised."""
        if event.fsm_event == UNRECOGNISED_PDU:
            self.protocol_violation = True

    def _create_socket(self, assoc: Association, address: AddressInformation,
                       tls_args: tuple[ssl.SSLContext, str] | None) -> AssociationSocket:
        sock = _BoundedSocket(self, assoc, address=address)
        sock.tls_args = tls_args
        if sock.socket is not None:
            self.deadline.watch(sock.socket)
        return sock


class _BoundedSocket(AssociationSocket):
    """Reads a PDU only when its announced length is within MAX_PDU_BYTES; keeps the first
    bytes the peer sent."""

    def __init__(self, entity: _BoundedAE, assoc: Association,
                 address: AddressInformation) -> None:
        super().__init__(assoc, address=address)
        self.entity = entity

    def recv(self, nr_bytes: int) -> bytearray:
        """`nr_bytes` from the peer, unless that is more than any PDU the probe accepts."""
        if nr_bytes > MAX_PDU_BYTES:
            self.entity.protocol_violation = True
            # pynetdicom takes an OSError here for a closed connection and aborts
            raise OSError(f"the peer announced a PDU of {nr_bytes} bytes")
        data = super().recv(nr_bytes)
        if not self.entity.first_bytes:
            self.entity.first_bytes = bytes(data[:2])
        return data


def _rejection_reason(association: Association) -> str | None:
    """The reason an A-ASSOCIATE-RJ gave (a fixed table of pynetdicom's, not the peer's text)."""
    primitive = association.acceptor.primitive
    return str(primitive.reason_str) if primitive is not None else None


def _negotiated(association: Association) -> tuple[tuple[str, ...], str | None]:
    """The services accepted in negotiation, and the peer's implementation (its class UID
    and version name, printable text only)."""
    accepted = {context.abstract_syntax for context in association.accepted_contexts}
    granted = tuple(name for name, uids in SERVICES_ASKED.items() if accepted & set(uids))
    acceptor = association.acceptor
    parts = [str(part) for part in (acceptor.implementation_class_uid,
                                    acceptor.implementation_version_name) if part]
    text = "".join(ch for ch in " ".join(parts) if ch.isprintable())[:80]
    return granted, text or None


def _echo(association: Association) -> bool:
    status = association.send_c_echo()
    return bool(status) and getattr(status, "Status", None) == FIND_SUCCESS


def _count_studies(association: Association, timeout: float) -> tuple[str, int | None, bool]:
    """Count the studies a C-FIND at STUDY level returns; identifiers are dropped unread."""
    if not any(context.abstract_syntax == STUDY_ROOT_FIND
               for context in association.accepted_contexts):
        return "not negotiated", None, False
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    count = 0
    started = time.monotonic()
    for status, _identifier in association.send_c_find(query, STUDY_ROOT_FIND):
        code = getattr(status, "Status", None)
        if code is None:  # no status: the PACS aborted (Orthanc's way to refuse) or timed out
            aborted = time.monotonic() - started < timeout
            return ("aborted" if aborted else "no answer"), None, False
        if code in FIND_PENDING:
            count += 1
            if count > MAX_STUDIES_COUNTED:
                association.abort()  # enough counted: stop the PACS sending the rest
                return "answered", MAX_STUDIES_COUNTED, True
            continue
        if code == FIND_SUCCESS:
            return "answered", count, False
        return f"refused (0x{code:04X})", None, False
    return "no answer", None, False


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
