"""PACS checks on hand-built facts: every verdict, no server needed."""

from __future__ import annotations

import pytest

from audit.facts.dicom import (
    AssociationAttempt,
    DicomEndpoint,
    DicomFacts,
    HttpExposure,
    PacsHttpFacts,
)
from audit.facts.pacs_stow import PacsStowFacts
from audit.registry import NoParams
from audit.vocabulary import Status
from checks.pacs import (
    UnknownAeParams,
    dicom_called_ae,
    dicom_unknown_ae,
    dicomweb_anonymous_store,
    dicomweb_unauthenticated,
    rest_unauthenticated,
)

STRANGER, PACS_AE, WRONG = "MIS-AUDIT-PROBE", "ORTHANC", "NOT-THIS-PACS"
REJECTED_CALLING = AssociationAttempt(STRANGER, PACS_AE, "rejected",
                                      rejection_reason="Calling AE title not recognised")
REJECTED_CALLED = AssociationAttempt(STRANGER, WRONG, "rejected",
                                     rejection_reason="Called AE title not recognised")
QUERIED = AssociationAttempt(STRANGER, PACS_AE, "accepted", echo_accepted=True,
                             find_outcome="answered", study_count=2)
ECHO_ONLY = AssociationAttempt(STRANGER, PACS_AE, "accepted", echo_accepted=True,
                               find_outcome="refused (0xC000)")
ACCEPTED_WRONG = AssociationAttempt(STRANGER, WRONG, "accepted", echo_accepted=True,
                                    find_outcome="answered", study_count=2)


def _facts(unknown: AssociationAttempt, wrong: AssociationAttempt = REJECTED_CALLED,
           port: int = 4242) -> DicomFacts:
    return DicomFacts("10.0.0.5", [DicomEndpoint(port, PACS_AE, False, unknown, wrong)])


@pytest.mark.parametrize(("unknown", "params", "status"), [
    (REJECTED_CALLING, UnknownAeParams(), Status.PASS),
    (AssociationAttempt(STRANGER, PACS_AE, "aborted"), UnknownAeParams(), Status.PASS),
    (ECHO_ONLY, UnknownAeParams(), Status.PASS),
    (AssociationAttempt(STRANGER, PACS_AE, "accepted", echo_accepted=True,
                        find_outcome="aborted"), UnknownAeParams(), Status.PASS),
    (ECHO_ONLY, UnknownAeParams(allow_echo=False), Status.FAIL),
    (QUERIED, UnknownAeParams(), Status.FAIL),
    (AssociationAttempt(STRANGER, PACS_AE, "rejected",
                        rejection_reason="Called AE title not recognised"),
     UnknownAeParams(), Status.MANUAL),
    (AssociationAttempt(STRANGER, PACS_AE, "no answer"), UnknownAeParams(), Status.MANUAL),
])
def test_unknown_ae_verdicts(unknown: AssociationAttempt, params: UnknownAeParams,
                             status: Status) -> None:
    assert dicom_unknown_ae(_facts(unknown), params).status is status


def test_unknown_ae_failure_names_port_and_study_count() -> None:
    finding = dicom_unknown_ae(_facts(QUERIED, port=104), UnknownAeParams())
    assert "port 104 answered a study query with 2 studies" in finding.summary
    assert finding.observed == [{"port": 104, "tls": False, "calling_ae": STRANGER, "called_ae": PACS_AE,
                                 "outcome": "accepted", "rejection_reason": None,
                                 "echo_accepted": True, "find_outcome": "answered",
                                 "study_count": 2, "study_count_capped": False,
                                 "granted": (), "implementation": None}]


def test_capped_study_count_is_reported_as_a_lower_bound() -> None:
    capped = AssociationAttempt(STRANGER, PACS_AE, "accepted", echo_accepted=True,
                                find_outcome="answered", study_count=1000,
                                study_count_capped=True)
    assert "more than 1000 studies" in dicom_unknown_ae(_facts(capped), UnknownAeParams()).summary


def test_echo_only_is_mentioned_when_tolerated() -> None:
    finding = dicom_unknown_ae(_facts(ECHO_ONLY), UnknownAeParams())
    assert "C-ECHO answered on port 4242" in finding.summary


@pytest.mark.parametrize(("wrong", "status"), [
    (REJECTED_CALLED, Status.PASS),
    (AssociationAttempt(STRANGER, WRONG, "rejected",
                        rejection_reason="Calling AE title not recognised"), Status.PASS),
    (AssociationAttempt(STRANGER, WRONG, "aborted"), Status.PASS),
    (ACCEPTED_WRONG, Status.FAIL),
    (AssociationAttempt(STRANGER, WRONG, "no answer"), Status.MANUAL),
    (AssociationAttempt(STRANGER, WRONG, "skipped"), Status.MANUAL),
])
def test_called_ae_verdicts(wrong: AssociationAttempt, status: Status) -> None:
    assert dicom_called_ae(_facts(REJECTED_CALLING, wrong), NoParams()).status is status


def test_called_ae_failure_names_the_wrong_title() -> None:
    finding = dicom_called_ae(_facts(QUERIED, ACCEPTED_WRONG), NoParams())
    assert finding.summary == "port 4242 accepted an association addressed to 'NOT-THIS-PACS'"


def _http(rest: list[tuple[str, int, int | None]],
          dicomweb: tuple[int, int | None] = (401, None)) -> PacsHttpFacts:
    return PacsHttpFacts("http://10.0.0.5:8042",
                         [HttpExposure(path, status, count) for path, status, count in rest],
                         HttpExposure("/dicom-web/studies", *dicomweb))


PROTECTED_REST = [("/system", 401, None), ("/patients", 401, None), ("/studies", 401, None)]


@pytest.mark.parametrize(("rest", "status"), [
    (PROTECTED_REST, Status.PASS),
    ([("/system", 403, None), ("/patients", 403, None), ("/studies", 302, None)], Status.PASS),
    ([("/system", 200, None), ("/patients", 200, 2), ("/studies", 200, 3)], Status.FAIL),
    ([("/system", 401, None), ("/patients", 200, 0), ("/studies", 401, None)], Status.FAIL),
    ([("/system", 404, None), ("/patients", 404, None), ("/studies", 404, None)],
     Status.NOT_APPLICABLE),
    ([("/system", 500, None), ("/patients", 401, None), ("/studies", 401, None)], Status.MANUAL),
])
def test_rest_verdicts(rest: list[tuple[str, int, int | None]], status: Status) -> None:
    assert rest_unauthenticated(_http(rest), NoParams()).status is status


def test_rest_failure_counts_entries() -> None:
    finding = rest_unauthenticated(
        _http([("/system", 200, None), ("/patients", 200, 2), ("/studies", 200, 3)]), NoParams())
    assert finding.summary == ("the PACS REST API answers without credentials: /system (HTTP "
                               "200), /patients (HTTP 200, 2 entries), /studies (HTTP 200, "
                               "3 entries)")
    assert finding.details == {"base_url": "http://10.0.0.5:8042"}


def test_a_capped_count_is_a_lower_bound() -> None:
    facts = PacsHttpFacts("http://10.0.0.5:8042", [HttpExposure("/studies", 200, 1000, True)],
                          HttpExposure("/dicom-web/studies", 401, None))
    assert rest_unauthenticated(facts, NoParams()).summary.endswith(
        "/studies (HTTP 200, more than 1000 entries)")


@pytest.mark.parametrize(("dicomweb", "status"), [
    ((401, None), Status.PASS),
    ((200, 5), Status.FAIL),
    ((204, 0), Status.FAIL),
    ((404, None), Status.NOT_APPLICABLE),
])
def test_dicomweb_verdicts(dicomweb: tuple[int, int | None], status: Status) -> None:
    assert dicomweb_unauthenticated(_http(PROTECTED_REST, dicomweb), NoParams()).status is status


@pytest.mark.parametrize(("status", "verdict"), [
    (200, Status.FAIL), (204, Status.FAIL), (400, Status.FAIL), (415, Status.FAIL),
    (409, Status.FAIL), (401, Status.PASS), (403, Status.PASS), (405, Status.PASS),
    (501, Status.PASS), (404, Status.NOT_APPLICABLE), (500, Status.MANUAL),
    (302, Status.MANUAL)])
def test_stow_verdicts(status: int, verdict: Status) -> None:
    finding = dicomweb_anonymous_store(
        PacsStowFacts("http://10.0.0.5:8042", "/dicom-web/studies", status), NoParams())
    assert finding.status is verdict, finding.summary
