"""Sites: the network segments a scanner each reaches, scored on their own, and the merge of
per-site runs into one record of the whole system.

A site's score is the profile's score over its targets' results and the organisation's
(documents and attestations concern every site). A merge takes runs of one profile, each
from the scanner of its site, and gives the run an uninterrupted audit over all of them
would have given: the same results, scored together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

from audit.model.attestation import AttestationOutcome
from audit.model.results import (
    Result,
    RunMethod,
    RunResults,
    ScopeRecord,
    SiteOutcome,
    TargetRecord,
    WaiverRecord,
)
from audit.plan import ORGANISATION_TARGET
from audit.scoring import control_status, score_controls

# The site of targets whose inventory names none, when another run of a merge names its own.
UNNAMED_SITE = "default"


def site_outcomes(run: RunResults, sources: dict[str, str] | None = None,
                  scanners: dict[str, str] | None = None) -> list[SiteOutcome]:
    """Each site's score and verdict; none when no target names a site."""
    if not any(target.site for target in run.targets):
        return []
    members: dict[str, list[str]] = {}
    for target in run.targets:
        members.setdefault(target.site or UNNAMED_SITE, []).append(target.name)
    scanner = run.method.scanner_host if run.method else None
    outcomes = []
    for site, names in sorted(members.items()):
        chosen = set(names) | {ORGANISATION_TARGET}
        card = score_controls(run.controls, [r for r in run.results if r.target in chosen],
                              run.threshold)
        outcomes.append(SiteOutcome(
            name=site, targets=names, score=card.score, verdict=card.verdict,
            blockers=len(card.blockers), scanner_host=(scanners or {}).get(site, scanner),
            source=(sources or {}).get(site)))
    return outcomes


class MergeRefused(Exception):
    """Runs that cannot be one record: different profiles, a target in two runs."""


@dataclass(frozen=True)
class StoredRun:
    """A run to merge and the file it was read from."""

    path: str
    results: RunResults


def _profile_terms(run: RunResults) -> tuple[object, ...]:
    return (sorted((p.id, p.version, p.sha256) for p in run.profiles), run.threshold,
            sorted(run.weights.items()), sorted(d.control for d in run.disabled))


def _refuse_different_profiles(runs: Sequence[StoredRun]) -> None:
    first = runs[0]
    for other in runs[1:]:
        if _profile_terms(other.results) == _profile_terms(first.results):
            continue
        def named(run: RunResults) -> str:
            return ", ".join(f"{p.id} {p.version} ({p.sha256[:12]})" for p in run.profiles)
        raise MergeRefused(
            f"{other.path} was audited against another profile than {first.path}: "
            f"{named(other.results)} (threshold {other.results.threshold:g}) against "
            f"{named(first.results)} (threshold {first.results.threshold:g}); merge runs of "
            "one profile only")


def _sited_targets(runs: Sequence[StoredRun]) -> list[TargetRecord]:
    """Every target once, with its site (a run whose inventory names none gives its file's
    directory name, so that the merge still shows one site per scanner)."""
    seen: dict[str, str] = {}
    targets = []
    for run in runs:
        fallback = PurePath(run.path).parent.name or UNNAMED_SITE
        for target in run.results.targets:
            if target.name in seen:
                raise MergeRefused(f"target {target.name!r} is in {seen[target.name]} and in "
                                   f"{run.path}: give each target one name across the sites")
            seen[target.name] = run.path
            targets.append(target.model_copy(update={"site": target.site or fallback}))
    return targets


def _organisation_results(runs: Sequence[StoredRun]) -> list[Result]:
    """The organisation's results: one per (control, check), the worst the sites recorded
    (an attestation one site made and another lacks does not pass for both)."""
    chosen: dict[tuple[str, str], Result] = {}
    for run in runs:
        for result in run.results.results:
            if result.target != ORGANISATION_TARGET:
                continue
            kept = chosen.get((result.control, result.check))
            if kept is None or _worse(result, kept):
                chosen[(result.control, result.check)] = result
    return list(chosen.values())


def _worse(result: Result, than: Result) -> bool:
    return result.status is not than.status and \
        control_status([result.status, than.status]) is result.status


def merge_runs(runs: Sequence[StoredRun]) -> RunResults:
    """One record of the whole system from per-site runs of one profile."""
    if not runs:
        raise MergeRefused("nothing to merge")
    _refuse_different_profiles(runs)
    first = runs[0].results
    targets = _sited_targets(runs)
    order = {control.id: index for index, control in enumerate(first.controls)}
    results = sorted([r for run in runs for r in run.results.results
                      if r.target != ORGANISATION_TARGET] + _organisation_results(runs),
                     key=lambda r: (order.get(r.control, len(order)), r.check, r.target))
    card = score_controls(first.controls, results, first.threshold)
    site_of = {target.name: target.site or UNNAMED_SITE for target in targets}
    sources = {site_of[run.results.targets[0].name]: run.path for run in runs
               if run.results.targets}
    scanners = {site_of[run.results.targets[0].name]: run.results.method.scanner_host
                for run in runs if run.results.targets and run.results.method}
    merged = first.model_copy(update={
        "started_at": min(run.results.started_at for run in runs),
        "finished_at": max(run.results.finished_at for run in runs),
        "complete": all(run.results.complete for run in runs),
        "scope": _scope(runs), "targets": targets,
        "inventory_sha256": hashlib.sha256("".join(
            run.results.inventory_sha256 or "" for run in runs).encode()).hexdigest(),
        "checks_run": sorted({c for run in runs for c in run.results.checks_run}),
        "results": results, "controls": card.controls, "score": card.score,
        "verdict": card.verdict, "blockers": card.blockers, "waivers": _waivers(runs),
        "attestations": _attestations(runs), "warnings": _warnings(runs),
        "method": _method(runs), "history": None, "history_error": None})
    return merged.model_copy(update={"sites": site_outcomes(merged, sources, scanners)})


def _scope(runs: Sequence[StoredRun]) -> ScopeRecord:
    scopes = [run.results.scope for run in runs]
    return ScopeRecord(networks=sorted({n for s in scopes for n in s.networks}),
                       hosts=sorted({h for s in scopes for h in s.hosts}),
                       paths=sorted({p for s in scopes for p in s.paths}))


def _waivers(runs: Sequence[StoredRun]) -> WaiverRecord:
    records = [run.results.waivers for run in runs]
    return WaiverRecord(applied=[w for r in records for w in r.applied],
                        expired=[w for r in records for w in r.expired],
                        unmatched=[w for r in records for w in r.unmatched])


def _attestations(runs: Sequence[StoredRun]) -> AttestationOutcome:
    records = [run.results.attestations for run in runs]
    return AttestationOutcome(applied=[a for r in records for a in r.applied],
                              expired=[a for r in records for a in r.expired],
                              unmatched=[a for r in records for a in r.unmatched])


def _warnings(runs: Sequence[StoredRun]) -> list[str]:
    warnings = [f"{run.path}: {warning}" for run in runs for warning in run.results.warnings]
    organisations = sorted({run.results.organisation for run in runs})
    if len(organisations) > 1:
        warnings.append(f"the merged runs name {len(organisations)} organisations "
                        f"({', '.join(organisations)}); the report names the first")
    return warnings


def _method(runs: Sequence[StoredRun]) -> RunMethod | None:
    """The scanner hosts, each site's own, and the tools and commands of all of them."""
    methods = [run.results.method for run in runs if run.results.method]
    if not methods:
        return None
    return RunMethod(
        scanner_host=", ".join(dict.fromkeys(m.scanner_host for m in methods)),
        tools={name: version for m in methods for name, version in m.tools.items()},
        ports_scanned=sorted({port for m in methods for port in m.ports_scanned}),
        host_commands=list(dict.fromkeys(c for m in methods for c in m.host_commands)))
