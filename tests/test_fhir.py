"""fhir.unauthenticated_search on hand-built facts, and the Bundle counting it relies on."""

from __future__ import annotations

import pytest

from audit.facts.fhir import FhirFacts, FhirSearchAnswer, bundle_counts
from audit.facts.net import HttpAnswer
from audit.registry import NoParams
from audit.vocabulary import Status
from checks.fhir import Access, http_access, unauthenticated_search

BASE = "https://fhir.clinic.test/r4"


def _answer(status: int, bundle: bool = False, total: int | None = None,
            entries: int | None = None) -> FhirSearchAnswer:
    return FhirSearchAnswer(BASE, 200, status, bundle, total, entries)


@pytest.mark.parametrize(("answer", "status"), [
    (_answer(401), Status.PASS),
    (_answer(403), Status.PASS),
    (_answer(302), Status.PASS),
    (_answer(200, bundle=True, total=2, entries=1), Status.FAIL),
    (_answer(200, bundle=True, total=None, entries=0), Status.FAIL),
    (_answer(200), Status.MANUAL),
    (_answer(404), Status.MANUAL),
    (_answer(500), Status.MANUAL),
])
def test_search_verdicts(answer: FhirSearchAnswer, status: Status) -> None:
    assert unauthenticated_search(FhirFacts([answer]), NoParams()).status is status


def test_failure_names_the_base_and_the_count() -> None:
    finding = unauthenticated_search(FhirFacts([_answer(401), _answer(200, True, 7, 1)]),
                                     NoParams())
    assert finding.summary == (f"{BASE}: Patient search answered a Bundle (total 7) "
                               "without a token")
    assert finding.observed[1] == {"base_url": BASE, "metadata_status": 200,
                                   "search_status": 200, "bundle": True, "total": 7,
                                   "entries": 1}


@pytest.mark.parametrize(("document", "counts"), [
    ({"resourceType": "Bundle", "total": 3, "entry": [{}, {}]}, (True, 3, 2)),
    ({"resourceType": "Bundle"}, (True, None, 0)),
    ({"resourceType": "Bundle", "total": True, "entry": "x"}, (True, None, None)),
    ({"resourceType": "OperationOutcome"}, (False, None, None)),
    ([1, 2], (False, None, None)),
    (None, (False, None, None)),
])
def test_bundle_counts(document: object, counts: tuple[bool, int | None, int | None]) -> None:
    assert bundle_counts(document) == counts


def test_a_cut_body_is_not_parsed() -> None:
    def answer(body: bytes, truncated: bool) -> HttpAnswer:
        return HttpAnswer("http://h/Patient", 200, {"content-type": "application/json"}, body,
                          truncated, 0.01, False)

    assert answer(b'{"resourceType": "Bun', True).json() is None
    assert answer(b"<html>", False).json() is None
    assert answer(b'{"resourceType": "Bundle"}', False).json() == {"resourceType": "Bundle"}


@pytest.mark.parametrize(("status", "access"), [
    (200, Access.OPEN), (204, Access.OPEN), (301, Access.PROTECTED), (401, Access.PROTECTED),
    (403, Access.PROTECTED), (404, Access.ABSENT), (405, Access.ABSENT), (400, Access.UNCLEAR),
    (503, Access.UNCLEAR),
])
def test_http_access(status: int, access: Access) -> None:
    assert http_access(status) is access
