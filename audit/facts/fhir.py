"""FHIR facts: how a server answers a patient search made without a token.

Requests go through the network layer's `HttpClient` (audit.facts.net), unverified: this
probe tests access control, not certificates (the TLS checks judge those).
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.errors import FactUnavailable
from audit.facts.context import TargetContext
from audit.facts.net import HttpClient, access_probe_client, http_origin
from audit.facts.ports import target_address
from audit.facts.services import services_of_kind
from audit.vocabulary import Reason

MAX_BODY_BYTES = 1024 * 1024
FHIR_SERVICE_KIND = "fhir"
FHIR_JSON = "application/fhir+json, application/json;q=0.9"


@dataclass(frozen=True)
class FhirSearchAnswer:
    """How one FHIR base answered `/metadata` and `Patient?_count=1` without a token.

    Only counts are kept: never a name, an identifier or any other part of a resource.
    """

    base_url: str
    metadata_status: int | None
    search_status: int
    bundle: bool
    total: int | None
    entries: int | None
    redirect: str | None = None     # where a 3xx answer to the search points (capped)


@dataclass(frozen=True)
class FhirFacts:
    """The answers of every FHIR base of a target."""

    answers: list[FhirSearchAnswer]


def fhir_base_urls(context: TargetContext) -> list[str]:
    """The target's `urls`, else one base per service of kind `fhir`, else one per web
    service declared or found by the scan (path `/`)."""
    if context.target.urls:
        return list(context.target.urls)
    services = (services_of_kind(context, FHIR_SERVICE_KIND)
                or services_of_kind(context, "http", "https"))
    if not services:
        raise FactUnavailable(Reason.NOT_FOUND, f"target {context.target.name!r} names no FHIR "
                              f"base and the scan found no web service: give it `urls` or a "
                              f"service of kind '{FHIR_SERVICE_KIND}'")
    address = target_address(context)
    return [http_origin(address, service) + "/" for service in services]


def fhir_anonymous_search(context: TargetContext) -> FhirFacts:
    """Ask each FHIR base for its metadata and for one Patient, without a token."""
    with access_probe_client(context) as client:
        return FhirFacts([_search_one(client, base) for base in fhir_base_urls(context)])


def _search_one(client: HttpClient, base_url: str) -> FhirSearchAnswer:
    root = base_url.rstrip("/")
    search = client.get(f"{root}/Patient?_count=1", MAX_BODY_BYTES, accept=FHIR_JSON)
    try:
        metadata_status: int | None = client.get(f"{root}/metadata", MAX_BODY_BYTES,
                                                 accept=FHIR_JSON).status
    except FactUnavailable:
        metadata_status = None  # only context for the report: the search decides
    is_bundle, total, entries = bundle_counts(search.json())
    location = search.headers.get("location") if 300 <= search.status < 400 else None
    return FhirSearchAnswer(base_url=base_url, metadata_status=metadata_status,
                            search_status=search.status, bundle=is_bundle, total=total,
                            entries=entries, redirect=location[:200] if location else None)


def bundle_counts(document: object) -> tuple[bool, int | None, int | None]:
    """Whether a JSON document is a FHIR Bundle, its `total` and its number of entries."""
    if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
        return False, None, None
    total = document.get("total")
    entries = document.get("entry", [])
    return (True, total if isinstance(total, int) and not isinstance(total, bool) else None,
            len(entries) if isinstance(entries, list) else None)
