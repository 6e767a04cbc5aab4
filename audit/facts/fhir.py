"""FHIR facts: how a server answers a patient search made without a token.

Requests go through the network layer's `HttpClient` (audit.facts.net), unverified: this
probe tests access control, not certificates (the TLS checks judge those).
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.errors import FactUnavailable
from audit.facts.context import TargetContext
from audit.facts.net import HttpAnswer, HttpClient, access_probe_client, http_origin
from audit.facts.ports import target_address
from audit.facts.services import services_of_kind
from audit.messages import says
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
        raise FactUnavailable(Reason.NOT_FOUND, says(
            "target {target} names no FHIR base and the scan found no web service: give it "
            "`urls` or a service of kind '{kind}'", target=repr(context.target.name),
            kind=FHIR_SERVICE_KIND))
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


# Resource types that hold patient data besides Patient, asked for a count only.
CLINICAL_RESOURCES = ("Observation", "Encounter", "DiagnosticReport", "Condition",
                      "MedicationRequest", "DocumentReference", "Immunization")
SMART_CONFIGURATION = "/.well-known/smart-configuration"
OAUTH_URIS_EXTENSION = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
OAUTH_SERVICE_CODES = frozenset({"smart-on-fhir", "oauth"})


@dataclass(frozen=True)
class ResourceCount:
    """How a search for one resource type, `_summary=count`, answered without a token."""

    resource: str
    status: int
    bundle: bool
    total: int | None


@dataclass(frozen=True)
class FhirSecurity:
    """What one FHIR base says of its own authorisation, and what it gives a stranger."""

    base_url: str
    metadata_status: int | None
    oauth_in_capability: bool       # rest.security: a SMART/OAuth service or the oauth-uris
    cors: bool | None               # rest.security.cors, as the statement says
    smart_status: int | None        # /.well-known/smart-configuration
    smart_endpoints: bool           # it names authorization and token endpoints
    resources: tuple[ResourceCount, ...]


@dataclass(frozen=True)
class FhirSecurityFacts:
    """The security of every FHIR base of a target."""

    bases: list[FhirSecurity]


def fhir_security(context: TargetContext) -> FhirSecurityFacts:
    """Read each base's capability statement and SMART configuration, and count (never
    fetch) the clinical resources it answers without a token."""
    with access_probe_client(context) as client:
        return FhirSecurityFacts([_security_of(client, base)
                                  for base in fhir_base_urls(context)])


def _security_of(client: HttpClient, base_url: str) -> FhirSecurity:
    root = base_url.rstrip("/")
    resources = tuple(_count(client, root, resource) for resource in CLINICAL_RESOURCES)
    metadata = _optional_get(client, f"{root}/metadata")
    smart = _optional_get(client, f"{root}{SMART_CONFIGURATION}")
    oauth, cors = capability_security(metadata.json() if metadata else None)
    configuration = smart.json() if smart and smart.status == 200 else None
    endpoints = isinstance(configuration, dict) and all(
        isinstance(configuration.get(key), str) for key in ("authorization_endpoint",
                                                            "token_endpoint"))
    return FhirSecurity(base_url, metadata.status if metadata else None, oauth, cors,
                        smart.status if smart else None, endpoints, resources)


def _optional_get(client: HttpClient, url: str) -> HttpAnswer | None:
    try:
        return client.get(url, MAX_BODY_BYTES, accept=FHIR_JSON)
    except FactUnavailable:
        return None


def _count(client: HttpClient, root: str, resource: str) -> ResourceCount:
    answer = client.get(f"{root}/{resource}?_summary=count", MAX_BODY_BYTES, accept=FHIR_JSON)
    is_bundle, total, _ = bundle_counts(answer.json())
    return ResourceCount(resource, answer.status, is_bundle, total)


def capability_security(document: object) -> tuple[bool, bool | None]:
    """(a SMART/OAuth service or the oauth-uris extension is declared, `cors`) from a
    CapabilityStatement's rest.security."""
    if not isinstance(document, dict) or document.get("resourceType") != "CapabilityStatement":
        return False, None
    oauth, cors = False, None
    for rest in document.get("rest") or []:
        security = rest.get("security") if isinstance(rest, dict) else None
        if not isinstance(security, dict):
            continue
        if isinstance(security.get("cors"), bool):
            cors = bool(cors) or security["cors"]
        codes = {str(coding.get("code", "")).lower()
                 for service in security.get("service") or [] if isinstance(service, dict)
                 for coding in service.get("coding") or [] if isinstance(coding, dict)}
        urls = {extension.get("url") for extension in security.get("extension") or []
                if isinstance(extension, dict)}
        oauth = oauth or bool(codes & OAUTH_SERVICE_CODES) or OAUTH_URIS_EXTENSION in urls
    return oauth, cors
