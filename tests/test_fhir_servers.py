"""The FHIR checks against the FHIR stand-in: open over plain HTTP with no authorisation
advertised (weak), and token-only over HTTPS advertising SMART on FHIR (hardened)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from audit.model.inventory import Service, Target
from audit.vocabulary import Role, Status
from tests.servers.base import ServerProcess
from tests.servers.fhir import SYNTHETIC_PATIENTS, start_fhir
from tests.servers.hostile import silent_listener
from tests.servers.mllp import ca_signed_cert, run_check_within, running
from tests.servers.nginx import run_check

pytestmark = pytest.mark.servers

WEAK_ADDRESS, HARDENED_ADDRESS, SILENT_ADDRESS = "127.62.0.30", "127.62.0.31", "127.62.0.32"
FHIR_PORT = 8080


@pytest.fixture(scope="module")
def fhir_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    """A plain-HTTP open FHIR stand-in and an HTTPS token-only one, stopped by PID."""
    work = tmp_path_factory.mktemp("fhir")
    cert = ca_signed_cert(work / "pki", "fhir", HARDENED_ADDRESS)
    token_file = work / "token"
    token_file.write_text("test-only-fhir-token\n")
    with running(
            weak=lambda: start_fhir("fhir-weak", WEAK_ADDRESS, FHIR_PORT, work / "weak"),
            hardened=lambda: start_fhir("fhir-hardened", HARDENED_ADDRESS, FHIR_PORT,
                                        work / "hardened", token_file, cert.cert,
                                        cert.key)) as servers:
        yield servers


def test_open_patient_search_fails_with_counts_only(
        fhir_servers: dict[str, ServerProcess]) -> None:
    target = Target(name="fhir-weak", address=WEAK_ADDRESS, roles=[Role.FHIR],
                    urls=[f"http://{WEAK_ADDRESS}:{FHIR_PORT}/"])
    result = run_check("fhir.unauthenticated_search", target)
    assert result.status is Status.FAIL, result.summary
    [observed] = result.evidence.observed
    assert observed == {"base_url": f"http://{WEAK_ADDRESS}:{FHIR_PORT}/", "metadata_status": 200,
                        "search_status": 200, "bundle": True,
                        "total": len(SYNTHETIC_PATIENTS), "entries": 1, "redirect": None}
    text = json.dumps(result.model_dump(mode="json"))
    assert "Alpha" not in text and "fake-1" not in text


def test_token_only_search_passes_with_public_metadata(
        fhir_servers: dict[str, ServerProcess]) -> None:
    target = Target(name="fhir-hardened", address=HARDENED_ADDRESS, roles=[Role.FHIR],
                    services=[Service(kind="fhir", port=FHIR_PORT, tls=True)])
    result = run_check("fhir.unauthenticated_search", target)
    assert result.status is Status.PASS, result.summary
    [observed] = result.evidence.observed
    assert observed["search_status"] == 401 and observed["metadata_status"] == 200
    assert observed["base_url"].startswith("https://")


def test_fhir_in_clear_fails_and_over_tls_passes(fhir_servers: dict[str, ServerProcess]) -> None:
    weak = Target(name="fhir-weak", address=WEAK_ADDRESS, roles=[Role.FHIR],
                  services=[Service(kind="fhir", port=FHIR_PORT)])
    clear = run_check("fhir.plaintext", weak)
    assert clear.status is Status.FAIL
    assert clear.summary == f"FHIR in clear: http://{WEAK_ADDRESS}:{FHIR_PORT}/: HTTP 200"
    hardened = Target(name="fhir-hardened", address=HARDENED_ADDRESS, roles=[Role.FHIR],
                      services=[Service(kind="fhir", port=FHIR_PORT, tls=True)])
    assert run_check("fhir.plaintext", hardened).status is Status.PASS


def _weak() -> Target:
    return Target(name="fhir-weak", address=WEAK_ADDRESS, roles=[Role.FHIR],
                  urls=[f"http://{WEAK_ADDRESS}:{FHIR_PORT}/"])


def _hardened() -> Target:
    return Target(name="fhir-hardened", address=HARDENED_ADDRESS, roles=[Role.FHIR],
                  services=[Service(kind="fhir", port=FHIR_PORT, tls=True)])


def test_clinical_resources_are_counted_never_fetched(
        fhir_servers: dict[str, ServerProcess]) -> None:
    weak = run_check("fhir.unauthenticated_resources", _weak())
    assert weak.status is Status.FAIL, weak.summary
    assert weak.summary.startswith(f"http://{WEAK_ADDRESS}:{FHIR_PORT}/: Observation (total 2) "
                                   "searchable without a token (+6 more)")
    assert "fake-obs" not in json.dumps(weak.model_dump(mode="json"))
    hardened = run_check("fhir.unauthenticated_resources", _hardened())
    assert hardened.status is Status.PASS, hardened.summary
    [base] = hardened.evidence.observed
    assert {count["status"] for count in base["resources"]} == {401}


def test_smart_authorisation_is_read_from_the_capability_and_the_configuration(
        fhir_servers: dict[str, ServerProcess]) -> None:
    hardened = run_check("fhir.smart_authorization", _hardened())
    assert hardened.status is Status.PASS, hardened.summary
    [base] = hardened.evidence.observed
    assert base["oauth_in_capability"] is True and base["smart_endpoints"] is True
    assert base["cors"] is False
    weak = run_check("fhir.smart_authorization", _weak())
    assert weak.status is Status.MANUAL
    assert "no SMART on FHIR or OAuth authorisation advertised" in weak.summary


def test_a_target_without_a_fhir_base_is_an_error() -> None:
    target = Target(name="fhir-unnamed", address=SILENT_ADDRESS, roles=[Role.FHIR])
    result = run_check("fhir.unauthenticated_search", target)
    assert result.status is Status.ERROR
    assert result.error is not None and "urls" in result.error.message


def test_a_silent_listener_costs_no_more_than_the_timeout() -> None:
    with silent_listener(SILENT_ADDRESS) as port:
        target = Target(name="fhir-silent", address=SILENT_ADDRESS, roles=[Role.FHIR],
                        urls=[f"https://{SILENT_ADDRESS}:{port}/fhir"])
        result = run_check_within("fhir.unauthenticated_search", target, timeout=4.0)
    assert result.status is Status.ERROR
    assert result.error is not None and result.error.type == "timeout"
