"""What a run used of its inputs, and a one-line warning for each declared thing it did not.

A credential counts as used when a planned check reaches it: a target's ssh credential by a
check that reads the host (one that applies to host or file-share roles only, not a network
check that also applies to hosts), a service's credential by a check whose probe logs in to
that kind of service. An evidence entry counts when an evidence check of the profile reads
it; a waiver when it matched a failure (`apply_waivers`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from audit.facts.databases import PROBERS, database_access
from audit.facts.db_review import REVIEWED_KINDS, database_review
from audit.facts.evidence import evidence_document
from audit.facts.ports import canonical_service
from audit.model.inventory import Inventory, Target
from audit.model.results import WaiverRecord
from audit.plan import PlanItem
from audit.profiles import PlannedCheck, ResolvedProfile
from audit.vocabulary import Role

# Roles whose checks read the host itself (over its transport) rather than the network.
HOST_READING_ROLES = frozenset({Role.HOST, Role.FILESHARE})
# The probes that log in with a declared service's credential, and the service kinds they log
# in to (canonical names, `mariadb` being `mysql`).
SERVICE_LOGINS: dict[Callable[..., Any], frozenset[str]] = {
    database_access: frozenset(PROBERS),
    database_review: REVIEWED_KINDS,
}


def evidence_key(planned: PlannedCheck) -> str | None:
    """The evidence entry an evidence check reads (its `document:` parameter), else None."""
    if planned.spec.probe is not evidence_document:
        return None
    document = getattr(planned.params, "document", None)
    return document if isinstance(document, str) else None


def expected_documents(profile: ResolvedProfile) -> dict[str, list[str]]:
    """Every evidence key the profile's evidence checks read, with the controls that need it
    (sorted by key)."""
    needed: dict[str, list[str]] = {}
    for resolved in profile.controls:
        for planned in resolved.checks:
            key = evidence_key(planned)
            if key is not None and resolved.control.id not in needed.setdefault(key, []):
                needed[key].append(resolved.control.id)
    return dict(sorted(needed.items()))


def _credentials_reached(item: PlanItem, target: Target) -> set[str]:
    if item.check is None:
        return set()
    spec = item.check.spec
    reached: set[str] = set()
    if target.ssh and target.host_transport == "ssh" and spec.applies_to <= HOST_READING_ROLES:
        reached.add(target.ssh)
    kinds = SERVICE_LOGINS.get(spec.probe, frozenset())
    reached |= {service.credential for service in target.services
                if service.credential and canonical_service(service.kind) in kinds}
    return reached


def unused_inputs(plan: Iterable[PlanItem], inventory: Inventory,
                  waivers: WaiverRecord) -> list[str]:
    """One line for each declared credential, evidence entry and waiver nothing used."""
    targets = {target.name: target for target in inventory.targets}
    credentials: set[str] = set()
    documents: set[str] = set()
    for item in plan:
        if item.target in targets:
            credentials |= _credentials_reached(item, targets[item.target])
        key = evidence_key(item.check) if item.check else None
        if key is not None:
            documents.add(key)
    warnings = [f"credential {name!r} is declared but no planned check uses it"
                + _credential_hint(name, inventory)
                for name in sorted(inventory.credentials) if name not in credentials]
    warnings += [f"evidence {key!r} is declared but no evidence check of the profile reads it"
                 for key in sorted(inventory.evidence) if key not in documents]
    warnings += [f"waiver for {waiver.control} ({waiver.target}) matched no failure"
                 for waiver in waivers.unmatched]
    return warnings


def _credential_hint(name: str, inventory: Inventory) -> str:
    """Why, when the inventory shows it: nothing refers to it, or what refers to it logs in
    to nothing."""
    users = [target for target in inventory.targets
             if target.ssh == name or any(s.credential == name for s in target.services)]
    if not users:
        return " (no target refers to it)"
    kinds = sorted({service.kind for target in users for service in target.services
                    if service.credential == name})
    if kinds:
        logins = ", ".join(sorted(set().union(*SERVICE_LOGINS.values())))
        return f" (no check logs in to {', '.join(kinds)}; service logins: {logins})"
    return " (no check reads that host)"
