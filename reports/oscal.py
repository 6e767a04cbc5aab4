"""OSCAL 1.2.1 assessment results (JSON), rendered from results.json alone.

The mapping: the organisation and the attesters are parties; every control of the run is a
reviewed control; every result is one observation (method TEST for an automated check,
EXAMINE for an evidence document, an attestation or a control an assessor decides), its
evidence files pinned by SHA-256 in back-matter resources; every control is one finding whose
target status is satisfied (pass; a not-applicable control too, its implementation-status
saying "not-applicable") or not-satisfied; every failed result is a risk, `open`. OSCAL
assessment results have no deviation object: a waiver is a risk with status
`deviation-approved`, its expiry as the deadline and the approval in its risk log (the
construct POA&M uses). UUIDs are derived from the run, so a re-render is byte-identical.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, time
from typing import Any

from audit.model.results import ControlOutcome, Result, RunResults
from audit.plan import MANUAL_CHECK
from audit.vocabulary import Lang, Status, localized
from reports.text import clean

OSCAL_VERSION = "1.2.1"
NS = "urn:mis-audit"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:mis-audit:oscal")
# Checks whose observation is the examination of a document rather than a test of a system.
EXAMINED_CHECKS = frozenset({"evidence.document", MANUAL_CHECK})


def _line(text: str) -> str:
    """One line, never empty: OSCAL titles and property values allow nothing else."""
    return " ".join(clean(text).split()) or "-"


def _prop(name: str, value: object) -> dict[str, str]:
    return {"name": name, "ns": NS, "value": _line(str(value))}


class _Ids:
    """Stable UUIDs: the same run gives the same document."""

    def __init__(self, results: RunResults) -> None:
        self._run = f"{results.started_at.isoformat()}|{results.organisation}"

    def __call__(self, *parts: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, "|".join((self._run, *parts))))


def _evidence_files(results: RunResults) -> dict[tuple[str, str], dict[str, Any]]:
    """Every file the run hashed, by (file, sha256): evidence documents, attestation files."""
    files: dict[tuple[str, str], dict[str, Any]] = {}
    for result in results.results:
        details = result.evidence.details
        if isinstance(details.get("file"), str) and isinstance(details.get("sha256"), str):
            files[(details["file"], details["sha256"])] = {"size": details.get("size")}
        if result.attestation and result.attestation.evidence:
            evidence = result.attestation.evidence
            files[(evidence.file, evidence.sha256)] = {"size": evidence.size}
    return files


def _resources(results: RunResults, ids: _Ids) -> list[dict[str, Any]]:
    plan = {"uuid": ids("plan"), "title": "mis-audit profiles (the assessment plan)",
            "description": clean("; ".join(f"{r.id} {r.version} ({r.source}), SHA-256 {r.sha256}"
                                           for r in results.profiles) or "-")}
    profiles = [{"uuid": ids("profile", record.id), "title": _line(f"Profile {record.id}"),
                 "props": [_prop("version", record.version), _prop("source", record.source)],
                 "rlinks": [{"href": clean(record.source),
                             "hashes": [{"algorithm": "SHA-256", "value": record.sha256}]}]}
                for record in results.profiles]
    files = [{"uuid": ids("file", name, sha256), "title": _line(name),
              "props": [_prop("size", meta["size"])] if meta["size"] is not None else None,
              "rlinks": [{"href": clean(name),
                          "hashes": [{"algorithm": "SHA-256", "value": clean(sha256)}]}]}
             for (name, sha256), meta in sorted(_evidence_files(results).items())]
    return [plan, *profiles, *[_without_none(item) for item in files]]


def _without_none(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if value is not None}


def _method(result: Result) -> str:
    return "EXAMINE" if result.check in EXAMINED_CHECKS or result.attestation else "TEST"


def _relevant_evidence(result: Result, ids: _Ids) -> list[dict[str, Any]]:
    evidence = [{"description": clean(f"observed: {_text(result.evidence.observed)}; "
                                      f"expected: {_text(result.evidence.expected)}")}]
    details = result.evidence.details
    hashed = [(details.get("file"), details.get("sha256"))]
    if result.attestation and result.attestation.evidence:
        hashed.append((result.attestation.evidence.file, result.attestation.evidence.sha256))
    for name, sha256 in hashed:
        if isinstance(name, str) and isinstance(sha256, str):
            evidence.append({"href": f"#{ids('file', name, sha256)}",
                             "description": clean(f"{name}, SHA-256 {sha256}")})
    return evidence


def _text(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           sort_keys=True, default=str)


def _remarks(result: Result) -> str | None:
    notes = []
    if result.error:
        notes.append(f"error: {result.error.type}: {result.error.message}")
    if result.waiver:
        notes.append(f"waived until {result.waiver.expires.isoformat()}, approved by "
                     f"{result.waiver.approved_by}: {result.waiver.reason}")
    if result.attestation:
        notes.append(f"attested {result.attestation.status.value} by "
                     f"{result.attestation.attested_by} on {result.attestation.date.isoformat()}")
    return clean("\n".join(notes)) if notes else None


def _observation(result: Result, results: RunResults, ids: _Ids) -> dict[str, Any]:
    return _without_none({
        "uuid": ids("observation", result.control, result.check, result.target),
        "title": _line(f"{result.check} on {result.target}"),
        "description": clean(result.summary) or "-",
        "props": [_prop("control", result.control), _prop("check", result.check),
                  _prop("target", result.target), _prop("status", result.status.value)],
        "methods": [_method(result)],
        "subjects": [{"subject-uuid": ids("target", result.target), "type": "inventory-item",
                      "title": _line(result.target)}],
        "relevant-evidence": _relevant_evidence(result, ids),
        "collected": results.finished_at.isoformat(),
        "remarks": _remarks(result),
    })


def _risk(result: Result, control: ControlOutcome, results: RunResults, ids: _Ids,
          lang: Lang) -> dict[str, Any]:
    risk: dict[str, Any] = {
        "uuid": ids("risk", result.control, result.check, result.target),
        "title": _line(f"{result.control}: {result.check} on {result.target}"),
        "description": clean(result.summary) or "-",
        "statement": clean(localized(control.remediation or control.rationale or control.title,
                                     lang)) or "-",
        "props": [_prop("severity", control.severity.value)],
        "status": "open",
        "related-observations": [{"observation-uuid": ids("observation", result.control,
                                                          result.check, result.target)}],
    }
    waiver = result.waiver
    if waiver is not None:
        risk["status"] = "deviation-approved"
        risk["deadline"] = datetime.combine(waiver.expires, time.max, UTC).isoformat()
        risk["risk-log"] = {"entries": [{
            "uuid": ids("waiver", result.control, result.check, result.target),
            "title": _line(f"Waiver approved by {waiver.approved_by}"),
            "description": clean(waiver.reason) or "-", "start": results.started_at.isoformat(),
            "status-change": "deviation-approved",
            "remarks": clean(f"target pattern {waiver.target_pattern}; expires "
                             f"{waiver.expires.isoformat()}"
                             + (f"; accepted risk: {waiver.risk}" if waiver.risk else ""))}]}
    return risk


def _objective_status(control: ControlOutcome) -> dict[str, str]:
    if control.status is Status.PASS:
        return {"state": "satisfied", "reason": "pass"}
    if control.status is Status.NOT_APPLICABLE:
        return {"state": "satisfied", "reason": "other",
                "remarks": "not applicable to the targets of this run"}
    return {"state": "not-satisfied",
            "reason": "fail" if control.status in (Status.FAIL, Status.WAIVED) else "other",
            "remarks": f"mis-audit status: {control.status.value}"}


def _finding(control: ControlOutcome, rows: list[Result], risky: set[int], ids: _Ids,
             lang: Lang) -> dict[str, Any]:
    target: dict[str, Any] = {"type": "objective-id", "target-id": control.id,
                              "title": _line(localized(control.title, lang)),
                              "status": _objective_status(control)}
    if control.status is Status.NOT_APPLICABLE:
        target["implementation-status"] = {"state": "not-applicable"}
    finding: dict[str, Any] = {
        "uuid": ids("finding", control.id),
        "title": _line(f"{control.id}: {localized(control.title, lang)}"),
        "description": clean(localized(control.rationale or control.title, lang)) or "-",
        "props": [_prop("severity", control.severity.value),
                  _prop("status", control.status.value)],
        "target": target,
    }
    if rows:
        finding["related-observations"] = [
            {"observation-uuid": ids("observation", r.control, r.check, r.target)} for r in rows]
    risks = [{"risk-uuid": ids("risk", r.control, r.check, r.target)}
             for r in rows if id(r) in risky]
    if risks:
        finding["related-risks"] = risks
    return finding


def _inventory_items(results: RunResults, ids: _Ids) -> list[dict[str, Any]]:
    described = {target.name: f"{target.name} ({', '.join(role.value for role in target.roles)}"
                              f"{', ' + target.address if target.address else ''})"
                 for target in results.targets}
    names = sorted({*described, *(result.target for result in results.results)})
    return [{"uuid": ids("target", name), "description": clean(described.get(name, name)),
             "props": [_prop("name", name)]} for name in names]


def _parties(results: RunResults, ids: _Ids) -> tuple[list[dict[str, Any]], list[str]]:
    organisation = {"uuid": ids("party", "organisation"), "type": "organization",
                    "name": _line(results.organisation)}
    outcome = results.attestations
    attesters = sorted({record.attested_by for record in
                        (*outcome.applied, *outcome.expired, *outcome.unmatched)})
    assessors = [{"uuid": ids("party", "assessor", name), "type": "person", "name": _line(name)}
                 for name in attesters]
    return [organisation, *assessors], [party["uuid"] for party in assessors]


def _metadata(results: RunResults, ids: _Ids) -> dict[str, Any]:
    parties, assessors = _parties(results, ids)
    responsible = [{"role-id": "prepared-for", "party-uuids": [parties[0]["uuid"]]}]
    if assessors:
        responsible.append({"role-id": "assessor", "party-uuids": assessors})
    title = f"Security assessment of {results.organisation}" + (
        f": {results.system}" if results.system else "")
    return {
        "title": _line(title), "last-modified": results.finished_at.isoformat(),
        "version": _line(" + ".join(f"{r.id} {r.version}" for r in results.profiles)),
        "oscal-version": OSCAL_VERSION,
        "props": [_prop("tool", f"{results.tool.name} {results.tool.version}")],
        "roles": [{"id": "prepared-for", "title": "Audited organisation"},
                  {"id": "assessor", "title": "Assessor"}],
        "parties": parties, "responsible-parties": responsible,
        "remarks": "The assessor who seals a run is named in its seal statement and manifest "
                   "(mis-audit seal / verify); the assessors here are those who attested.",
    }


def assessment_results(results: RunResults, lang: Lang) -> dict[str, Any]:
    """The OSCAL document as a JSON-ready mapping."""
    ids = _Ids(results)
    controls = {control.id: control for control in results.controls}
    by_control: dict[str, list[Result]] = {}
    for result in results.results:
        by_control.setdefault(result.control, []).append(result)
    failed = [r for r in results.results if r.status in (Status.FAIL, Status.WAIVED)
              and r.control in controls]
    risky = {id(r) for r in failed}
    selection: dict[str, Any] = ({"include-controls": [{"control-id": c} for c in controls]}
                                 if controls else {"include-all": {}})
    oscal_result = _without_none({
        "uuid": ids("result"), "title": _line(f"mis-audit run of {results.started_at.isoformat()}"),
        "description": clean(f"Score {results.score:g} / 100 (threshold {results.threshold:g}), "
                             f"verdict {results.verdict.value}"
                             + ("" if results.complete else "; the run is incomplete")),
        "start": results.started_at.isoformat(), "end": results.finished_at.isoformat(),
        "props": [_prop("score", f"{results.score:g}"), _prop("verdict", results.verdict.value),
                  _prop("complete", str(results.complete).lower())],
        "local-definitions": {"inventory-items": _inventory_items(results, ids)},
        "reviewed-controls": {"control-selections": [selection]},
        "observations": [_observation(r, results, ids) for r in results.results] or None,
        "risks": [_risk(r, controls[r.control], results, ids, lang) for r in failed] or None,
        "findings": [_finding(c, by_control.get(c.id, []), risky, ids, lang)
                     for c in results.controls] or None,
    })
    return {"assessment-results": {
        "uuid": ids("document"), "metadata": _metadata(results, ids),
        "import-ap": {"href": f"#{ids('plan')}",
                      "remarks": "No separate assessment plan: the plan is the mis-audit "
                                 "profiles, pinned by SHA-256 in the back matter."},
        "results": [oscal_result],
        "back-matter": {"resources": _resources(results, ids)},
    }}


def render_oscal(results: RunResults, lang: Lang) -> str:
    """The OSCAL assessment-results document, JSON."""
    return json.dumps(assessment_results(results, lang), indent=2, ensure_ascii=False) + "\n"
