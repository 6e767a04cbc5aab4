"""DICOM associations made as a stranger (DIMSE, with pynetdicom): an association request,
and when it is accepted a C-ECHO and a study-level C-FIND whose answers are counted, then
dropped. Imported only when a PACS is probed: pydicom and pynetdicom take a third of a
second to import, which every other run would pay.

A peer is never trusted with the probe's memory or time: a PDU longer than `MAX_PDU_BYTES`
ends the association before it is read (pynetdicom would read any length the peer
announces), and each association's socket is cut at a deadline (pynetdicom's own timeouts
bound each wait, not a peer that drips bytes).
"""

from __future__ import annotations

import ssl
import time

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.transport import AddressInformation, AssociationSocket

from audit.facts.dicom import MAX_STUDIES_COUNTED, AssociationAttempt
from audit.facts.net import SocketDeadline, open_connection, unverified_context

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
FIND_SUCCESS = 0x0000
FIND_PENDING = frozenset({0xFF00, 0xFF01})
# Far above any A-ASSOCIATE-AC and the P-DATA PDUs the probe asks for (16 KB): a longer
# one is a peer that does not speak DICOM, or one trying to exhaust the auditor's memory.
MAX_PDU_BYTES = 1024 * 1024
# An association is at most four waits (associate, echo, find, release), each one step.
ASSOCIATION_STEPS = 4
UNRECOGNISED_PDU = "Evt19"    # pynetdicom's state-machine event for an invalid PDU


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
