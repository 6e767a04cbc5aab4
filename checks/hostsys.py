"""Host system measures: encryption at rest, audit watches, firewall, data permissions,
updates and time."""

from __future__ import annotations

from pydantic import Field

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
    audit_facts,
    covers,
    data_permissions,
    disk_encryption_facts,
    permission_letters,
    world_access,
)
from audit.registry import Finding, NoParams, Params, check, failed, not_applicable, passed
from audit.vocabulary import Role

DEFAULT_DATA_PATH = "/srv/mis"


class DataPathParams(Params):
    """Where the MIS keeps its data (database files, documents, images)."""

    data_path: str = Field(default=DEFAULT_DATA_PATH, pattern=r"^/")


@check(id="hostsys.disk_encryption", title="MIS data is encrypted at rest",
       applies_to=Role.HOST, probe=disk_encryption_facts, params=DataPathParams)
def disk_encryption(facts: EncryptionFacts, p: DataPathParams) -> Finding:
    """A stolen disk, server or backup image must not give away patient records. Put the
    MIS data on a LUKS volume (`/etc/crypttab`), mounted by `/etc/fstab` at the data path."""
    observed = {"mountpoint": facts.mountpoint, "device": facts.device, "source": facts.source,
                "encryption": facts.crypt_layers}
    expected = f"a LUKS volume under {p.data_path}"
    if facts.mountpoint is None:
        return failed(f"no mount in /etc/fstab holds {p.data_path}", observed=observed,
                      expected=expected, crypttab=facts.crypttab)
    if not facts.crypt_layers:
        return failed(f"{facts.device} mounted at {facts.mountpoint} is not encrypted",
                      observed=observed, expected=expected, location=facts.location,
                      crypttab=facts.crypttab)
    return passed(f"{facts.mountpoint} is on an encrypted volume ({facts.crypt_layers[0]})",
                  observed=observed, expected=expected, location=facts.location)


class AuditRulesParams(DataPathParams):
    """The audit permissions a watch on the data must cover (r read, w write, a attributes)."""

    permissions: str = Field(default="wa", pattern=r"^[rwxa]+$")


@check(id="hostsys.audit_rules", title="Access to MIS data is audited", applies_to=Role.HOST,
       probe=audit_facts, params=AuditRulesParams)
def audit_rules(facts: AuditFacts, p: AuditRulesParams) -> Finding:
    """Without an audit trail nobody can tell who changed or copied patient records. Add an
    auditd watch, e.g. `-w /srv/mis -p wa -k mis-data` in /etc/audit/rules.d/."""
    required = permission_letters(p.permissions)
    relevant = [w for w in facts.watches if covers(w.path, p.data_path)]
    sufficient = [w for w in relevant if required <= permission_letters(w.permissions)]
    observed = [f"{w.location}: {w.path} -p {w.permissions}" for w in relevant]
    expected = f"a watch on {p.data_path} with permissions {p.permissions}"
    if facts.disabled_at:
        return failed(f"auditing is switched off ({facts.disabled_at}: -e 0)", observed=observed,
                      expected=expected, source=facts.source)
    if not sufficient:
        summary = (f"no audit watch covers {p.data_path}" if not relevant else
                   f"the watch on {p.data_path} misses permissions {p.permissions}")
        return failed(summary, observed=observed, expected=expected, source=facts.source,
                      files=facts.files)
    # the kernel's rules decided; files that say otherwise are shown, and never passed
    disagreement = facts.disagreement(lambda w: covers(w.path, p.data_path))
    if disagreement:
        return failed(f"the rule files and the loaded rules disagree on {p.data_path}: "
                      f"{disagreement}", observed=observed, expected=expected,
                      source=facts.source, files=facts.files)
    return passed(f"{sufficient[0].path} watched (-p {sufficient[0].permissions}, "
                  f"{'loaded in the kernel' if facts.loaded is not None else 'rule files'})",
                  observed=observed, expected=expected, source=facts.source,
                  files=facts.files)


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
        return failed("no firewall rules found (live or saved)", observed=observed,
                      expected=expected)
    deny = (facts.input_policy or "").lower() in p.deny_policies or facts.ends_in_deny
    if not deny:
        return failed(f"input policy is {facts.input_policy or 'absent'} ({facts.source})",
                      observed=observed, expected=expected, location=facts.location)
    return passed(f"input denied by default; allowed: {', '.join(facts.allowed) or 'nothing'}",
                  observed=observed, expected=expected, location=facts.location)


class DataPermissionsParams(Params):
    """Directories that hold patient data."""

    data_paths: list[str] = Field(default_factory=lambda: [DEFAULT_DATA_PATH], min_length=1)


@check(id="hostsys.data_permissions", title="Patient data is not world-readable",
       applies_to=Role.HOST, probe=data_permissions, params=DataPermissionsParams)
def data_permissions_check(facts: DataPermissions, p: DataPermissionsParams) -> Finding:
    """Any local account (a compromised web worker, a clinician's shell) can read files
    that are world-readable. Remove the "other" bits: `chmod -R o-rwx` on the data
    directories, owned by the MIS service account and its group."""
    if not facts.entries:
        return not_applicable(f"no data directory on this host ({', '.join(facts.missing)})")
    modes = {entry.path: entry.mode for entry in facts.entries}
    # An entry inside a directory others cannot enter is out of their reach whatever its bits.
    open_entries = [f"{entry.path} ({oct(entry.mode)}: other {world_access(entry.mode)})"
                    for entry in facts.entries if world_access(entry.mode)
                    and modes.get(entry.path.rsplit("/", 1)[0], 0o001) & 0o001]
    expected = "no read or write for other users"
    if open_entries:
        return failed(f"{len(open_entries)} data path(s) open to every user",
                      observed=open_entries, expected=expected, missing=facts.missing)
    return passed(f"{len(facts.entries)} data path(s) closed to other users", observed=[],
                  expected=expected, missing=facts.missing)


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
        return failed(f"{len(facts.security)} security update(s) pending",
                      observed=facts.security, expected=expected, total_pending=facts.total)
    return passed(f"{len(facts.security)} security update(s) pending", observed=facts.security,
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
            return passed("the clock is NTP-synchronised", observed=observed, expected=expected)
        return failed("the clock is not NTP-synchronised", observed=observed, expected=expected)
    stopped = [u for u in facts.enabled_services if facts.running_services is not None
               and u not in facts.running_services]
    if stopped and not facts.running_services:
        # configuration the running system contradicts is never a pass
        return failed(f"{', '.join(stopped)} enabled but not running (systemctl)",
                      observed=observed, expected=expected)
    # systemd-timesyncd has built-in servers; the other daemons need configured ones.
    if facts.enabled_services and (facts.servers or "systemd-timesyncd.service"
                                   in facts.enabled_services):
        return passed(f"{', '.join(facts.enabled_services)} enabled", observed=observed,
                      expected=expected)
    return failed("no time synchronisation service is enabled" if not facts.enabled_services
                  else "time service enabled without servers", observed=observed,
                  expected=expected)
