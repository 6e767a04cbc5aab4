"""A whole audit: load → plan → engine → waivers → score → results.json."""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

from audit import __version__
from audit.attestations import apply_attestations, attestation_warnings, partial_results
from audit.engine import EngineOutcome, Observer, SilentObserver, run_plan
from audit.facts.context import Environment, TargetContext
from audit.inventory import (
    LoadedAttestations,
    LoadedInventory,
    LoadedWaivers,
    load_attestations,
    load_inventory,
    load_waivers,
    local_inventory,
)
from audit.method import run_method, source_address
from audit.model.inventory import Credential, Inventory, SshCredential, Target
from audit.model.results import (
    InputFiles,
    Result,
    RunResults,
    ScopeRecord,
    TargetRecord,
    Tool,
)
from audit.outputs import private_directory, write_atomically
from audit.plan import ORGANISATION_TARGET, PlanItem, build_plan
from audit.profiles import ResolvedProfile, load_profiles
from audit.registry import Registry, default_registry
from audit.scoring import apply_waivers, score
from audit.sites import site_outcomes
from audit.transports import open_transport
from audit.usage import unused_inputs
from audit.vocabulary import Role

DEFAULT_PROFILE = "kz-mis-baseline"
RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class MessageSigning:
    """Celery's message signing (its `auth` serializer): what this side sends is signed with
    its key, and only what a certificate in `trusted` signed is taken. The dispatcher trusts
    its sites' certificates, each site's scanner the dispatcher's only."""

    key: Path                   # PEM, RSA; its passphrase, if any, in $MIS_AUDIT_SIGN_KEY_PASSWORD
    certificate: Path
    trusted: Path               # a directory of PEM certificates, or one file


@dataclass(frozen=True)
class RunRequest:
    """What the user asked for."""

    profiles: list[str] = field(default_factory=lambda: [DEFAULT_PROFILE])
    inventory: Path | None = None
    waivers: Path | None = None
    attestations: Path | None = None
    jobs: int = 8
    timeout: float = 30.0
    debug: bool = False
    # A task queue's broker: each site's targets are sent to its scanner (`mis-audit worker`).
    broker: str | None = None
    site_timeout: float = 600.0     # how long a site's scanner may take to answer for all
    signing: MessageSigning | None = None


@dataclass(frozen=True)
class PreparedRun:
    """Everything validated, nothing contacted yet."""

    request: RunRequest
    profile: ResolvedProfile
    inventory: LoadedInventory
    waivers: LoadedWaivers
    today: date
    attestations: LoadedAttestations = field(
        default_factory=lambda: LoadedAttestations([], [], None))


def prepare(request: RunRequest, registry: Registry | None = None,
            today: date | None = None) -> PreparedRun:
    """Load and validate every input; raises InputError before anything is contacted."""
    registry = registry or default_registry()
    today = today or datetime.now(UTC).date()
    profile = load_profiles(request.profiles, registry)
    inventory = load_inventory(request.inventory) if request.inventory else local_inventory()
    waivers = (load_waivers(request.waivers, today) if request.waivers
               else LoadedWaivers([], [], None))
    attestations = (load_attestations(request.attestations, today) if request.attestations
                    else LoadedAttestations([], [], None))
    if request.broker is not None and any(t.site or inventory.inventory.site
                                          for t in inventory.inventory.targets):
        from audit.queue import check_broker  # Celery: only for a run that dispatches

        check_broker(request.broker, request.signing)
    return PreparedRun(request, profile, inventory, waivers, today, attestations)


def _environment(prepared: PreparedRun) -> Environment:
    inventory = prepared.inventory.inventory
    ca_file = prepared.inventory.base_dir / inventory.trust.ca_file if inventory.trust.ca_file \
        else None
    return Environment(base_dir=prepared.inventory.base_dir, today=prepared.today,
                       scope=inventory.scope, credentials=dict(inventory.credentials),
                       evidence=dict(inventory.evidence), ca_file=ca_file,
                       timeout=prepared.request.timeout)


def _target_record(target: Target, inventory: Inventory) -> TargetRecord:
    # Every credential the audit may use on the target, by its inventory name only.
    names = target.credential_names
    credentials = inventory.credentials
    return TargetRecord(name=target.name, address=target.address, roles=list(target.roles),
                        site=target.site or inventory.site, transport=target.host_transport,
                        credential=", ".join(sorted(str(name) for name in names)) or None,
                        source_address=source_address(target.address),
                        account=_host_account(target, credentials))


def _host_account(target: Target, credentials: dict[str, Credential]) -> str | None:
    """Who reads the host's files, with which privileges."""
    transport = target.host_transport
    ssh = credentials.get(target.ssh or "")
    if transport == "ssh" and isinstance(ssh, SshCredential):
        return f"{ssh.user} over SSH, " + ("sudo -n for the allow-listed reads" if ssh.sudo
                                          else "no sudo")
    if transport == "local":
        return f"{_local_user()} on this machine"
    if transport == "offline":
        return "none: files of a copy"
    return None


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):           # no login name and no passwd entry
        return f"uid {os.getuid()}"


def _absolute(path: Path | None) -> str | None:
    return str(path.resolve()) if path is not None else None


def _input_files(request: RunRequest) -> InputFiles:
    return InputFiles(inventory=_absolute(request.inventory), waivers=_absolute(request.waivers),
                      attestations=_absolute(request.attestations))


def execute(prepared: PreparedRun, observer: Observer | None = None,
            finished: Sequence[Result] = (), started_at: datetime | None = None) -> RunResults:
    """Probe the targets and score the outcome. Ctrl-C gives a record with complete=False.

    `finished` are results of an interrupted run of the same inputs (its journal): their
    items are not probed again, and the run keeps its original start time."""
    started_at = started_at or datetime.now(UTC)
    inventory = prepared.inventory.inventory
    environment = _environment(prepared)
    targets = list(inventory.targets)
    # The organisation is not a host: built without the validation that keeps users from it.
    organisation = Target.model_construct(name=ORGANISATION_TARGET, roles=[Role.ORGANISATION],
                                          paths=[], services=[], urls=[])
    contexts = {target.name: TargetContext(target, environment,
                                           open_transport if target.host_transport else None)
                for target in targets}
    contexts[ORGANISATION_TARGET] = TargetContext(organisation, environment)
    done = {(result.control, result.check, result.target): result for result in finished}
    full_plan = build_plan(prepared.profile, targets)
    plan = [item for item in full_plan if (item.control, item.check_id, item.target) not in done]
    try:
        outcome = _run_here_and_at_sites(prepared, plan, contexts, environment,
                                         observer or SilentObserver())
    finally:
        for context in contexts.values():
            context.close()
    outcome = replace(outcome, results=[*done.values(), *outcome.results,
                                        *partial_results(prepared.profile)])
    order = {resolved.control.id: index for index, resolved in enumerate(prepared.profile.controls)}
    results = sorted(outcome.results, key=lambda r: (order[r.control], r.check, r.target))
    results, attestation_record = apply_attestations(results, prepared.attestations.active,
                                                     prepared.attestations.expired)
    results, waiver_record = apply_waivers(results, prepared.waivers.active,
                                           prepared.waivers.expired)
    card = score(prepared.profile, results)
    scope = inventory.scope
    run = RunResults(
        tool=Tool(version=__version__), started_at=started_at,
        finished_at=datetime.now(UTC), complete=outcome.complete,
        organisation=inventory.organisation, system=inventory.system,
        profiles=prepared.profile.records, disabled=prepared.profile.disabled,
        profile_family=prepared.profile.family, inventory_sha256=prepared.inventory.sha256(),
        scope=ScopeRecord(networks=[str(n) for n in scope.networks], hosts=list(scope.hosts),
                          paths=list(scope.paths)),
        targets=[_target_record(t, inventory) for t in targets],
        checks_run=sorted({item.check_id for item in full_plan}),
        results=results, controls=card.controls, threshold=prepared.profile.threshold,
        weights=prepared.profile.weights, score=card.score, verdict=card.verdict,
        blockers=card.blockers, waivers=waiver_record, attestations=attestation_record,
        inputs=_input_files(prepared.request),
        warnings=[*unused_inputs(full_plan, inventory, waiver_record),
                  *attestation_warnings(attestation_record)],
        method=run_method())
    return run.model_copy(update={"sites": site_outcomes(run)})


class _FinishedOnly:
    """An observer told only of finished results (the total was given already)."""

    def __init__(self, observer: Observer) -> None:
        self._observer = observer

    def started(self, total: int) -> None:
        """Already told."""

    def finished(self, result: Result) -> None:
        """Tell the observer."""
        self._observer.finished(result)


def dispatched_sites(prepared: PreparedRun) -> dict[str, str]:
    """The site each target is sent to, by target name: none without a broker, and none
    for a target whose inventory names no site (it is audited here)."""
    if prepared.request.broker is None:
        return {}
    inventory = prepared.inventory.inventory
    return {target.name: site for target in inventory.targets
            if (site := target.site or inventory.site)}


def _run_here_and_at_sites(prepared: PreparedRun, plan: list[PlanItem],
                           contexts: dict[str, TargetContext], environment: Environment,
                           observer: Observer) -> EngineOutcome:
    """The plan: with a broker, each sited target's part goes to its site's scanner (one task
    per target) while the rest runs here."""
    request = prepared.request
    site = dispatched_sites(prepared)
    if request.broker is None or not site:
        return run_plan(plan, contexts, request.jobs, request.timeout, observer, request.debug)
    from audit.queue import abandoned, collect, send_tasks, target_task  # Celery: only here

    local = [item for item in plan if item.target not in site]
    by_target: dict[str, list[PlanItem]] = {}
    for item in plan:
        if item.target in site:
            by_target.setdefault(item.target, []).append(item)
    tasks = [target_task(site[name], contexts[name].target, items, environment,
                         request.jobs) for name, items in by_target.items()]
    observer.started(len(plan))
    sent = send_tasks(tasks, request.broker, request.site_timeout, request.signing)
    here = run_plan(local, contexts, request.jobs, request.timeout, _FinishedOnly(observer),
                    request.debug)
    if not here.complete:                  # Ctrl-C here: the sites' part is abandoned too
        return EngineOutcome([*here.results, *abandoned(sent)], False)
    there, answered = collect(sent, request.site_timeout, observer.finished)
    return EngineOutcome([*here.results, *there], answered)


def results_json(results: RunResults) -> str:
    """The canonical text of results.json, serialised by pydantic-core straight to text: no
    tree of Python objects first, which for a thousand targets cost more memory than the
    whole run had held until then."""
    return results.model_dump_json(indent=2) + "\n"


def write_results(results: RunResults, directory: Path) -> Path:
    """Write results.json durably and 0600 (a reader never sees half a record).

    A missing directory is created 0700; raises OutputError naming the path.
    """
    return write_atomically(private_directory(directory) / RESULTS_FILE, results_json(results))


def read_results(path: Path) -> RunResults:
    """Load a stored results.json."""
    return RunResults.model_validate_json(path.read_bytes())
