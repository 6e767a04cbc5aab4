"""Hand-built runs for the report, history and export tests (no test of its own here)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from audit.model.profile import Reference, ReferenceKind
from audit.model.results import (
    AppliedWaiver,
    Blocker,
    ControlOutcome,
    ErrorInfo,
    Evidence,
    FindingChange,
    HistorySummary,
    ProfileRecord,
    Result,
    RunDigest,
    RunResults,
    ScopeRecord,
    TargetRecord,
    Tool,
    WaiverRecord,
)
from audit.model.waiver import Waiver
from audit.vocabulary import Lang, Role, Severity, Status, Verdict

STARTED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
WEIGHTS = {Severity.CRITICAL: 10, Severity.HIGH: 5, Severity.MEDIUM: 2, Severity.LOW: 1}


def _control(control_id: str, severity: Severity, status: Status, targets: dict[str, Status],
             references: list[Reference], title: dict[Lang, str]) -> ControlOutcome:
    return ControlOutcome(
        id=control_id, title=title, severity=severity, weight=WEIGHTS[severity],
        references=references, status=status, earned=status in (Status.PASS, Status.WAIVED),
        targets=targets,
        rationale={Lang.EN: f"Why {control_id} matters.", Lang.RU: f"Почему {control_id} важно."},
        remediation={Lang.EN: f"How to fix {control_id}."})


def _result(control: str, check: str, target: str, status: Status, summary: str,
            **extra: Any) -> Result:
    return Result(control=control, check=check, target=target, status=status, summary=summary,
                  duration_ms=12, **extra)


def sample_results(statuses: dict[str, Status] | None = None) -> RunResults:
    """A run with every status, every reference kind, a waiver and unreachable targets.

    `statuses` overrides the status of results by control id (to make a later run differ).
    """
    override = statuses or {}
    waiver = Waiver(control="NET-01", target="db-*", reason="Legacy link until migration",
                    approved_by="Chief physician", expires=date(2027, 1, 31))
    expired = Waiver(control="AUTH-02", target="*", reason="Old exception",
                     approved_by="IT head", expires=date(2025, 1, 1))
    results = [
        _result("NET-01", "net.db_exposed", "db-main", override.get("NET-01", Status.WAIVED),
                "PostgreSQL 5432 answers from the clinic LAN",
                evidence=Evidence(observed={"open_ports": [5432]}, expected="no database port open",
                                  details={"files": ["/etc/postgresql/15/main/pg_hba.conf"]}),
                waiver=AppliedWaiver(reason=waiver.reason, approved_by=waiver.approved_by,
                                     expires=waiver.expires, target_pattern="db-*")),
        _result("NET-01", "net.db_exposed", "web-front", override.get("NET-01", Status.PASS),
                "no database port open", evidence=Evidence(observed=[], expected=[])),
        _result("AUTH-01", "host.ssh_mfa", "web-front", override.get("AUTH-01", Status.FAIL),
                "sshd accepts passwords without a second factor",
                evidence=Evidence(observed={"PasswordAuthentication": "yes"},
                                  expected={"AuthenticationMethods": "publickey,keyboard-interactive"},
                                  details={"masked_samples": ["9001******12"]})),
        _result("AUTH-01", "host.ssh_mfa", "db-main", override.get("AUTH-01", Status.ERROR),
                "db-main did not answer on port 22",
                error=ErrorInfo(type="unreachable", message="connect to 10.20.0.20:22: no route")),
        _result("AUTH-02", "host.password_max_age", "web-front", Status.ERROR,
                "timed out after 30 s", error=ErrorInfo(type="timeout", message="30 s passed")),
        _result("ORG-01", "manual", "organisation", override.get("ORG-01", Status.MANUAL),
                "no automated check: an assessor decides from evidence"),
        _result("WEB-01", "web.hsts", "web-front", Status.NOT_APPLICABLE, "no HTTPS URL"),
    ]
    law = Reference(text="PD Law 94-V Art. 10", kind=ReferenceKind.LAW, source="S1")
    proposal = Reference(text="Proposed 2FA requirement", kind=ReferenceKind.PROPOSAL,
                         source="S1")
    verify = Reference(text="Health Code Art. 95", kind=ReferenceKind.VERIFY, source="S1")
    external = Reference(text="HIPAA 45 CFR 164.312(d)", kind=ReferenceKind.EXTERNAL)
    controls = [
        _control("NET-01", Severity.CRITICAL, Status.WAIVED,
                 {"db-main": Status.WAIVED, "web-front": Status.PASS}, [law, external],
                 {Lang.EN: "No database reachable from outside",
                  Lang.RU: "База данных недоступна извне",
                  Lang.KK: "Дерекқорға сырттан қол жетпейді"}),
        _control("AUTH-01", Severity.CRITICAL, Status.FAIL,
                 {"web-front": Status.FAIL, "db-main": Status.ERROR}, [proposal],
                 {Lang.EN: "Remote administration needs a second factor"}),
        _control("AUTH-02", Severity.HIGH, Status.ERROR, {"web-front": Status.ERROR}, [verify],
                 {Lang.EN: "Passwords expire"}),
        _control("ORG-01", Severity.MEDIUM, Status.MANUAL, {"organisation": Status.MANUAL}, [],
                 {Lang.EN: "Annual independent audit"}),
        _control("WEB-01", Severity.LOW, Status.NOT_APPLICABLE,
                 {"web-front": Status.NOT_APPLICABLE}, [], {Lang.EN: "HSTS is sent"}),
    ]
    return RunResults(
        tool=Tool(version="0.1.0"), started_at=STARTED,
        finished_at=STARTED + timedelta(minutes=3), complete=True,
        organisation="City Clinic No. 5", system="MedInfo MIS 4.2",
        profiles=[ProfileRecord(id="kz-mis-baseline", title={Lang.EN: "KZ MIS baseline"},
                                version="2026.1", sha256="ab" * 32, source="builtin")],
        scope=ScopeRecord(networks=["10.20.0.0/24"], paths=["/srv/share"]),
        targets=[TargetRecord(name="web-front", address="10.20.0.10", roles=[Role.WEB, Role.HOST],
                              transport="ssh", credential="ops-ssh"),
                 TargetRecord(name="db-main", address="10.20.0.20", roles=[Role.DB])],
        checks_run=sorted({r.check for r in results}), results=results, controls=controls,
        threshold=80, weights=WEIGHTS, score=41.2, verdict=Verdict.NOT_READY,
        blockers=[Blocker(control="AUTH-01", status=Status.FAIL,
                          summary="critical control AUTH-01 is fail"),
                  Blocker(control=None, status=None,
                          summary="score 41.2 is below the threshold 80")],
        waivers=WaiverRecord(applied=[waiver], expired=[expired]))


def hostile_results(payload: str) -> RunResults:
    """The sample run with `payload` in every field a target (or a hand-edited file) controls."""
    base = sample_results()
    target = f"host-{payload}"
    results = [r.model_copy(update={
        "target": target, "summary": payload,
        "evidence": Evidence(observed={"banner": payload, payload[:50]: [payload]},
                             expected=payload, details={"files": [payload], "note": payload,
                                      payload[:50]: {"nested": payload}}),
        "error": ErrorInfo(type=payload, message=payload) if r.error else None,
        "waiver": r.waiver.model_copy(update={"reason": payload, "approved_by": payload})
        if r.waiver else None,
    }) for r in base.results]
    controls = [c.model_copy(update={"targets": {target: c.status}})
                for c in base.controls]
    change = FindingChange(control="AUTH-01", check="host.ssh_mfa", target=target,
                           before=Status.PASS, after=Status.FAIL, summary=payload)
    digest = RunDigest(run_id=1, started_at=STARTED, score=50, verdict=Verdict.NOT_READY,
                       complete=True)
    return base.model_copy(update={
        "organisation": payload, "system": payload, "results": results, "controls": controls,
        "targets": [TargetRecord(name=target, address=payload, roles=[Role.HOST],
                                 transport=payload, credential=payload)],
        "blockers": [Blocker(control=payload, status=Status.FAIL, summary=payload)],
        "history": HistorySummary(run_id=2, previous=digest, regressions=[change], new=[change],
                                  fixes=[change],
                                  trend=[digest, digest.model_copy(update={"run_id": 2})]),
    })
