"""fhir.unauthenticated_search and fhir.plaintext on hand-built facts, and the Bundle counting
they rely on."""

from __future__ import annotations

import pytest

from audit.facts.fhir import FhirFacts, FhirSearchAnswer, bundle_counts, capability_security
from audit.facts.net import HttpAnswer
from audit.registry import NoParams
from audit.vocabulary import Status
from checks.fhir import Access, http_access, plaintext, unauthenticated_search

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
                                   "entries": 1, "redirect": None}


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


def test_plain_http_fails_unless_it_only_redirects_to_https() -> None:
    def facts(base: str, status: int, redirect: str | None = None) -> FhirFacts:
        return FhirFacts([FhirSearchAnswer(base, None, status, False, None, None, redirect)])

    assert plaintext(facts(BASE, 401), NoParams()).status is Status.PASS
    refused_in_clear = plaintext(facts("http://fhir.clinic.test/r4", 401), NoParams())
    assert refused_in_clear.status is Status.FAIL      # the token would cross in clear
    assert refused_in_clear.summary == "FHIR in clear: http://fhir.clinic.test/r4: HTTP 401"
    redirected = facts("http://fhir.clinic.test/r4", 301, "https://fhir.clinic.test/r4/Patient")
    assert plaintext(redirected, NoParams()).status is Status.PASS
    elsewhere = facts("http://fhir.clinic.test/r4", 302, "http://login.clinic.test/")
    assert plaintext(elsewhere, NoParams()).status is Status.FAIL


@pytest.mark.parametrize(("document", "security"), [
    ({"resourceType": "CapabilityStatement", "rest": [{"security": {
        "cors": True, "service": [{"coding": [{"code": "SMART-on-FHIR"}]}]}}]}, (True, True)),
    ({"resourceType": "CapabilityStatement", "rest": [{"security": {"extension": [
        {"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"}]}}]},
     (True, None)),
    ({"resourceType": "CapabilityStatement", "rest": [{"mode": "server"}]}, (False, None)),
    ({"resourceType": "CapabilityStatement", "rest": "not a list of objects"}, (False, None)),
    ({"resourceType": "OperationOutcome"}, (False, None)),
    (None, (False, None)),
])
def test_capability_security(document: object, security: tuple[bool, bool | None]) -> None:
    assert capability_security(document) == security
