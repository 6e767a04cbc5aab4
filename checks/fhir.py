"""FHIR: patient data must not be searchable without a token."""

from __future__ import annotations

from dataclasses import asdict
from enum import StrEnum

from audit.facts.fhir import (
    FhirFacts,
    FhirSearchAnswer,
    FhirSecurityFacts,
    fhir_anonymous_search,
    fhir_security,
)
from audit.messages import Message, listed, says
from audit.registry import Finding, NoParams, check, failed, failed_on, manual, passed
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


def search_access(status: int, bundle: bool) -> Access:
    """Classify an anonymous FHIR search by its status and whether it answered a Bundle."""
    access = http_access(status)
    if access is Access.OPEN and not bundle:
        return Access.UNCLEAR  # 200 but no Bundle: a login page? an assessor decides
    return access


def _described(answer: FhirSearchAnswer) -> Message:
    if answer.bundle:
        count = answer.total if answer.total is not None else answer.entries
        return says("{base_url}: Patient search answered a Bundle (total {count})",
                    base_url=answer.base_url, count=str(count))
    return says("{base_url}: Patient search answered HTTP {status}", base_url=answer.base_url,
                status=answer.search_status)


@check(id="fhir.unauthenticated_search", title="FHIR patient search requires a token",
       applies_to=Role.FHIR, probe=fhir_anonymous_search, params=NoParams)
def unauthenticated_search(facts: FhirFacts, p: NoParams) -> Finding:
    """A FHIR server that answers `GET [base]/Patient` without a token hands every patient's
    demographics to anyone on the network. Require OAuth2/SMART bearer tokens on every
    resource endpoint (`/metadata`, the capability statement, may stay public). The probe
    asks for one Patient (`_count=1`) and keeps only the counts, never the resource. FHIR
    bases: the target's `urls`, else its services of kind `fhir` (path `/`)."""
    observed = [asdict(answer) for answer in facts.answers]
    verdicts = [(search_access(answer.search_status, answer.bundle), answer)
                for answer in facts.answers]
    expected = "HTTP 401 or 403 without a token"
    open_bases = [_described(answer) for verdict, answer in verdicts if verdict is Access.OPEN]
    if open_bases:
        return failed(says("{answers} without a token", answers=listed(open_bases)),
                      observed=observed, expected=expected)
    unclear = [_described(answer) for verdict, answer in verdicts if verdict is not Access.PROTECTED]
    if unclear:
        return manual(says("{answers}: not a FHIR answer an auditor can judge",
                           answers=listed(unclear)), observed=observed, expected=expected)
    return passed(says("Patient search refused without a token"), observed=observed,
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
    clear = [_answered(answer) for answer in facts.answers
             if answer.base_url.startswith("http://")
             and not (answer.redirect or "").startswith("https://")]
    expected = "https:// bases only (plain HTTP answering only redirects to https://)"
    if clear:
        return failed(says("FHIR in clear: {bases}", bases=listed(clear)), observed=observed,
                      expected=expected)
    return passed(says("{count} FHIR base(s) over TLS or redirecting to it",
                       count=len(facts.answers)), observed=observed, expected=expected)


def _answered(answer: FhirSearchAnswer) -> Message:
    """A base's answer to the search, as the evidence line of `plaintext` says it."""
    if answer.redirect:
        return says("{base_url}: HTTP {status} to {redirect}", base_url=answer.base_url,
                    status=answer.search_status, redirect=answer.redirect)
    return says("{base_url}: HTTP {status}", base_url=answer.base_url,
                status=answer.search_status)


@check(id="fhir.unauthenticated_resources", title="FHIR clinical resources cannot be searched "
       "without a token", applies_to=Role.FHIR, probe=fhir_security, params=NoParams)
def unauthenticated_resources(facts: FhirSecurityFacts, p: NoParams) -> Finding:
    """Observations, encounters, diagnostic reports, conditions, prescriptions, documents and
    immunisations are patient data as much as the Patient resource: a server that guards
    Patient but answers `GET [base]/Observation` without a token leaks results anyway. The
    probe asks each type with `_summary=count`, so no resource is fetched, and keeps the
    count."""
    observed = [asdict(base) for base in facts.bases]
    expected = "HTTP 401 or 403 (or 404 where the type is not served) without a token"
    open_ = [says("{base_url}: {resource} (total {total}) searchable without a token",
                  base_url=base.base_url, resource=count.resource, total=str(count.total))
             for base in facts.bases for count in base.resources
             if search_access(count.status, count.bundle) is Access.OPEN]
    if open_:
        return failed_on(open_, observed=observed, expected=expected)
    unclear = [says("{base_url}: {resource} answered HTTP {status}", base_url=base.base_url,
                    resource=count.resource, status=count.status)
               for base in facts.bases for count in base.resources
               if search_access(count.status, count.bundle) is Access.UNCLEAR]
    if unclear:
        return manual(says("{answers}: not a FHIR answer an auditor can judge",
                           answers=listed(unclear)), observed=observed, expected=expected)
    return passed(says("clinical resource searches are refused without a token"),
                  observed=observed, expected=expected)


@check(id="fhir.smart_authorization", title="FHIR advertises its SMART on FHIR / OAuth "
       "authorisation", applies_to=Role.FHIR, probe=fhir_security, params=NoParams)
def smart_authorization(facts: FhirSecurityFacts, p: NoParams) -> Finding:
    """Clients of a FHIR server learn how to get a token from its CapabilityStatement
    (`rest.security`: the SMART-on-FHIR service, the oauth-uris extension) and from
    `/.well-known/smart-configuration` (authorization and token endpoints). A server that
    advertises neither either hands out tokens some other way, which an assessor must
    confirm, or has no authorisation at all. `cors` as declared is in the evidence."""
    observed = [{"base_url": base.base_url, "metadata_status": base.metadata_status,
                 "oauth_in_capability": base.oauth_in_capability, "cors": base.cors,
                 "smart_configuration_status": base.smart_status,
                 "smart_endpoints": base.smart_endpoints} for base in facts.bases]
    expected = "SMART/OAuth in the CapabilityStatement or a SMART configuration with endpoints"
    silent = [base.base_url for base in facts.bases
              if not (base.oauth_in_capability or base.smart_endpoints)]
    if silent:
        return manual(says("{bases}: no SMART on FHIR or OAuth authorisation advertised; an "
                           "assessor confirms how tokens are issued", bases=", ".join(silent)),
                      observed=observed, expected=expected)
    return passed(says("{count} FHIR base(s) advertise SMART/OAuth authorisation",
                       count=len(facts.bases)), observed=observed, expected=expected)
