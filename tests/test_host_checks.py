"""Host checks as pure functions over hand-built facts, and the parsers behind the facts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from audit.facts.host import ListeningSocket, LoginDefs, MatchBlock, SshdConfig, SshdOption
from audit.facts.host_auth import (
    PamRule,
    PasswordPolicy,
    ShadowEntry,
    SshMfaFacts,
    SudoersFacts,
    SudoGrant,
    _grants,
    parse_shadow,
)
from audit.facts.host_data import DataLocation, DataLocations
from audit.facts.host_databases import (
    DatabaseConfigs,
    HbaLine,
    PostgresCluster,
    Setting,
    parse_pg_hba,
)
from audit.facts.host_firewall import FirewallFacts, parse_iptables, parse_nft
from audit.facts.host_maintenance import PendingUpdates, TimeSyncFacts, parse_apt_simulate
from audit.facts.host_storage import (
    AuditFacts,
    AuditRule,
    DataPermissions,
    EncryptionFacts,
    LocationMount,
    PathMode,
    WatchedData,
    _live_mount,
    parse_audit_rules,
)
from audit.registry import NoParams
from audit.vocabulary import Status
from checks import host, hostdb, hostsys


def sshd(options: dict[str, str], blocks: list[MatchBlock] | None = None) -> SshdConfig:
    """An sshd configuration as if read from files."""
    return SshdConfig("files", {key.lower(): SshdOption(value, f"sshd_config:{index}")
                                for index, (key, value) in enumerate(options.items(), 1)},
                      blocks or [])


OTP = PamRule("auth", "required", "pam_google_authenticator.so", (), "/etc/pam.d/sshd:1")
MFA_ON = {"AuthenticationMethods": "publickey,keyboard-interactive",
          "KbdInteractiveAuthentication": "yes", "UsePAM": "yes"}


@pytest.mark.parametrize(("options", "rules", "status"), [
    (MFA_ON, [OTP], Status.PASS),
    ({**MFA_ON, "AuthenticationMethods": "publickey"}, [OTP], Status.FAIL),
    ({**MFA_ON, "AuthenticationMethods": "publickey,keyboard-interactive password"}, [OTP],
     Status.FAIL),
    ({**MFA_ON, "UsePAM": "no"}, [OTP], Status.FAIL),
    (MFA_ON, [PamRule("auth", "optional", OTP.module, (), "x:1")], Status.FAIL),
    (MFA_ON, [PamRule("auth", "required", OTP.module, ("nullok",), "x:1")], Status.FAIL),
    (MFA_ON, [], Status.FAIL),
    (MFA_ON, None, Status.FAIL),
])
def test_ssh_mfa(options: dict[str, str], rules: list[PamRule] | None, status: Status) -> None:
    finding = host.ssh_mfa(SshMfaFacts(sshd(options), rules), host.MfaParams())
    assert finding.status is status, finding.summary


def test_ssh_mfa_fails_on_a_match_block_with_one_factor() -> None:
    block = MatchBlock("User vendor", "sshd_config:20",
                       {"authenticationmethods": SshdOption("password", "sshd_config:21")})
    finding = host.ssh_mfa(SshMfaFacts(sshd(MFA_ON, [block]), [OTP]), host.MfaParams())
    assert finding.status is Status.FAIL
    assert "sshd_config:21 (Match User vendor)" in finding.details["problems"][0]


def key_only(criteria: str) -> MatchBlock:
    """A Match block letting its connections in with a key alone."""
    return MatchBlock(criteria, "sshd_config:30",
                      {"authenticationmethods": SshdOption("publickey", "sshd_config:31")})


def test_the_audit_accounts_own_exemption_is_shown_not_failed() -> None:
    facts = SshMfaFacts(sshd(MFA_ON, [key_only("User auditor")]), [OTP], audit_account="auditor")
    finding = host.ssh_mfa(facts, host.MfaParams())
    assert finding.status is Status.PASS, finding.summary
    assert finding.observed["exemptions"] == [(
        "sshd_config:31 (Match User auditor): AuthenticationMethods publickey "
        "(the audit's own account)")]
    # offline, or audited as another account, the same block is an exemption no one decided
    assert host.ssh_mfa(SshMfaFacts(sshd(MFA_ON, [key_only("User auditor")]), [OTP]),
                        host.MfaParams()).status is Status.FAIL
    for criteria in ("User auditor,nurse_k", "User audit*", "Group auditors",
                     "Address 10.0.0.0/8"):
        blocked = SshMfaFacts(sshd(MFA_ON, [key_only(criteria)]), [OTP], audit_account="auditor")
        assert host.ssh_mfa(blocked, host.MfaParams()).status is Status.FAIL, criteria
    # an exemption the profile lists (a break-glass account) is shown too
    narrowed = SshMfaFacts(sshd(MFA_ON, [key_only("User breakglass Address 10.0.0.5")]), [OTP])
    listed = host.ssh_mfa(narrowed, host.MfaParams(exempt_users=["breakglass"]))
    assert listed.status is Status.PASS and listed.observed["exemptions"][0].endswith("(exempt)")


def policy(days: str, shadow: list[ShadowEntry] | None) -> PasswordPolicy:
    """login.defs with PASS_MAX_DAYS and an optional shadow."""
    return PasswordPolicy(LoginDefs({"PASS_MAX_DAYS": days}, {}), shadow)


def test_password_max_age_per_user() -> None:
    params = host.PasswordAgeParams(max_days=90)
    good = [ShadowEntry("a", True, 60, "s:1"), ShadowEntry("locked", False, None, "s:2")]
    assert host.password_max_age(policy("90", good), params).status is Status.PASS
    assert host.password_max_age(policy("90", None), params).status is Status.PASS
    bad = host.password_max_age(policy("90", [*good, ShadowEntry("b", True, None, "s:3")]),
                                params)
    assert bad.status is Status.FAIL and bad.details["accounts"] == ["b: never (s:3)"]
    assert host.password_max_age(policy("99999", good), params).status is Status.FAIL


def test_parse_shadow_keeps_no_hash() -> None:
    entries = parse_shadow("alice:$6$salt$hash:19000:0:90:7:::\nbob:!$6$x:19000:0::7:::\n")
    assert entries == [ShadowEntry("alice", True, 90, "/etc/shadow:1"),
                       ShadowEntry("bob", False, None, "/etc/shadow:2")]
    assert "hash" not in repr(entries)


def grant(principals: tuple[str, ...], commands: tuple[str, ...], nopasswd: bool = False,
          location: str = "/etc/sudoers:1") -> SudoGrant:
    """A sudo grant."""
    return SudoGrant(principals, "ALL", commands, nopasswd, location, "text")


GROUPS = {"sudo": ["admin"], "clinicians": ["doctor"], "users": []}


@pytest.mark.parametrize(("grants", "groups", "status"), [
    ([grant(("root",), ("ALL",)), grant(("%sudo",), ("ALL",))], GROUPS, Status.PASS),
    ([grant(("%clinicians",), ("/usr/local/bin/report",), nopasswd=True)], GROUPS, Status.PASS),
    ([grant(("%clinicians",), ("ALL",))], GROUPS, Status.FAIL),
    ([grant(("doctor",), ("/bin/bash",))], GROUPS, Status.FAIL),
    ([grant(("ALL",), ("ALL",))], GROUPS, Status.FAIL),
    ([grant(("%sudo",), ("ALL",), nopasswd=True)], GROUPS, Status.FAIL),
    ([grant(("%sudo",), ("ALL",))], {**GROUPS, "clinicians": ["doctor", "admin"]}, Status.FAIL),
])
def test_role_separation(grants: list[SudoGrant], groups: dict[str, list[str]],
                         status: Status) -> None:
    finding = host.role_separation(SudoersFacts(grants, groups, []), host.RoleSeparationParams())
    assert finding.status is status, finding.summary


def test_admin_groups_are_recognised_by_name_or_declaration() -> None:
    groups = {"it-admins": ["ops"], "his-root-admins": ["dba"], "clinicians": ["doctor"],
              "backup-ops": ["tape"]}
    params = host.RoleSeparationParams()
    for group in ("it-admins", "his-root-admins"):
        finding = host.role_separation(SudoersFacts([grant((f"%{group}",), ("ALL",))], groups,
                                                    []), params)
        assert finding.status is Status.PASS, finding.summary
        assert group in finding.observed["admin_groups"]
    clinical = host.role_separation(SudoersFacts([grant(("%clinicians",), ("ALL",))], groups,
                                                 []), params)
    assert clinical.status is Status.FAIL and "clinicians holds ordinary" in clinical.summary
    neither = host.role_separation(SudoersFacts([grant(("%backup-ops",), ("ALL",))], groups, []),
                                   params)
    assert neither.status is Status.FAIL and "list it in the target's admin_groups" in \
        neither.summary
    declared = host.RoleSeparationParams(admin_groups=["backup-ops"])
    assert host.role_separation(SudoersFacts([grant(("%backup-ops",), ("ALL",))], groups, []),
                                declared).status is Status.PASS
    by_the_target = SudoersFacts([grant(("%backup-ops",), ("ALL",))], groups, [], ["backup-ops"])
    assert host.role_separation(by_the_target, params).status is Status.PASS


def test_sudoers_grants_expand_aliases_and_tags() -> None:
    aliases = {"ADMINS": ["alice", "%ops"], "SHELLS": ["/bin/sh", "/bin/bash"]}
    (first, second) = _grants("ADMINS ALL = (root) NOPASSWD: SHELLS, (postgres) PASSWD: /bin/ls",
                              "/etc/sudoers:7", aliases)
    assert first.principals == ("alice", "%ops") and first.commands == ("/bin/sh", "/bin/bash")
    assert first.nopasswd and first.runas == "root"
    assert second.runas == "postgres" and not second.nopasswd and second.commands == ("/bin/ls",)


def test_firewall_parsers() -> None:
    nft = parse_nft("table inet filter {\n chain input {\n  type filter hook input priority 0;"
                    " policy accept;\n  tcp dport { 22, 443 } accept\n  counter drop\n }\n}\n", "f")
    assert (nft.input_policy, nft.ends_in_deny, nft.allowed) == \
        ("accept", True, ["tcp dport { 22, 443 }"])
    ipt = parse_iptables("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -m multiport --dports "
                         "22,443 -j ACCEPT\n-A INPUT -s 10.0.0.1 -j DROP\nCOMMIT\n", "r")
    assert (ipt.input_policy, ipt.ends_in_deny, ipt.allowed) == ("drop", False, ["tcp dport 22,443"])
    assert parse_nft("table ip nat {\n}\n", "f").input_policy is None


@pytest.mark.parametrize(("facts", "status"), [
    (FirewallFacts("f", "drop", False, ["tcp dport 22"], "f:3"), Status.PASS),
    (FirewallFacts("f", "accept", True, [], "f:3"), Status.PASS),
    (FirewallFacts("f", "accept", False, [], "f:3"), Status.FAIL),
    (FirewallFacts("none", None, False, [], None), Status.FAIL),
])
def test_firewall(facts: FirewallFacts, status: Status) -> None:
    assert hostsys.firewall(facts, hostsys.FirewallParams()).status is status


def located(*paths: str) -> DataLocations:
    """Data locations found as conventional ones."""
    return DataLocations([DataLocation(path, ("conventional location",)) for path in paths],
                         [], [])


def test_disk_encryption() -> None:
    params = hostsys.DataLocationParams()
    mis, orthanc = located("/srv/mis", "/var/lib/orthanc/db").present
    encrypted = LocationMount(mis, "lsblk", "/srv", "data", None, ["data (crypt)"])
    plain = LocationMount(orthanc, "files", "/", "/dev/sda1", "fstab:1", [])
    both = located("/srv/mis", "/var/lib/orthanc/db")
    assert hostsys.disk_encryption(EncryptionFacts([encrypted], both, []), params).status \
        is Status.PASS
    finding = hostsys.disk_encryption(EncryptionFacts([encrypted, plain], both, []), params)
    assert finding.status is Status.FAIL
    assert finding.summary == "/var/lib/orthanc/db is on /dev/sda1 mounted at /, not encrypted"
    unmounted = LocationMount(mis, "files", None, None, None, [])
    assert hostsys.disk_encryption(EncryptionFacts([unmounted], both, []), params).status \
        is Status.FAIL
    drifted = replace(encrypted, disagreement="fstab:2 mounts x at /srv/mis, but ...")
    assert hostsys.disk_encryption(EncryptionFacts([drifted], both, []), params).status \
        is Status.FAIL
    nothing = hostsys.disk_encryption(EncryptionFacts([], located(), []), params)
    assert nothing.status is Status.NOT_APPLICABLE and "data_paths" in nothing.summary


def test_lsblk_crypt_chain() -> None:
    tree = [{"name": "sda", "type": "disk", "children": [
        {"name": "sda2", "type": "part", "children": [
            {"name": "data_crypt", "type": "crypt", "children": [
                {"name": "vg-mis", "type": "lvm", "mountpoint": "/srv/mis"}]}]},
        {"name": "sda1", "type": "part", "mountpoint": "/"}]}]
    mountpoint, chain = _live_mount(tree, "/srv/mis/data") or ("", [])
    assert mountpoint == "/srv/mis"
    assert [device["name"] for device in chain] == ["sda", "sda2", "data_crypt", "vg-mis"]
    assert (_live_mount(tree, "/var/lib") or ("", []))[0] == "/"
    assert _live_mount([], "/srv/mis") is None


def test_audit_rules_parser_and_check() -> None:
    watches, disabled = parse_audit_rules(
        "-w /srv/mis -p wa -k mis\n-a always,exit -F arch=b64 -F dir=/srv -F perm=r\n-e 0\n", "r")
    assert [(w.path, w.permissions) for w in watches] == [("/srv/mis", "wa"), ("/srv", "r")]
    assert disabled == "r:3"
    params = hostsys.AuditRulesParams(permissions="wa")
    data = located("/srv/mis/data")
    on = AuditFacts("files", [AuditRule("/srv/mis", "wa", "mis", "r:1")], None, [])
    assert hostsys.audit_rules(WatchedData(on, data), params).status is Status.PASS
    off = AuditFacts("files", on.watches, "r:3", [])
    assert hostsys.audit_rules(WatchedData(off, data), params).status is Status.FAIL
    read_only = AuditFacts("files", [AuditRule("/srv", "r", None, "r:2")], None, [])
    assert hostsys.audit_rules(WatchedData(read_only, data), params).status is Status.FAIL
    partly = hostsys.audit_rules(WatchedData(on, located("/srv/mis", "/var/lib/pg")), params)
    assert partly.status is Status.FAIL and partly.summary == "no audit watch covers /var/lib/pg"


def test_data_permissions() -> None:
    params = hostsys.DataLocationParams()
    data = located("/srv/mis")
    closed = DataPermissions([PathMode("/srv/mis", 0o750, True),
                              PathMode("/srv/mis/scan.dcm", 0o644, False)], data)
    assert hostsys.data_permissions_check(closed, params).status is Status.PASS
    open_dir = DataPermissions([PathMode("/srv/mis", 0o755, True)], data)
    assert hostsys.data_permissions_check(open_dir, params).status is Status.FAIL
    # listed by name only (sudo ls): a mode not seen is never a pass, unless others cannot
    # reach it anyway
    unseen = DataPermissions([PathMode("/srv/mis", 0, False, known=False)], data,
                             {"/srv/mis": PathMode("/srv", 0o755, True)})
    finding = hostsys.data_permissions_check(unseen, params)
    assert finding.status is Status.ERROR and "could not be read: /srv/mis" in finding.summary
    guarded = DataPermissions([PathMode("/srv/mis", 0, False, known=False)], data,
                              {"/srv/mis": PathMode("/srv", 0o750, True)})
    assert hostsys.data_permissions_check(guarded, params).status is Status.PASS
    absent = DataPermissions([], DataLocations([], [DataLocation("/srv/x", ("inventory",))], []))
    finding = hostsys.data_permissions_check(absent, params)
    assert finding.status is Status.NOT_APPLICABLE and "/srv/x (inventory)" in finding.summary


def test_security_updates() -> None:
    text = ("Inst libssl3 [3.0.11-1] (3.0.13-1 Debian-Security:12/stable-security [amd64])\n"
            "Inst tzdata [2024a] (2024b Debian:12.7/stable [all])\nConf libssl3\n")
    updates = parse_apt_simulate(text)
    assert updates == PendingUpdates(["libssl3"], 2)
    assert hostsys.security_updates(updates, hostsys.UpdatesParams()).status is Status.FAIL
    assert hostsys.security_updates(PendingUpdates([], 1), hostsys.UpdatesParams()).status \
        is Status.PASS


@pytest.mark.parametrize(("facts", "status"), [
    (TimeSyncFacts("timedatectl show", True, [], []), Status.PASS),
    (TimeSyncFacts("timedatectl show", False, [], []), Status.FAIL),
    (TimeSyncFacts("files", None, ["systemd-timesyncd.service"], []), Status.PASS),
    (TimeSyncFacts("files", None, ["chrony.service"], []), Status.FAIL),
    (TimeSyncFacts("files", None, [], ["chrony.conf:1: pool x"]), Status.FAIL),
])
def test_time_sync(facts: TimeSyncFacts, status: Status) -> None:
    assert hostsys.time_sync(facts, NoParams()).status is status


def databases(**changes: object) -> DatabaseConfigs:
    """A host with hardened PostgreSQL, MariaDB and Redis configurations, then `changes`."""
    hardened = DatabaseConfigs(
        postgres=[PostgresCluster("/etc/postgresql/15/main", Setting("on", "c:1"),
                                  [HbaLine("hostssl", "all", "all", "scram-sha-256", "h:1", "x")])],
        mysql_files=["/etc/mysql/my.cnf"], mysql_secure_transport=Setting("ON", "m:2"),
        redis_file="/etc/redis/redis.conf", redis_password_set=True, redis_protected_mode=None,
        redis_bind=None)
    return replace(hardened, **changes)  # type: ignore[arg-type]


def test_database_checks_pass_and_fail() -> None:
    good = databases()
    assert hostdb.pg_hba_trust(good, hostdb.HbaParams()).status is Status.PASS
    assert hostdb.postgres_ssl(good, NoParams()).status is Status.PASS
    assert hostdb.mysql_secure_transport(good, NoParams()).status is Status.PASS
    assert hostdb.redis_auth(good, NoParams()).status is Status.PASS
    trust = databases(postgres=[PostgresCluster("d", None, parse_pg_hba(
        "host all all 0.0.0.0/0 trust\nhost all all 10.0.0.0 255.0.0.0 md5\n", "h"))])
    assert hostdb.pg_hba_trust(trust, hostdb.HbaParams()).observed == \
        ["h:1: host all all 0.0.0.0/0 trust"]
    assert hostdb.postgres_ssl(trust, NoParams()).status is Status.FAIL
    assert hostdb.mysql_secure_transport(databases(mysql_secure_transport=None),
                                         NoParams()).status is Status.FAIL
    assert hostdb.redis_auth(databases(redis_password_set=False), NoParams()).status \
        is Status.FAIL
    none = databases(postgres=[], mysql_files=[], redis_file=None)
    for finding in (hostdb.pg_hba_trust(none, hostdb.HbaParams()),
                    hostdb.postgres_ssl(none, NoParams()),
                    hostdb.mysql_secure_transport(none, NoParams()),
                    hostdb.redis_auth(none, NoParams())):
        assert finding.status is Status.NOT_APPLICABLE


def test_ssh_root_login_and_password_auth_see_match_blocks() -> None:
    hardened = sshd({"PermitRootLogin": "no", "PasswordAuthentication": "no"})
    assert host.ssh_root_login(hardened, host.RootLoginParams()).status is Status.PASS
    assert host.ssh_password_auth(hardened, NoParams()).status is Status.PASS
    assert host.ssh_root_login(sshd({}), host.RootLoginParams()).status is Status.FAIL
    assert host.ssh_password_auth(sshd({}), NoParams()).status is Status.FAIL
    block = MatchBlock("Address 10.0.0.0/8", "sshd_config:9", {
        "permitrootlogin": SshdOption("yes", "sshd_config:10"),
        "passwordauthentication": SshdOption("yes", "sshd_config:11")})
    excepted = sshd({"PermitRootLogin": "no", "PasswordAuthentication": "no"}, [block])
    root = host.ssh_root_login(excepted, host.RootLoginParams())
    assert root.status is Status.FAIL
    assert root.details["match_blocks"] == ["sshd_config:10 (Match Address 10.0.0.0/8): yes"]
    assert host.ssh_password_auth(excepted, NoParams()).status is Status.FAIL


def test_ssh_idle_timeout_from_client_alive_or_channel_timeout() -> None:
    params = host.IdleTimeoutParams()
    assert host.ssh_idle_timeout(sshd({}), params).status is Status.FAIL      # sshd: never
    assert host.ssh_idle_timeout(sshd({"ClientAliveInterval": "300"}), params).status \
        is Status.PASS                                                        # 300 s x 3
    assert host.ssh_idle_timeout(sshd({"ClientAliveInterval": "10m"}), params).status \
        is Status.FAIL                                                        # 30 minutes
    assert host.ssh_idle_timeout(sshd({"ClientAliveInterval": "5m",
                                       "ClientAliveCountMax": "0"}), params).status \
        is Status.FAIL                                                        # 0: never
    unused = host.ssh_idle_timeout(sshd({"ChannelTimeout": "session=15m"}), params)
    assert unused.status is Status.PASS and unused.summary == "unused sessions end after 900 s"
    assert host.ssh_idle_timeout(sshd({"ChannelTimeout": "agent-connection=5m"}), params) \
        .status is Status.FAIL
    assert host.sshd_seconds("1h30m") == 5400 and host.sshd_seconds("5x") is None
    block = MatchBlock("User vendor", "sshd_config:9", {
        "clientaliveinterval": SshdOption("0", "sshd_config:10")})
    excepted = host.ssh_idle_timeout(sshd({"ClientAliveInterval": "300"}, [block]), params)
    assert excepted.status is Status.FAIL
    assert excepted.details["match_blocks"] == [
        "sshd_config:10 (Match User vendor): ClientAliveInterval 0"]


def test_db_listening() -> None:
    params = host.ListeningDatabaseParams()
    loopback = [ListeningSocket(5432, "127.0.0.1"), ListeningSocket(22, "0.0.0.0")]
    assert host.db_listening(loopback, params).status is Status.PASS
    exposed = host.db_listening([ListeningSocket(6379, "0.0.0.0")], params)
    assert exposed.status is Status.FAIL and exposed.summary == "redis listening beyond loopback"


def test_time_sync_enabled_but_not_running_fails() -> None:
    stopped = TimeSyncFacts("files and systemctl is-active", None, ["chrony.service"],
                            ["/etc/chrony/chrony.conf:1: pool pool.ntp.org"], [])
    finding = hostsys.time_sync(stopped, NoParams())
    assert finding.status is Status.FAIL and "enabled but not running" in finding.summary
    running = replace(stopped, running_services=["chrony.service"])
    assert hostsys.time_sync(running, NoParams()).status is Status.PASS


def test_audit_rules_that_the_files_and_the_kernel_disagree_on_never_pass() -> None:
    params = hostsys.AuditRulesParams()
    data = located("/srv/mis")
    watch = AuditRule("/srv/mis", "wa", "mis", "/etc/audit/rules.d/mis.rules:1")
    loaded = AuditRule("/srv/mis", "wa", "mis", "auditctl -l:1")
    agreeing = AuditFacts("auditctl -l", [loaded], None, ["/etc/audit/rules.d/mis.rules"],
                          [watch], [loaded])
    finding = hostsys.audit_rules(WatchedData(agreeing, data), params)
    assert finding.status is Status.PASS and "loaded in the kernel" in finding.summary
    not_loaded = AuditFacts("auditctl -l", [loaded], None, ["/etc/audit/rules.d/mis.rules"],
                            [watch, AuditRule("/srv/mis", "rwa", None, "x:2")], [loaded])
    stale = hostsys.audit_rules(WatchedData(not_loaded, data), params)
    assert stale.status is Status.FAIL and "but not loaded: /srv/mis -p arw" in stale.summary
    lost = hostsys.audit_rules(
        WatchedData(AuditFacts("auditctl -l", [loaded], None, [], [], [loaded]), data), params)
    assert lost.status is Status.FAIL and "lost at the next boot" in lost.summary
    files_only = hostsys.audit_rules(
        WatchedData(AuditFacts("files", [watch], None, ["f"], [watch]), data), params)
    assert files_only.status is Status.PASS and "rule files" in files_only.summary
