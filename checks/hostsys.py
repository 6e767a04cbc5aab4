"""Host system measures: encryption at rest, audit watches, firewall, data permissions,
updates and time."""

from __future__ import annotations

from pydantic import Field

from audit.errors import Unavailable
from audit.facts.host_data import DataLocationParams
from audit.facts.host_firewall import FirewallFacts, firewall_facts
from audit.facts.host_maintenance import (
    PendingUpdates,
    TimeSyncFacts,
    pending_updates,
    time_sync_facts,
)
from audit.facts.host_storage import (
    AuditFacts,
    DataPermissions,
    EncryptionFacts,
    LocationMount,
    WatchedData,
    covers,
    data_permissions,
    data_watches,
    disk_encryption_facts,
    permission_letters,
    world_access,
)
from audit.messages import Message, says
from audit.registry import (
    Finding,
    NoParams,
    Params,
    check,
    could_not_tell,
    failed,
    failed_on,
    not_applicable,
    passed,
)
from audit.vocabulary import Reason, Role


@check(id="hostsys.disk_encryption", title="MIS data is encrypted at rest",
       applies_to=Role.HOST, probe=disk_encryption_facts, params=DataLocationParams)
def disk_encryption(facts: EncryptionFacts, p: DataLocationParams) -> Finding:
    """A stolen disk, server or backup image must not give away patient records. Put every
    data location (the MIS's, the database's data directory, the PACS storage) on a LUKS
    volume (`/etc/crypttab`), mounted by `/etc/fstab`."""
    if not facts.mounts:
        return not_applicable(facts.locations.none_found(p.conventional_paths),
                              **facts.locations.evidence())
    observed = [mount.observed() for mount in facts.mounts]
    expected = "every data location on a LUKS volume, mounted as /etc/fstab says"
    problems = [problem for mount in facts.mounts if (problem := _encryption_problem(mount))]
    evidence = {"observed": observed, "expected": expected, "crypttab": facts.crypttab,
                **facts.locations.evidence()}
    if problems:
        return failed_on(problems, **evidence)
    return passed(says("{count} data location(s) on encrypted volumes: {locations}",
                       count=len(facts.mounts), locations=", ".join(
                           f"{m.location.path} ({m.crypt_layers[0]})" for m in facts.mounts)),
                  **evidence)


def _encryption_problem(mount: LocationMount) -> Message | None:
    path = mount.location.path
    if mount.disagreement:
        return says("{path}: {disagreement}", path=path, disagreement=mount.disagreement)
    if mount.mountpoint is None:
        return says("no mount in /etc/fstab holds {path}", path=path)
    if not mount.crypt_layers:
        return says("{path} is on {device} mounted at {mountpoint}, not encrypted", path=path,
                    device=str(mount.device), mountpoint=mount.mountpoint)
    return None


class AuditRulesParams(DataLocationParams):
    """The audit permissions a watch on the data must cover (r read, w write, a attributes)."""

    permissions: str = Field(default="wa", pattern=r"^[rwxa]+$")


@check(id="hostsys.audit_rules", title="Access to MIS data is audited", applies_to=Role.HOST,
       probe=data_watches, params=AuditRulesParams)
def audit_rules(facts: WatchedData, p: AuditRulesParams) -> Finding:
    """Without an audit trail nobody can tell who changed or copied patient records. Add an
    auditd watch on every data location, e.g. `-w /srv/mis -p wa -k mis-data` in
    /etc/audit/rules.d/."""
    audit, locations = facts.audit, facts.locations
    if not locations.present:
        return not_applicable(locations.none_found(p.conventional_paths), **locations.evidence())
    required = permission_letters(p.permissions)
    paths = [location.path for location in locations.present]
    relevant = [w for w in audit.watches if any(covers(w.path, path) for path in paths)]
    evidence = {"observed": [f"{w.location}: {w.path} -p {w.permissions}" for w in relevant],
                "expected": f"a watch with permissions {p.permissions} on every data location",
                "source": audit.source, "files": audit.files, **locations.evidence()}
    if audit.disabled_at:
        return failed(says("auditing is switched off ({location}: -e 0)",
                           location=audit.disabled_at), **evidence)
    problems = [problem for path in paths if (problem := _watch_problem(audit, path, required))]
    if problems:
        return failed_on(problems, **evidence)
    where = says("loaded in the kernel") if audit.loaded is not None else says("rule files")
    return passed(says("{count} data location(s) watched ({where}): {paths}", count=len(paths),
                       where=where, paths=", ".join(paths)), **evidence)


def _watch_problem(audit: AuditFacts, path: str, required: set[str]) -> Message | None:
    relevant = [w for w in audit.watches if covers(w.path, path)]
    if not relevant:
        return says("no audit watch covers {path}", path=path)
    if not any(required <= permission_letters(w.permissions) for w in relevant):
        return says("the watch on {path} misses permissions {permissions}", path=path,
                    permissions="".join(sorted(required)))
    # the kernel's rules decided; files that say otherwise are shown, and never passed
    disagreement = audit.disagreement(lambda w: covers(w.path, path))
    if disagreement:
        return says("the rule files and the loaded rules disagree on {path}: {disagreement}",
                    path=path, disagreement=disagreement)
    return None


class FirewallParams(Params):
    """Input chain policies that count as deny by default."""

    deny_policies: list[str] = Field(default_factory=lambda: ["drop", "reject"])


@check(id="hostsys.firewall", title="The host firewall denies incoming traffic by default",
       applies_to=Role.HOST, probe=firewall_facts, params=FirewallParams)
def firewall(facts: FirewallFacts, p: FirewallParams) -> Finding:
    """A default-deny input policy keeps a service started by mistake (a database, a debug
    port) unreachable. Set `policy drop` on the input chain (nftables) or `:INPUT DROP`
    (iptables), allow the needed services, and save the rules so they survive a reboot."""
    observed = {"source": facts.source, "input_policy": facts.input_policy,
                "ends_in_deny": facts.ends_in_deny, "allowed": facts.allowed}
    expected = f"input policy in {p.deny_policies} (or a final deny-all rule)"
    if facts.source == "none":
        return failed(says("no firewall rules found (live or saved)"), observed=observed,
                      expected=expected)
    deny = (facts.input_policy or "").lower() in p.deny_policies or facts.ends_in_deny
    if not deny:
        policy = facts.input_policy or says("absent")
        return failed(says("input policy is {policy} ({source})", policy=policy,
                           source=facts.source),
                      observed=observed, expected=expected, location=facts.location)
    allowed = ", ".join(facts.allowed) or says("nothing")
    return passed(says("input denied by default; allowed: {allowed}", allowed=allowed),
                  observed=observed, expected=expected, location=facts.location)


@check(id="hostsys.data_permissions", title="Patient data is not world-readable",
       applies_to=Role.HOST, probe=data_permissions, params=DataLocationParams)
def data_permissions_check(facts: DataPermissions, p: DataLocationParams) -> Finding:
    """Any local account (a compromised web worker, a clinician's shell) can read files
    that are world-readable. Remove the "other" bits: `chmod -R o-rwx` on the data
    locations, owned by the service account and its group."""
    if not facts.entries:
        return not_applicable(facts.locations.none_found(p.conventional_paths),
                              **facts.locations.evidence())
    # An entry inside a directory others cannot enter is out of their reach whatever its bits.
    reachable = [entry for entry in facts.entries if facts.reachable(entry)]
    open_entries = [f"{entry.path} ({oct(entry.mode)}: other {world_access(entry.mode)})"
                    for entry in reachable if entry.known and world_access(entry.mode)]
    unseen = [entry.path for entry in reachable if not entry.known]
    evidence = {"observed": open_entries, "expected": "no read or write for other users",
                **facts.locations.evidence()}
    if open_entries:
        return failed(says("{count} data path(s) open to every user", count=len(open_entries)),
                      **evidence)
    if unseen:
        # listed by name only (sudo ls): a mode not seen is never a pass
        return could_not_tell(Unavailable(Reason.PERMISSION_DENIED, says(
            "the modes of {count} data path(s) others may reach could not be read: {paths}",
            count=len(unseen), paths=", ".join(unseen[:5]))), **evidence)
    return passed(says("{count} data path(s) closed to other users", count=len(facts.entries)),
                  **evidence)


class UpdatesParams(Params):
    """How many pending security updates are tolerated."""

    max_security_updates: int = Field(default=0, ge=0)


@check(id="hostsys.security_updates", title="Security updates are installed",
       applies_to=Role.HOST, probe=pending_updates, params=UpdatesParams)
def security_updates(facts: PendingUpdates, p: UpdatesParams) -> Finding:
    """Known vulnerabilities with published fixes are the first thing attackers try.
    Install security updates promptly (unattended-upgrades). The count comes from the
    host's own package lists, as fresh as its last `apt-get update`."""
    expected = f"at most {p.max_security_updates} pending security updates"
    if len(facts.security) > p.max_security_updates:
        return failed(says("{count} security update(s) pending", count=len(facts.security)),
                      observed=facts.security, expected=expected, total_pending=facts.total)
    return passed(says("{count} security update(s) pending", count=len(facts.security)),
                  observed=facts.security,
                  expected=expected, total_pending=facts.total)


@check(id="hostsys.time_sync", title="The clock is synchronised", applies_to=Role.HOST,
       probe=time_sync_facts, params=NoParams)
def time_sync(facts: TimeSyncFacts, p: NoParams) -> Finding:
    """Logs from several machines can only be put in order, and certificates and OTP codes
    only checked, when clocks agree. Enable chrony or systemd-timesyncd with reachable
    servers."""
    observed = {"source": facts.source, "synchronized": facts.synchronized,
                "services": facts.enabled_services, "servers": facts.servers,
                "running": facts.running_services}
    expected = "synchronised by NTP"
    if facts.synchronized is not None:
        if facts.synchronized:
            return passed(says("the clock is NTP-synchronised"), observed=observed,
                          expected=expected)
        return failed(says("the clock is not NTP-synchronised"), observed=observed,
                      expected=expected)
    stopped = [u for u in facts.enabled_services if facts.running_services is not None
               and u not in facts.running_services]
    if stopped and not facts.running_services:
        # configuration the running system contradicts is never a pass
        return failed(says("{services} enabled but not running (systemctl)",
                           services=", ".join(stopped)),
                      observed=observed, expected=expected)
    # systemd-timesyncd has built-in servers; the other daemons need configured ones.
    if facts.enabled_services and (facts.servers or "systemd-timesyncd.service"
                                   in facts.enabled_services):
        return passed(says("{services} enabled", services=", ".join(facts.enabled_services)),
                      observed=observed,
                      expected=expected)
    return failed(says("no time synchronisation service is enabled") if not
                  facts.enabled_services else says("time service enabled without servers"), observed=observed,
                  expected=expected)
