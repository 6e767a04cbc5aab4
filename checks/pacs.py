"""PACS: DICOM strangers, called AE titles, and the PACS's HTTP APIs without a login."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from audit.facts.dicom import (
    AssociationAttempt,
    DicomEndpoint,
    DicomFacts,
    HttpExposure,
    PacsHttpFacts,
    PacsTransport,
    dicom_associations,
    pacs_http_anonymous,
    pacs_transport,
)
from audit.facts.pacs_cors import PacsCorsFacts, pacs_cors
from audit.facts.pacs_defaults import PROBED_PATH, VendorDefaultsFacts, vendor_default_logins
from audit.facts.pacs_stow import PacsStowFacts, pacs_stow
from audit.messages import Message, Text, listed, says
from audit.registry import (
    Finding,
    NoParams,
    Params,
    check,
    failed,
    failed_on,
    manual,
    not_applicable,
    passed,
)
from audit.vocabulary import Role
from checks.fhir import Access, http_access

CALLED_AE_NOT_RECOGNISED = "Called AE title not recognised"
# A port that stayed silent, and the attempt then skipped on it: nothing can be concluded.
UNANSWERED = frozenset({"no answer", "skipped"})


class UnknownAeParams(Params):
    """Whether an unknown AE may at least verify the connection (C-ECHO)."""

    # C-ECHO tells a stranger only that a DICOM node is there (monitoring tools rely on it);
    # a profile that wants the stricter rule sets this to false.
    allow_echo: bool = True


def _attempt_evidence(endpoint: DicomEndpoint, attempt: AssociationAttempt) -> dict[str, Any]:
    return {"port": endpoint.port, "tls": endpoint.tls, **asdict(attempt)}


def _stranger_problem(endpoint: DicomEndpoint, allow_echo: bool) -> Message | None:
    attempt, port = endpoint.unknown_caller, endpoint.port
    if attempt.find_answered:
        if attempt.study_count_capped:
            return says("port {port} answered a study query with more than {count} studies",
                        port=port, count=str(attempt.study_count))
        return says("port {port} answered a study query with {count} studies", port=port,
                    count=str(attempt.study_count))
    if attempt.echo_accepted and not allow_echo:
        return says("port {port} answered a C-ECHO", port=port)
    return None


def _stranger_unclear(endpoint: DicomEndpoint) -> Message | None:
    attempt = endpoint.unknown_caller
    if attempt.rejection_reason == CALLED_AE_NOT_RECOGNISED:
        return says("port {port} does not know the called AE title {called_ae}: set the "
                    "target's ae_title (or its dicom service's)", port=endpoint.port,
                    called_ae=repr(endpoint.called_ae))
    if attempt.outcome == "no answer":
        return says("port {port} did not answer the association request", port=endpoint.port)
    return None


# The services an unknown AE may be granted (audit.facts.dimse.SERVICES_ASKED), as a report
# says them.
SERVICE_NAMES: dict[str, Message] = {
    "query (patient root C-FIND)": says("query (patient root C-FIND)"),
    "retrieve (C-MOVE)": says("retrieve (C-MOVE)"),
    "retrieve (C-GET)": says("retrieve (C-GET)"),
    "modality worklist (C-FIND)": says("modality worklist (C-FIND)"),
    "storage (C-STORE)": says("storage (C-STORE)"),
}


def _services(granted: tuple[str, ...]) -> Text:
    """The services granted, ", " between them."""
    return listed([SERVICE_NAMES.get(name) or says("{service}", service=name)
                   for name in granted], ", ")


@check(id="pacs.dicom_unknown_ae", title="The PACS refuses DICOM queries from unknown AE titles",
       applies_to=Role.PACS, probe=dicom_associations, params=UnknownAeParams)
def dicom_unknown_ae(facts: DicomFacts, p: UnknownAeParams) -> Finding:
    """A PACS that answers a C-FIND from any calling AE title lets anyone on the network list
    (and then retrieve) every study. Accept associations only from the modalities and
    workstations you know, each by AE title and host (Orthanc: `DicomModalities`,
    `DicomAlwaysAllowFind` and `DicomAlwaysAllowEcho` false, `DicomCheckModalityHost` true).
    The probe calls as `MIS-AUDIT-PROBE`, queries at STUDY level for study UIDs only and keeps
    the count. A C-ECHO alone is tolerated unless `allow_echo` is false. Ports: the target's
    services of kind `dicom` (with the PACS's `ae_title`, default ORTHANC), else 104 and
    4242."""
    observed = [_attempt_evidence(endpoint, endpoint.unknown_caller)
                for endpoint in facts.endpoints]
    expected = ("association rejected, or study query refused"
                + ("" if p.allow_echo else " and C-ECHO refused"))
    problems = [problem for endpoint in facts.endpoints
                if (problem := _stranger_problem(endpoint, p.allow_echo))]
    if problems:
        return failed(says("an unknown AE title was accepted: {problems}",
                           problems=listed(problems)), observed=observed, expected=expected)
    unclear = [reason for endpoint in facts.endpoints if (reason := _stranger_unclear(endpoint))]
    if unclear:
        return manual(listed(unclear), observed=observed, expected=expected)
    echoed = [str(endpoint.port) for endpoint in facts.endpoints
              if endpoint.unknown_caller.echo_accepted]
    summary = says("an unknown AE title may not query studies (C-ECHO answered on port "
                   "{ports})", ports=", ".join(echoed)) if echoed else \
        says("an unknown AE title may not query studies")
    return passed(summary, observed=observed, expected=expected)


def _refused_in_operation(attempt: AssociationAttempt) -> bool:
    """Whether the PACS refused (or aborted) the study query whose context it had accepted:
    then its negotiation says nothing about what it permits (Orthanc checks each request)."""
    return attempt.find_outcome is not None and attempt.find_outcome.startswith(
        ("refused", "aborted"))


@check(id="pacs.dicom_services_granted", title="The PACS grants an unknown AE no retrieval, "
       "storage or worklist service", applies_to=Role.PACS, probe=dicom_associations,
       params=NoParams)
def dicom_services_granted(facts: DicomFacts, p: NoParams) -> Finding:
    """What a PACS accepts in association negotiation is what it offers a stranger: a
    retrieve context (C-MOVE, C-GET) lets it pull studies, a storage context lets it plant
    or overwrite images, a worklist context lists scheduled patients. The probe proposes
    these presentation contexts as `MIS-AUDIT-PROBE` and sends no dataset (nothing is
    written): a PACS may still refuse the operation itself, which only a write (opt-in,
    never done here) would show. Reject unknown AEs at association, or accept their
    contexts only for the SOP classes their role needs. The PACS's implementation class UID
    and version name are in the evidence, for matching vendor advisories."""
    observed = [_attempt_evidence(endpoint, endpoint.unknown_caller)
                for endpoint in facts.endpoints]
    expected = "no retrieve, storage or worklist context accepted from an unknown AE"
    granting = [endpoint for endpoint in facts.endpoints if endpoint.unknown_caller.granted]
    problems = [says("port {port} accepts {services} from an unknown AE in negotiation",
                     port=endpoint.port, services=_services(endpoint.unknown_caller.granted))
                for endpoint in granting if not _refused_in_operation(endpoint.unknown_caller)]
    if problems:
        return failed_on(problems, observed=observed, expected=expected)
    unclear = [reason for endpoint in facts.endpoints if (reason := _stranger_unclear(endpoint))]
    unclear += [says("port {port} accepts {services} in negotiation but refused the study query "
                     "it also accepted: whether it would retrieve or store only an operation "
                     "would show (never sent)", port=endpoint.port,
                     services=_services(endpoint.unknown_caller.granted))
                for endpoint in granting]
    if unclear:
        return manual(listed(unclear), observed=observed, expected=expected)
    return passed(says("an unknown AE is granted no retrieve, storage or worklist service"),
                  observed=observed, expected=expected)


@check(id="pacs.vendor_default_credentials", title="The PACS accepts no vendor default login",
       applies_to=Role.PACS, probe=vendor_default_logins, params=NoParams)
def vendor_default_credentials(facts: VendorDefaultsFacts, p: NoParams) -> Finding:
    """A PACS installed with its vendor's sample users (Orthanc: `orthanc`/`orthanc`) is
    open to anyone who has read the manual. Opt-in per target (`vendor_defaults: true`):
    each published default is tried once on the HTTP API's `/system`, after an anonymous
    request that must be refused; nothing else is ever tried. Remove the sample users and
    give each person their own account."""
    if facts.attempts is None:
        return not_applicable(says("not opted in: the target does not set vendor_defaults"))
    observed = {"base_url": facts.base_url, "anonymous_status": facts.anonymous_status,
                "attempts": [asdict(attempt) for attempt in facts.attempts]}
    expected = "every published default login refused (HTTP 401 or 403)"
    if http_access(facts.anonymous_status or 0) is not Access.PROTECTED:
        return not_applicable(says("{url} answered HTTP {status} without a login: a default "
                                   "login proves nothing more (see pacs.rest_unauthenticated)",
                                   url=f"{facts.base_url}{PROBED_PATH}",
                                   status=str(facts.anonymous_status)), observed=observed)
    accepted = [says("{base_url}: the {vendor} default login {user} is accepted",
                     base_url=facts.base_url, vendor=a.vendor, user=repr(a.user))
                for a in facts.attempts if http_access(a.status) is Access.OPEN]
    if accepted:
        return failed_on(accepted, observed=observed, expected=expected)
    return passed(says("{count} published default login(s) refused", count=len(facts.attempts)),
                  observed=observed, expected=expected)


@check(id="pacs.cors_any_origin", title="No web site may read the PACS API with a user's "
       "credentials", applies_to=Role.PACS, probe=pacs_cors, params=NoParams)
def cors_any_origin(facts: PacsCorsFacts, p: NoParams) -> Finding:
    """A PACS API (REST, DICOMweb) that answers any Origin with
    `Access-Control-Allow-Credentials: true` lets every web page a radiologist opens read
    studies with the radiologist's own login. Allow only the viewer's own origin, by name.
    The probe asks as `https://mis-audit-probe.invalid` and keeps the two headers."""
    observed = [asdict(answer) for answer in facts.answers]
    expected = "no foreign origin allowed with credentials"
    open_ = [says("{url} allows any origin ({origin}) with credentials",
                  url=f"{facts.base_url}{a.path}", origin=str(a.allow_origin))
             for a in facts.answers if a.any_origin and a.allow_credentials]
    if open_:
        return failed_on(open_, observed=observed, expected=expected)
    return passed(says("no foreign origin is allowed with credentials"), observed=observed,
                  expected=expected)


@check(id="pacs.dicom_called_ae", title="The PACS answers only to its own called AE title",
       applies_to=Role.PACS, probe=dicom_associations, params=NoParams)
def dicom_called_ae(facts: DicomFacts, p: NoParams) -> Finding:
    """A PACS that accepts associations addressed to any called AE title does not check who
    a modality thinks it is talking to: misrouted studies are stored, and a stranger needs
    to guess nothing. Make the PACS check the called AE title (Orthanc:
    `DicomCheckCalledAet` true). The probe calls the target's `dicom` services as
    `NOT-THIS-PACS`."""
    observed = [_attempt_evidence(endpoint, endpoint.wrong_called_ae)
                for endpoint in facts.endpoints]
    expected = "association addressed to another AE title rejected"
    accepted = [str(endpoint.port) for endpoint in facts.endpoints
                if endpoint.wrong_called_ae.outcome == "accepted"]
    if accepted:
        called = facts.endpoints[0].wrong_called_ae.called_ae
        return failed(says("port {ports} accepted an association addressed to {called}",
                           ports=", ".join(accepted), called=repr(called)),
                      observed=observed, expected=expected)
    silent = [str(endpoint.port) for endpoint in facts.endpoints
              if endpoint.wrong_called_ae.outcome in UNANSWERED]
    if silent:
        return manual(says("port {port} did not answer the association request",
                           port=", ".join(silent)), observed=observed, expected=expected)
    return passed(says("associations addressed to another AE title are rejected"),
                  observed=observed, expected=expected)


def _http_verdict(exposures: list[HttpExposure], base_url: str, what: Message,
                  expected: str) -> Finding:
    """One verdict over PACS HTTP paths requested without credentials."""
    observed = [asdict(exposure) for exposure in exposures]
    access = {exposure.path: http_access(exposure.status) for exposure in exposures}
    open_paths = [_exposure_text(exposure) for exposure in exposures
                  if access[exposure.path] is Access.OPEN]
    if open_paths:
        return failed(says("{what} answers without credentials: {paths}", what=what,
                           paths=listed(open_paths, ", ")),
                      observed=observed, expected=expected, base_url=base_url)
    if all(verdict is Access.ABSENT for verdict in access.values()):
        return not_applicable(says("no {what} at {base_url}", what=what, base_url=base_url),
                              base_url=base_url, observed=observed)
    unclear = [says("{path} (HTTP {status})", path=exposure.path, status=exposure.status)
               for exposure in exposures if access[exposure.path] is Access.UNCLEAR]
    if unclear:
        return manual(says("{what} gave unexpected answers: {answers}", what=what,
                           answers=listed(unclear, ", ")),
                      observed=observed, expected=expected, base_url=base_url)
    return passed(says("{what} requires credentials", what=what), observed=observed,
                  expected=expected, base_url=base_url)


def _exposure_text(exposure: HttpExposure) -> Message:
    if exposure.count is None:
        return says("{path} (HTTP {status})", path=exposure.path, status=exposure.status)
    if exposure.count_capped:
        return says("{path} (HTTP {status}, more than {count} entries)", path=exposure.path,
                    status=exposure.status, count=exposure.count)
    return says("{path} (HTTP {status}, {count} entries)", path=exposure.path,
                status=exposure.status, count=exposure.count)


@check(id="pacs.rest_unauthenticated", title="The PACS REST API requires credentials",
       applies_to=Role.PACS, probe=pacs_http_anonymous, params=NoParams)
def rest_unauthenticated(facts: PacsHttpFacts, p: NoParams) -> Finding:
    """Orthanc's REST API lists, downloads, modifies and deletes every study. Without
    authentication anyone who reaches its port owns the archive. Set
    `AuthenticationEnabled` true with `RegisteredUsers` (or an authorization plugin), and
    keep the HTTP port off untrusted networks. The probe GETs `/system`, `/patients` and
    `/studies` and keeps the status and the number of entries only. The HTTP port is the
    target's service of kind `pacs-http` (https when `tls` is true), else 8042."""
    return _http_verdict(facts.rest, facts.base_url, says("the PACS REST API"),
                         "HTTP 401 or 403 without credentials")


@check(id="pacs.dicomweb_unauthenticated", title="DICOMweb requires credentials",
       applies_to=Role.PACS, probe=pacs_http_anonymous, params=NoParams)
def dicomweb_unauthenticated(facts: PacsHttpFacts, p: NoParams) -> Finding:
    """DICOMweb (QIDO-RS, WADO-RS) serves study lists and images over HTTP: open, it is a
    patient-data download service for anyone. Put it behind authentication (Orthanc:
    `AuthenticationEnabled`; a reverse proxy with OAuth2 for viewers). The probe runs one
    QIDO-RS study search (`/dicom-web/studies` on the `pacs-http` service, else port 8042)
    and keeps the status and the number of studies only."""
    return _http_verdict([facts.dicomweb], facts.base_url, says("DICOMweb"),
                         "HTTP 401 or 403 without credentials")


# Statuses that say the upload request was taken for processing: a dataset would have been
# stored, or judged on its content, with no question of who sent it.
STOW_PROCESSED = frozenset({400, 409, 415, 422})
STOW_REFUSED = frozenset({401, 403})
STOW_NOT_SERVED = frozenset({405, 501})


@check(id="pacs.dicomweb_anonymous_store", title="DICOMweb takes no uploads (STOW-RS) from "
       "anonymous callers", applies_to=Role.PACS, probe=pacs_stow, params=NoParams)
def dicomweb_anonymous_store(facts: PacsStowFacts, p: NoParams) -> Finding:
    """STOW-RS (`POST /dicom-web/studies`) files new studies in the archive: open to anyone,
    a forged study lands under any patient's name and identifiers, beside the real ones,
    and is read as a real one. Require authentication for it (Orthanc:
    `AuthenticationEnabled`; a proxy that lets only modalities and authenticated viewers
    POST). The probe sends one upload request whose multipart body holds no dataset, so
    nothing can be stored, and keeps the answer's status: 401 or 403 pass, 405 or 501 (no
    STOW-RS) pass, 2xx, 400, 409, 415 or 422 (the request was taken for processing) fail."""
    observed = {"request": f"POST {facts.path} (an upload with no dataset in it)",
                "status": facts.status}
    expected = "HTTP 401 or 403 without credentials, or no STOW-RS (405, 501)"
    where = f"{facts.base_url}{facts.path}"
    if facts.status == 404:
        return not_applicable(says("no DICOMweb at {where}", where=where),
                              base_url=facts.base_url, observed=observed)
    if facts.status in STOW_REFUSED:
        return passed(says("STOW-RS at {where} asks for credentials (HTTP {status})",
                           where=where, status=facts.status),
                      observed=observed, expected=expected)
    if facts.status in STOW_NOT_SERVED:
        return passed(says("no STOW-RS at {where} (HTTP {status})", where=where,
                           status=facts.status), observed=observed, expected=expected)
    if 200 <= facts.status < 300 or facts.status in STOW_PROCESSED:
        return failed(says("STOW-RS at {where} took an anonymous upload for processing (HTTP "
                           "{status}): with a dataset in it, it would have stored it",
                           where=where, status=facts.status),
                      observed=observed, expected=expected)
    return manual(says("STOW-RS at {where} gave an unexpected answer (HTTP {status})",
                       where=where, status=facts.status), observed=observed, expected=expected)


@check(id="pacs.plaintext", title="DICOM and the PACS's HTTP API are encrypted in transit",
       applies_to=Role.PACS, probe=pacs_transport, params=NoParams)
def pacs_plaintext(facts: PacsTransport, p: NoParams) -> Finding:
    """Images, reports and the names and identifiers in every DICOM header cross the
    network on the PACS's DICOM port and its HTTP API (REST, DICOMweb, viewers); in clear,
    anyone on the path reads and alters them. Serve DICOM over TLS (DICOM PS3.15 secure
    transport; Orthanc `DicomTlsEnabled`) and the HTTP API over HTTPS only (Orthanc
    `SslEnabled`, or a TLS reverse proxy with the plain port closed). The facts are those of
    the access probes: the associations they made and the HTTP API they reached."""
    observed = [channel.evidence() for channel in facts.channels]
    expected = "TLS on every DICOM port and on the HTTP API"
    plain = [channel.label for channel in facts.channels if channel.encrypted is False]
    if plain:
        return failed(says("in clear: {channels}", channels=listed(plain, ", ")), observed=observed,
                      expected=expected, unreached=facts.unreached)
    unclear = [says("{channel} ({seen})", channel=channel.label, seen=channel.seen_said)
               for channel in facts.channels if channel.encrypted is None]
    if unclear:
        return manual(says("could not tell: {channels}", channels=listed(unclear, ", ")),
                      observed=observed, expected=expected, unreached=facts.unreached)
    return passed(says("over TLS: {channels}",
                       channels=listed([channel.label for channel in facts.channels], ", ")),
                  observed=observed, expected=expected, unreached=facts.unreached)
