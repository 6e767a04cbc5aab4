"""FHIR: patient data must not be searchable without a token."""

from __future__ import annotations

from dataclasses import asdict
from enum import StrEnum

from audit.facts.fhir import FhirFacts, FhirSearchAnswer, fhir_anonymous_search
from audit.registry import Finding, NoParams, check, failed, manual, passed
from audit.vocabulary import Role


class Access(StrEnum):
    """What an HTTP status says about a request made without credentials."""

    OPEN = "open"              # 2xx: it answered
    PROTECTED = "protected"    # 401/403, or a redirect (to a login page: never followed)
    ABSENT = "absent"          # 404/405/501: nothing there
    UNCLEAR = "unclear"        # anything else (5xx, 400...): an assessor looks


def http_access(status: int) -> Access:
    """Classify the status of an anonymous request."""
    if 200 <= status < 300:
        return Access.OPEN
    if status in (401, 403) or 300 <= status < 400:
        return Access.PROTECTED
    if status in (404, 405, 501):
        return Access.ABSENT
    return Access.UNCLEAR


def _search_verdict(answer: FhirSearchAnswer) -> Access:
    access = http_access(answer.search_status)
    if access is Access.OPEN and not answer.bundle:
        return Access.UNCLEAR  # 200 but no Bundle: a login page? an assessor decides
    return access


def _described(answer: FhirSearchAnswer) -> str:
    if answer.bundle:
        count = answer.total if answer.total is not None else answer.entries
        return f"{answer.base_url}: Patient search answered a Bundle (total {count})"
    return f"{answer.base_url}: Patient search answered HTTP {answer.search_status}"


@check(id="fhir.unauthenticated_search", title="FHIR patient search requires a token",
       applies_to=Role.FHIR, probe=fhir_anonymous_search, params=NoParams)
def unauthenticated_search(facts: FhirFacts, p: NoParams) -> Finding:
    """A FHIR server that answers `GET [base]/Patient` without a token hands every patient's
    demographics to anyone on the network. Require OAuth2/SMART bearer tokens on every
    resource endpoint (`/metadata`, the capability statement, may stay public). The probe
    asks for one Patient (`_count=1`) and keeps only the counts, never the resource. FHIR
    bases: the target's `urls`, else its services of kind `fhir` (path `/`)."""
    observed = [asdict(answer) for answer in facts.answers]
    verdicts = [(_search_verdict(answer), answer) for answer in facts.answers]
    expected = "HTTP 401 or 403 without a token"
    open_bases = [_described(answer) for verdict, answer in verdicts if verdict is Access.OPEN]
    if open_bases:
        return failed("; ".join(open_bases) + " without a token", observed=observed,
                      expected=expected)
    unclear = [_described(answer) for verdict, answer in verdicts if verdict is not Access.PROTECTED]
    if unclear:
        return manual("; ".join(unclear) + ": not a FHIR answer an auditor can judge",
                      observed=observed, expected=expected)
    return passed("Patient search refused without a token", observed=observed,
                  expected=expected)


@check(id="fhir.plaintext", title="FHIR is served only over TLS", applies_to=Role.FHIR,
       probe=fhir_anonymous_search, params=NoParams)
def plaintext(facts: FhirFacts, p: NoParams) -> Finding:
    """A FHIR API over plain HTTP carries patient resources and the bearer tokens that
    guard them in clear, readable by anyone on the path. Serve it only over HTTPS; a plain
    port may answer nothing but a redirect to https://. Uses the answers of the search
    probe: no second request."""
    observed = [f"{answer.base_url}: HTTP {answer.search_status}"
                + (f" to {answer.redirect}" if answer.redirect else "") for answer in facts.answers]
    clear = [line for answer, line in zip(facts.answers, observed, strict=True)
             if answer.base_url.startswith("http://")
             and not (answer.redirect or "").startswith("https://")]
    expected = "https:// bases only (plain HTTP answering only redirects to https://)"
    if clear:
        return failed(f"FHIR in clear: {'; '.join(clear)}", observed=observed, expected=expected)
    return passed(f"{len(facts.answers)} FHIR base(s) over TLS or redirecting to it",
                  observed=observed, expected=expected)
