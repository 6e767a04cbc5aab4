"""`--format oscal`: OSCAL assessment results from a real run, validated by compliance-trestle's
OSCAL models (OSCAL 1.2.1)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sealing import make_run, write_inputs
from test_report_hostile import CORPUS, END, UNSAFE_CHARACTERS
from test_report_samples import hostile_results
from trestle.oscal import OSCAL_VERSION as TRESTLE_OSCAL_VERSION
from trestle.oscal.assessment_results import Model

from audit.model.results import RunResults
from audit.run import RunRequest, execute, prepare, read_results
from audit.vocabulary import Lang, Status
from reports import RENDERERS
from reports.oscal import OSCAL_VERSION, render_oscal

WAIVERS = """- control: T-PASSWORD
  target: "image"
  reason: Password logins stay until the jump host is installed
  approved_by: Chief physician
  expires: {expires}
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> RunResults:
    """A real run over an offline host tree, an evidence document and a waiver."""
    directory = tmp_path_factory.mktemp("oscal")
    expires = (date.today() + timedelta(days=90)).isoformat()
    write_inputs(directory, WAIVERS.format(expires=expires))
    request = RunRequest(profiles=[str(directory / "profile.yaml")],
                         inventory=directory / "inventory.yaml",
                         waivers=directory / "waivers.yaml")
    return execute(prepare(request))


def validated(text: str) -> dict[str, Any]:
    """The document, once trestle's OSCAL models accept it."""
    document = json.loads(text)
    Model.model_validate(document)
    return document["assessment-results"]  # type: ignore[no-any-return]


def test_oscal_version_is_the_validators() -> None:
    assert OSCAL_VERSION == TRESTLE_OSCAL_VERSION == "1.2.1"


def test_a_real_run_gives_valid_assessment_results(results: RunResults) -> None:
    document = validated(render_oscal(results, Lang.EN))
    assert document["metadata"]["oscal-version"] == OSCAL_VERSION
    assert document["metadata"]["parties"][0] == {
        "uuid": document["metadata"]["parties"][0]["uuid"], "type": "organization",
        "name": "Sealed Clinic"}
    [result] = document["results"]
    assert len(result["observations"]) == len(results.results)
    methods = {o["title"]: o["methods"] for o in result["observations"]}
    assert methods["evidence.document on organisation"] == ["EXAMINE"]
    assert methods["host.ssh_root_login on image"] == ["TEST"]
    states = {f["target"]["target-id"]: f["target"]["status"]["state"]
              for f in result["findings"]}
    failed = {c.id for c in results.controls if c.status in (Status.FAIL, Status.WAIVED)}
    assert failed == {"T-ROOT", "T-PASSWORD"}
    assert states == {"T-ROOT": "not-satisfied", "T-PASSWORD": "not-satisfied",
                      "T-IRP": "satisfied"}
    [selection] = result["reviewed-controls"]["control-selections"]
    assert selection == {"include-controls": [{"control-id": "T-ROOT"},
                                              {"control-id": "T-PASSWORD"},
                                              {"control-id": "T-IRP"}]}


def test_failures_are_risks_and_waivers_approved_deviations(results: RunResults) -> None:
    [result] = validated(render_oscal(results, Lang.EN))["results"]
    status = {risk["title"]: risk["status"] for risk in result["risks"]}
    assert status == {"T-ROOT: host.ssh_root_login on image": "open",
                      "T-PASSWORD: host.ssh_password_auth on image": "deviation-approved"}
    waived = next(r for r in result["risks"] if "deadline" in r)
    assert "Chief physician" in waived["risk-log"]["entries"][0]["title"]
    finding = next(f for f in result["findings"] if f["target"]["target-id"] == "T-PASSWORD")
    assert finding["related-risks"] == [{"risk-uuid": waived["uuid"]}]


def test_evidence_files_are_pinned_by_hash(results: RunResults) -> None:
    document = validated(render_oscal(results, Lang.EN))
    resources = {r["uuid"]: r for r in document["back-matter"]["resources"]}
    irp = next(r for r in results.results if r.check == "evidence.document")
    observation = next(o for o in document["results"][0]["observations"]
                       if o["title"] == "evidence.document on organisation")
    [linked] = [e for e in observation["relevant-evidence"] if "href" in e]
    [rlink] = resources[linked["href"][1:]]["rlinks"]
    assert rlink["href"] == "evidence/irp.txt"
    assert rlink["hashes"] == [{"algorithm": "SHA-256",
                                "value": irp.evidence.details["sha256"]}]


def test_rendering_is_stable(results: RunResults) -> None:
    assert render_oscal(results, Lang.EN) == render_oscal(results, Lang.EN)


def test_run_and_report_write_the_same_oscal(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, formats="json,oscal")
    written = (run_dir / RENDERERS["oscal"].file_name).read_text()
    validated(written)
    assert written == render_oscal(read_results(run_dir / "results.json"), Lang.EN)


@pytest.mark.parametrize("payload", CORPUS.values(), ids=CORPUS.keys())
def test_hostile_text_stays_valid_and_bounded(payload: str) -> None:
    """Banners, file names and errors a target sent: still valid OSCAL, control characters
    gone, a 10 MB field cut."""
    text = render_oscal(hostile_results(payload), Lang.EN)
    validated(text)
    assert END not in text and len(text) < 3_000_000
    assert not any(UNSAFE_CHARACTERS.search(value) for value in strings(json.loads(text)))


def strings(value: Any) -> list[str]:
    """Every string in a JSON value, keys too."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [*value.keys(), *(s for item in value.values() for s in strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []
