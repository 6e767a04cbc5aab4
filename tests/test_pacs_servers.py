"""PACS checks against real Orthanc instances (weak and hardened) holding synthetic studies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit.model.inventory import Service, Target
from audit.model.results import Result
from audit.run import RunRequest, execute, prepare, results_json
from audit.vocabulary import Role, Status
from tests.servers.base import ServerProcess
from tests.servers.hostile import silent_listener
from tests.servers.mllp import run_check_within, running
from tests.servers.nginx import run_check, start_tls_proxy
from tests.servers.orthanc import (
    ECHO_ONLY,
    HARDENED,
    SYNTHETIC_PATIENTS,
    WEAK,
    inventory_target_yaml,
    pacs_cert,
    pacs_target,
    start_orthanc,
)

pytestmark = pytest.mark.servers

WEAK_ADDRESS, HARDENED_ADDRESS, SILENT_ADDRESS = "127.62.0.10", "127.62.0.11", "127.62.0.12"
ECHO_ONLY_ADDRESS = "127.62.0.13"


@pytest.fixture(scope="module")
def orthancs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    """The Orthanc variants, started once for the module and stopped by PID."""
    work = tmp_path_factory.mktemp("orthanc")
    with running(weak=lambda: start_orthanc(WEAK, WEAK_ADDRESS, work / "weak"),
                 hardened=lambda: start_orthanc(HARDENED, HARDENED_ADDRESS, work / "hardened"),
                 echo_only=lambda: start_orthanc(ECHO_ONLY, ECHO_ONLY_ADDRESS, work / "echo",
                                                 dicomweb=False)) as servers:
        yield servers


@pytest.fixture(scope="module")
def echo_only_pacs(orthancs: dict[str, ServerProcess]) -> Target:
    """A hardened Orthanc that still answers C-ECHO from anyone."""
    return pacs_target("pacs-echo-only", orthancs["echo_only"])


@pytest.fixture(scope="module")
def weak_pacs(orthancs: dict[str, ServerProcess]) -> Target:
    """The weak Orthanc as an inventory target."""
    return pacs_target("pacs-weak", orthancs["weak"])


@pytest.fixture(scope="module")
def hardened_pacs(orthancs: dict[str, ServerProcess]) -> Target:
    """The hardened Orthanc as an inventory target."""
    return pacs_target("pacs-hardened", orthancs["hardened"])


def _assert_no_patient_data(result: Result) -> None:
    text = json.dumps(result.model_dump(mode="json"))
    for name, patient_id in SYNTHETIC_PATIENTS:
        assert name not in text and name.replace("^", " ") not in text
        assert patient_id not in text


def test_unknown_ae_may_query_the_weak_pacs(weak_pacs: Target) -> None:
    result = run_check("pacs.dicom_unknown_ae", weak_pacs)
    assert result.status is Status.FAIL, result.summary
    [observed] = result.evidence.observed
    assert observed["outcome"] == "accepted"
    assert observed["find_outcome"] == "answered"
    assert observed["study_count"] == len(SYNTHETIC_PATIENTS)
    assert observed["calling_ae"] == "MIS-AUDIT-PROBE"
    assert "2 studies" in result.summary
    _assert_no_patient_data(result)


def test_unknown_ae_is_rejected_by_the_hardened_pacs(hardened_pacs: Target) -> None:
    result = run_check("pacs.dicom_unknown_ae", hardened_pacs)
    assert result.status is Status.PASS, result.summary
    [observed] = result.evidence.observed
    assert observed["outcome"] == "rejected" and observed["tls"] is True
    assert observed["rejection_reason"] == "Calling AE title not recognised"


def test_a_dicom_tls_port_declared_without_tls_is_found_out(
        orthancs: dict[str, ServerProcess]) -> None:
    declared = pacs_target("pacs-tls-undeclared", orthancs["hardened"])
    dicom, http = declared.services
    target = declared.model_copy(update={"services": [
        dicom.model_copy(update={"tls": None}), http]})
    result = run_check("pacs.dicom_unknown_ae", target)
    assert result.status is Status.PASS, result.summary
    [observed] = result.evidence.observed
    assert observed["tls"] is True and observed["outcome"] == "rejected"


def test_the_weak_pacs_grants_a_stranger_retrieval_and_storage(weak_pacs: Target) -> None:
    result = run_check("pacs.dicom_services_granted", weak_pacs)
    assert result.status is Status.FAIL, result.summary
    [observed] = result.evidence.observed
    assert observed["granted"] == ["query (patient root C-FIND)", "retrieve (C-MOVE)",
                                   "retrieve (C-GET)", "storage (C-STORE)"]
    assert "worklist" not in result.summary, "Debian's Orthanc has no worklist plugin loaded"
    assert observed["implementation"].startswith("1.2.276.0.7230010.3")   # DCMTK's root
    _assert_no_patient_data(result)


def test_the_hardened_pacs_grants_a_stranger_nothing(hardened_pacs: Target) -> None:
    result = run_check("pacs.dicom_services_granted", hardened_pacs)
    assert result.status is Status.PASS, result.summary
    [observed] = result.evidence.observed
    assert observed["outcome"] == "rejected" and observed["granted"] == []


def test_negotiation_alone_is_not_taken_for_permission(echo_only_pacs: Target) -> None:
    result = run_check("pacs.dicom_services_granted", echo_only_pacs)
    assert result.status is Status.MANUAL, result.summary
    assert "refused the study query it also accepted" in result.summary


def test_vendor_default_logins_are_tried_only_where_opted_in(
        weak_pacs: Target, hardened_pacs: Target, echo_only_pacs: Target) -> None:
    def opted_in(target: Target) -> Target:
        return target.model_copy(update={"vendor_defaults": True})
    assert run_check("pacs.vendor_default_credentials", echo_only_pacs).status \
        is Status.NOT_APPLICABLE
    left_in = run_check("pacs.vendor_default_credentials", opted_in(echo_only_pacs))
    assert left_in.status is Status.FAIL, left_in.summary
    assert "the Orthanc default login 'orthanc' is accepted" in left_in.summary
    assert left_in.evidence.observed["anonymous_status"] == 401
    assert "orthanc:orthanc" not in json.dumps(left_in.model_dump(mode="json"))
    refused = run_check("pacs.vendor_default_credentials", opted_in(hardened_pacs))
    assert refused.status is Status.PASS, refused.summary
    anonymous = run_check("pacs.vendor_default_credentials", opted_in(weak_pacs))
    assert anonymous.status is Status.NOT_APPLICABLE and "without a login" in anonymous.summary


@pytest.fixture()
def cors_reflecting_front(orthancs: dict[str, ServerProcess]) -> Iterator[Target]:
    """The hardened Orthanc behind an nginx that echoes any Origin with credentials."""
    pacs = orthancs["hardened"]
    port = int(str(pacs.extra["http_port"])) + 200
    front = start_tls_proxy(pacs.workdir / "cors-front", pacs.address, port,
                            f"{pacs.address}:{pacs.extra['http_port']}",
                            pacs_cert(pacs.workdir, pacs.address), reflect_cors=True)
    try:
        yield Target(name="pacs-cors", address=pacs.address, roles=[Role.PACS],
                     services=[Service(kind="pacs-http", port=port, tls=True)])
    finally:
        front.stop()


def test_a_front_that_reflects_any_origin_with_credentials_fails(
        cors_reflecting_front: Target, hardened_pacs: Target) -> None:
    reflected = run_check("pacs.cors_any_origin", cors_reflecting_front)
    assert reflected.status is Status.FAIL, reflected.summary
    assert "/system allows any origin (https://mis-audit-probe.invalid) with credentials" \
        in reflected.summary
    assert run_check("pacs.cors_any_origin", hardened_pacs).status is Status.PASS


@pytest.fixture()
def pacs_on_the_dicom_tls_port(tmp_path: Path) -> Iterator[Target]:
    """A hardened Orthanc speaking DICOM TLS on 2762 only, in a network namespace of its
    own (198.18.69.8/30), declared by address alone: its DICOM port is for the probe to find."""
    from dataclasses import replace

    from tests.servers.netns import create_namespace
    namespace = create_namespace("mispacst", "198.18.69.9", "198.18.69.10")
    try:
        variant = replace(HARDENED, name="orthanc-tls-port", http_port=8042, dicom_port=2762,
                          https=False)
        server = start_orthanc(variant, namespace.address, tmp_path / "pacs", dicomweb=False,
                               namespace=namespace)
        try:
            yield Target(name="pacs-2762", address=namespace.address, roles=[Role.PACS],
                         ae_title=variant.ae_title)
        finally:
            server.stop()
    finally:
        namespace.remove()


def test_dicom_tls_on_its_registered_port_is_found_without_a_declaration(
        pacs_on_the_dicom_tls_port: Target) -> None:
    result = run_check("pacs.dicom_unknown_ae", pacs_on_the_dicom_tls_port)
    assert result.status is Status.PASS, result.summary
    [observed] = result.evidence.observed
    assert (observed["port"], observed["tls"], observed["outcome"]) == (2762, True, "rejected")


def test_echo_alone_is_tolerated_by_default(echo_only_pacs: Target) -> None:
    result = run_check("pacs.dicom_unknown_ae", echo_only_pacs)
    assert result.status is Status.PASS, result.summary
    assert "C-ECHO answered" in result.summary
    [observed] = result.evidence.observed
    assert observed["echo_accepted"] is True and observed["find_outcome"] == "aborted"


def test_echo_alone_fails_when_the_profile_forbids_it(echo_only_pacs: Target) -> None:
    result = run_check("pacs.dicom_unknown_ae", echo_only_pacs, allow_echo=False)
    assert result.status is Status.FAIL, result.summary
    assert result.summary.endswith("answered a C-ECHO")


def test_unknown_ae_cannot_be_judged_with_the_wrong_called_ae(orthancs: dict[str, ServerProcess]) -> None:
    target = pacs_target("pacs-misdeclared", orthancs["hardened"], ae_title="ORTHANC")
    result = run_check("pacs.dicom_unknown_ae", target)
    assert result.status is Status.MANUAL
    assert "ae_title" in result.summary


def test_weak_pacs_answers_any_called_ae(weak_pacs: Target) -> None:
    result = run_check("pacs.dicom_called_ae", weak_pacs)
    assert result.status is Status.FAIL, result.summary
    [observed] = result.evidence.observed
    assert observed["called_ae"] == "NOT-THIS-PACS" and observed["outcome"] == "accepted"


def test_hardened_pacs_checks_the_called_ae(hardened_pacs: Target) -> None:
    result = run_check("pacs.dicom_called_ae", hardened_pacs)
    assert result.status is Status.PASS, result.summary
    [observed] = result.evidence.observed
    assert observed["rejection_reason"] == "Called AE title not recognised", observed


def test_weak_rest_api_answers_without_credentials(weak_pacs: Target) -> None:
    result = run_check("pacs.rest_unauthenticated", weak_pacs)
    assert result.status is Status.FAIL, result.summary
    answers = {item["path"]: item for item in result.evidence.observed}
    assert answers["/system"]["status"] == 200
    assert answers["/patients"]["count"] == len(SYNTHETIC_PATIENTS)
    assert answers["/studies"]["count"] == len(SYNTHETIC_PATIENTS)
    _assert_no_patient_data(result)


def test_hardened_rest_api_demands_credentials(hardened_pacs: Target) -> None:
    result = run_check("pacs.rest_unauthenticated", hardened_pacs)
    assert result.status is Status.PASS, result.summary
    assert {item["status"] for item in result.evidence.observed} == {401}


def weak_dicomweb_failure(orthancs: dict[str, ServerProcess], weak_pacs: Target,
                          check_id: str) -> Result:
    """A DICOMweb check's result on the weak Orthanc, which must fail it."""
    if not orthancs["weak"].extra["dicomweb"]:
        pytest.skip("the orthanc-dicomweb plugin is not installed")
    result = run_check(check_id, weak_pacs)
    assert result.status is Status.FAIL, result.summary
    return result


def test_weak_dicomweb_answers_without_credentials(
        orthancs: dict[str, ServerProcess], weak_pacs: Target) -> None:
    result = weak_dicomweb_failure(orthancs, weak_pacs, "pacs.dicomweb_unauthenticated")
    [observed] = result.evidence.observed
    assert observed == {"path": "/dicom-web/studies", "status": 200,
                        "count": len(SYNTHETIC_PATIENTS), "count_capped": False}
    _assert_no_patient_data(result)


def test_hardened_dicomweb_demands_credentials(hardened_pacs: Target) -> None:
    result = run_check("pacs.dicomweb_unauthenticated", hardened_pacs)
    assert result.status is Status.PASS, result.summary


def test_weak_dicomweb_takes_an_anonymous_upload_and_stores_nothing(
        orthancs: dict[str, ServerProcess], weak_pacs: Target) -> None:
    result = weak_dicomweb_failure(orthancs, weak_pacs, "pacs.dicomweb_anonymous_store")
    assert result.evidence.observed["request"].startswith("POST /dicom-web/studies")
    status = result.evidence.observed["status"]
    assert 200 <= status < 300 or status in (400, 409, 415, 422)
    # An upload of nothing: the archive holds the studies it held.
    studies = run_check("pacs.dicomweb_unauthenticated", weak_pacs).evidence.observed
    assert studies[0]["count"] == len(SYNTHETIC_PATIENTS)


def test_hardened_dicomweb_asks_who_uploads(hardened_pacs: Target) -> None:
    result = run_check("pacs.dicomweb_anonymous_store", hardened_pacs)
    assert result.status is Status.PASS, result.summary
    assert result.evidence.observed["status"] == 401


def test_plain_dicom_and_plain_http_fail_encryption_in_transit(
        weak_pacs: Target, hardened_pacs: Target, orthancs: dict[str, ServerProcess]) -> None:
    weak = run_check("pacs.plaintext", weak_pacs)
    assert weak.status is Status.FAIL, weak.summary
    extra = orthancs["weak"].extra
    assert weak.summary == (f"in clear: DICOM port {extra['dicom_port']}, HTTP API "
                            f"http://{WEAK_ADDRESS}:{extra['http_port']}")
    hardened = run_check("pacs.plaintext", hardened_pacs)
    assert hardened.status is Status.PASS, hardened.summary
    assert [channel["encrypted"] for channel in hardened.evidence.observed] == [True, True]


def test_closed_ports_are_an_error_not_a_pass(tmp_path: Path) -> None:
    target = Target(name="pacs-down", address=SILENT_ADDRESS, roles=[Role.PACS], services=[
        Service(kind="dicom", port=14699), Service(kind="pacs-http", port=18699)])
    for check_id in ("pacs.dicom_unknown_ae", "pacs.rest_unauthenticated", "pacs.plaintext"):
        result = run_check(check_id, target)
        assert result.status is Status.ERROR
        assert result.error is not None and result.error.type == "unreachable"


def test_a_silent_listener_costs_no_more_than_the_timeout() -> None:
    with silent_listener(SILENT_ADDRESS) as port:
        target = Target(name="pacs-silent", address=SILENT_ADDRESS, roles=[Role.PACS], services=[
            Service(kind="dicom", port=port), Service(kind="pacs-http", port=port)])
        dicom = run_check_within("pacs.dicom_called_ae", target, timeout=4.0)
        http = run_check_within("pacs.rest_unauthenticated", target, timeout=4.0)
    assert dicom.status is Status.MANUAL, dicom.summary
    assert [attempt["outcome"] for attempt in dicom.evidence.observed] == ["skipped"]
    assert http.status is Status.ERROR
    assert http.error is not None and http.error.type == "timeout"


RUN_PROFILE = """
id: pacs-run
title: PACS checks through a whole run
version: "1"
controls:
  - id: pacs.access
    title: The PACS answers no stranger
    severity: critical
    checks:
      - {check: pacs.dicom_unknown_ae}
      - {check: pacs.dicom_called_ae}
      - {check: pacs.rest_unauthenticated}
      - {check: pacs.dicomweb_unauthenticated}
      - {check: pacs.plaintext}
"""


def test_a_run_from_yaml_files(orthancs: dict[str, ServerProcess], tmp_path: Path) -> None:
    (tmp_path / "profile.yaml").write_text(RUN_PROFILE)
    (tmp_path / "inventory.yaml").write_text(
        "organisation: PACS test clinic\nscope: {networks: [127.62.0.0/16]}\ntargets:\n"
        + inventory_target_yaml("pacs-weak", orthancs["weak"])
        + inventory_target_yaml("pacs-hardened", orthancs["hardened"]))
    results = execute(prepare(RunRequest(profiles=[str(tmp_path / "profile.yaml")],
                                         inventory=tmp_path / "inventory.yaml", timeout=8.0)))
    statuses = {(result.check, result.target): result.status for result in results.results}
    checks = ("pacs.dicom_unknown_ae", "pacs.dicom_called_ae", "pacs.rest_unauthenticated",
              "pacs.dicomweb_unauthenticated", "pacs.plaintext")
    assert statuses == {**{(check, "pacs-weak"): Status.FAIL for check in checks},
                        **{(check, "pacs-hardened"): Status.PASS for check in checks}}
    text = results_json(results)
    assert str(orthancs["hardened"].extra["password"]) not in text
    for name, patient_id in SYNTHETIC_PATIENTS:
        assert name not in text and patient_id not in text
