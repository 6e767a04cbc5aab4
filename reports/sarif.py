"""SARIF 2.1.0: one rule per control, one result per (control, check, target)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from audit.model.results import ControlOutcome, Result, RunResults
from audit.vocabulary import Lang, Severity, Status, localized
from reports.text import as_text, attestation_note, clean

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

# How a failed control of each severity shows in code-scanning dashboards.
_LEVEL: dict[Severity, str] = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
}

# SARIF's own result kinds: "open" is its word for "the tool could not decide".
_KIND: dict[Status, str] = {
    Status.PASS: "pass",
    Status.FAIL: "fail",
    Status.WAIVED: "fail",
    Status.ERROR: "open",
    Status.MANUAL: "review",
    Status.NOT_APPLICABLE: "notApplicable",
}


def _rule(control: ControlOutcome, lang: Lang) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": control.id,
        "name": control.id,
        "shortDescription": {"text": clean(localized(control.title, lang))},
        "defaultConfiguration": {"level": _LEVEL[control.severity]},
        "properties": {
            "severity": control.severity.value,
            "weight": control.weight,
            "references": [{"text": clean(ref.text), "kind": ref.kind.value,
                            "source": clean(ref.source or "")} for ref in control.references],
        },
    }
    if control.rationale:
        rule["fullDescription"] = {"text": clean(localized(control.rationale, lang))}
    if control.remediation:
        rule["help"] = {"text": clean(localized(control.remediation, lang))}
    return rule


def _fingerprint(result: Result) -> str:
    key = f"{result.control}\x1f{result.check}\x1f{result.target}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _result(result: Result, index: int, severity: Severity) -> dict[str, Any]:
    target = clean(result.target, 200)
    entry: dict[str, Any] = {
        "ruleId": result.control,
        "ruleIndex": index,
        "kind": _KIND[result.status],
        "level": _LEVEL[severity] if result.status is Status.FAIL else "none",
        "message": {"text": clean(result.summary) or result.status.value},
        "locations": [{"logicalLocations": [{
            "name": target,
            "fullyQualifiedName": f"{target}/{result.check}",
            "kind": "resource",
        }]}],
        "partialFingerprints": {"misAuditResult/v1": _fingerprint(result)},
        "properties": {
            "check": result.check,
            "target": target,
            "status": result.status.value,
            "observed": as_text(result.evidence.observed),
            "expected": as_text(result.evidence.expected),
            "details": as_text(result.evidence.details or None),
            "durationMs": result.duration_ms,
        },
    }
    if result.error:
        entry["properties"]["error"] = {"type": clean(result.error.type, 100),
                                        "message": clean(result.error.message)}
    if result.attestation:
        entry["properties"]["attestation"] = {
            "note": attestation_note(result), "expired": result.attestation.expired,
            "attestedBy": clean(result.attestation.attested_by, 200),
            "date": result.attestation.date.isoformat(),
            "validUntil": result.attestation.valid_until.isoformat()}
    if result.waiver:
        entry["suppressions"] = [{
            "kind": "external",
            "status": "accepted",
            "justification": clean(f"{result.waiver.reason} (approved by "
                                   f"{result.waiver.approved_by}, expires "
                                   f"{result.waiver.expires.isoformat()})"),
        }]
    return entry


def render_sarif(results: RunResults, lang: Lang = Lang.EN) -> str:
    """The run as a SARIF 2.1.0 log (JSON text)."""
    rule_index = {control.id: index for index, control in enumerate(results.controls)}
    severity = {control.id: control.severity for control in results.controls}
    run = {
        "tool": {"driver": {
            "name": results.tool.name,
            "version": results.tool.version,
            "rules": [_rule(control, lang) for control in results.controls],
        }},
        "invocations": [{
            "executionSuccessful": results.complete,
            "startTimeUtc": results.started_at.isoformat(),
            "endTimeUtc": results.finished_at.isoformat(),
        }],
        "language": lang.value,
        "results": [_result(result, rule_index[result.control], severity[result.control])
                    for result in results.results if result.control in rule_index],
        "properties": {
            "organisation": clean(results.organisation, 200),
            "system": clean(results.system or "", 200),
            "profiles": [f"{p.id}@{p.version} sha256:{p.sha256}" for p in results.profiles],
            "score": results.score,
            "threshold": results.threshold,
            "verdict": results.verdict.value,
        },
    }
    log = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"
