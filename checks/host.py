"""Host configuration: remote access, passwords, services exposed by the host itself."""

from __future__ import annotations

import re

from pydantic import Field

from audit.facts.host import ListeningSocket, SshdConfig, listening_sockets, sshd_config
from audit.facts.host_auth import (
    PamRule,
    PasswordPolicy,
    SshMfaFacts,
    SudoersFacts,
    password_policy,
    ssh_mfa_facts,
    sudoers_facts,
)
from audit.messages import Text, says
from audit.registry import Finding, Params, check, failed, failed_on, passed
from audit.vocabulary import Role


class RootLoginParams(Params):
    """Which PermitRootLogin values are acceptable."""

    allowed: list[str] = Field(default_factory=lambda: ["no"])


def _overridden_in_match(config: SshdConfig, keyword: str, allowed: list[str]) -> list[str]:
    return [f"{option.location} (Match {block.criteria}): {option.value}"
            for block, option in config.overrides(keyword) if option.value.lower() not in allowed]


@check(id="host.ssh_root_login", title="SSH does not accept root logins", applies_to=Role.HOST,
       probe=sshd_config, params=RootLoginParams)
def ssh_root_login(config: SshdConfig, p: RootLoginParams) -> Finding:
    """Direct root logins leave no trace of who administered the host and give an attacker
    who guesses or steals one credential the whole machine. Set `PermitRootLogin no` and
    administer through named accounts with sudo."""
    value = (config.value("PermitRootLogin") or "prohibit-password").lower()
    allowed = [item.lower() for item in p.allowed]
    where = config.location("PermitRootLogin") or config.source
    exceptions = _overridden_in_match(config, "PermitRootLogin", allowed)
    if value not in allowed or exceptions:
        summary = says("PermitRootLogin is {value} in a Match block", value=value) \
            if exceptions else says("PermitRootLogin is {value}", value=value)
        return failed(summary, observed=value, expected=allowed, location=where,
                      match_blocks=exceptions)
    return passed(says("PermitRootLogin is {value}", value=value), observed=value,
                  expected=allowed, location=where)


@check(id="host.ssh_password_auth", title="SSH does not accept passwords alone",
       applies_to=Role.HOST, probe=sshd_config)
def ssh_password_auth(config: SshdConfig, p: Params) -> Finding:
    """Passwords can be guessed or phished; keys (with a second factor) cannot be guessed.
    Set `PasswordAuthentication no` (and `KbdInteractiveAuthentication` only for an OTP)."""
    value = (config.value("PasswordAuthentication") or "yes").lower()
    where = config.location("PasswordAuthentication") or config.source
    exceptions = _overridden_in_match(config, "PasswordAuthentication", ["no"])
    if value != "no" or exceptions:
        summary = says("PasswordAuthentication is {value} in a Match block", value=value) \
            if exceptions else says("PasswordAuthentication is {value}", value=value)
        return failed(summary, observed=value, expected="no", location=where,
                      match_blocks=exceptions)
    return passed(says("PasswordAuthentication is no"), observed=value, expected="no",
                  location=where)


class IdleTimeoutParams(Params):
    """How long an SSH session may sit unanswered or unused."""

    max_idle_seconds: int = Field(900, ge=1)


SSHD_TIME = re.compile(r"(\d+)([smhdw]?)", re.IGNORECASE)
SSHD_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def sshd_seconds(value: str) -> int | None:
    """An sshd time value ("300", "5m", "1h30m") in seconds; None when it is not one."""
    parts = SSHD_TIME.findall(value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        return None
    return sum(int(number) * SSHD_TIME_UNITS[unit.lower()] for number, unit in parts)


def _dead_session_limit(interval: str | None, count: str | None) -> int | None:
    """Seconds before sshd drops a client that stopped answering; None: never (an interval
    or, since OpenSSH 8.2, a count of 0 switches it off)."""
    seconds, answers = sshd_seconds(interval or "0"), (count or "3")
    return seconds * int(answers) if seconds and answers.isdigit() and int(answers) else None


def _unused_session_limit(channel_timeout: str | None) -> int | None:
    """Seconds an open but unused session channel lives (OpenSSH 9.2 ChannelTimeout)."""
    for rule in (channel_timeout or "").split():
        kind, _, limit = rule.partition("=")
        if kind in ("session", "session:*", "*"):
            return sshd_seconds(limit) or None
    return None


@check(id="host.ssh_idle_timeout", title="SSH sessions left idle are closed",
       applies_to=Role.HOST, probe=sshd_config, params=IdleTimeoutParams)
def ssh_idle_timeout(config: SshdConfig, p: IdleTimeoutParams) -> Finding:
    """An administrator's session left open on an unattended workstation is a logged-in
    root shell for whoever sits down next. Set `ClientAliveInterval 300` with
    `ClientAliveCountMax 3`, so sshd ends sessions whose client stopped answering within 15
    minutes, and on OpenSSH 9.2 or later `ChannelTimeout session=15m`, which also ends
    sessions that are open but unused (ClientAlive alone keeps an answering idle client)."""
    dead = _dead_session_limit(config.value("ClientAliveInterval"),
                               config.value("ClientAliveCountMax"))
    unused = _unused_session_limit(config.value("ChannelTimeout"))
    observed = {"ClientAliveInterval": config.value("ClientAliveInterval") or "0",
                "ClientAliveCountMax": config.value("ClientAliveCountMax") or "3",
                "ChannelTimeout": config.value("ChannelTimeout") or "none"}
    expected = f"sessions end within {p.max_idle_seconds} s"
    where = config.location("ClientAliveInterval") or config.source
    exceptions = [f"{option.location} (Match {block.criteria}): ClientAliveInterval "
                  f"{option.value}" for block, option in config.overrides("ClientAliveInterval")
                  if _dead_session_limit(option.value, config.value("ClientAliveCountMax"))
                  is None]
    limits = [limit for limit in (dead, unused) if limit is not None]
    if not limits or min(limits) > p.max_idle_seconds or exceptions:
        shown = says("{seconds} s", seconds=min(limits)) if limits else says("never")
        summary = says("idle SSH sessions end after {limit} (not in a Match block)",
                       limit=shown) if exceptions else \
            says("idle SSH sessions end after {limit}", limit=shown)
        return failed(summary, observed=observed, expected=expected, location=where,
                      match_blocks=exceptions)
    summary = says("unused sessions end after {seconds} s", seconds=min(limits)) \
        if unused is not None and unused == min(limits) else \
        says("unanswered sessions end after {seconds} s", seconds=min(limits))
    return passed(summary, observed=observed, expected=expected, location=where)


class PasswordAgeParams(Params):
    """The longest a password may live."""

    max_days: int = Field(default=90, ge=1, le=99999)


@check(id="host.password_max_age", title="Passwords expire", applies_to=Role.HOST,
       probe=password_policy, params=PasswordAgeParams)
def password_max_age(policy: PasswordPolicy, p: PasswordAgeParams) -> Finding:
    """A password that never expires stays valid long after it has leaked. Set
    `PASS_MAX_DAYS` in /etc/login.defs to the policy's maximum (it applies to new accounts)
    and `chage -M` for existing accounts, whose own maximum is in /etc/shadow."""
    days = policy.login_defs.integer("PASS_MAX_DAYS")
    where = policy.login_defs.locations.get("PASS_MAX_DAYS", "/etc/login.defs")
    expected = f"<= {p.max_days}"
    accounts = [f"{entry.user}: {entry.max_days if entry.max_days is not None else 'never'} "
                f"({entry.location})" for entry in policy.shadow or []
                if entry.usable_password and (entry.max_days is None or entry.max_days > p.max_days)]
    shadow = ("not read: " + (policy.shadow_note or "")) if policy.shadow is None \
        else f"{sum(e.usable_password for e in policy.shadow)} accounts with a password checked"
    if days is None or days > p.max_days:
        summary = says("PASS_MAX_DAYS is not set") if days is None else \
            says("PASS_MAX_DAYS is {days}", days=days)
        return failed(summary, observed=days, expected=expected, location=where,
                      accounts=accounts, shadow=shadow)
    if accounts:
        return failed(says("{count} account(s) with a password that expires later than "
                           "{max_days} days", count=len(accounts), max_days=p.max_days),
                      observed=days, expected=expected, location=where, accounts=accounts,
                      shadow=shadow)
    return passed(says("PASS_MAX_DAYS is {days}", days=days), observed=days, expected=expected,
                  location=where, shadow=shadow)


DATABASE_PORTS: dict[int, str] = {
    1433: "mssql", 1521: "oracle", 3306: "mysql", 5432: "postgresql", 5984: "couchdb",
    6379: "redis", 8123: "clickhouse", 9042: "cassandra", 9200: "elasticsearch",
    11211: "memcached", 27017: "mongodb",
}


class ListeningDatabaseParams(Params):
    """Database and cache ports that must listen on loopback only."""

    ports: dict[int, str] = Field(default_factory=lambda: dict(DATABASE_PORTS))


@check(id="host.db_listening", title="Databases and caches listen on loopback only",
       applies_to=Role.HOST, probe=listening_sockets, params=ListeningDatabaseParams)
def db_listening(sockets: list[ListeningSocket], p: ListeningDatabaseParams) -> Finding:
    """A database listening on every interface is one firewall mistake away from the
    internet, where anyone can read and edit records. Bind databases and caches to
    127.0.0.1 or a private interface reached only by the application servers."""
    exposed: list[dict[str, str | int]] = [
        {"port": s.port, "address": s.address, "service": p.ports[s.port]}
               for s in sockets if s.port in p.ports and not s.loopback_only]
    services = sorted({str(item["service"]) for item in exposed})
    if exposed:
        return failed(says("{services} listening beyond loopback", services=", ".join(services)),
                      observed=exposed, expected="loopback only", exposed=exposed)
    local = sorted({p.ports[s.port] for s in sockets if s.port in p.ports})
    summary = says("no database port is listening") if not local else \
        says("{services} listening on loopback only", services=", ".join(local))
    return passed(summary, observed=[], expected="loopback only", loopback_services=local)


OTP_MODULES = ["pam_google_authenticator.so", "pam_oath.so", "pam_duo.so", "pam_yubico.so",
               "pam_u2f.so", "pam_radius_auth.so", "pam_totp.so", "pam_privacyidea.so"]


class MfaParams(Params):
    """PAM modules that ask for a one-time password or a token, and whether `nullok`
    (users without an enrolled token skip the second factor) is tolerated."""

    otp_modules: list[str] = Field(default_factory=lambda: list(OTP_MODULES))
    allow_nullok: bool = False
    # users a Match block may let in with one factor (a break-glass account, by decision);
    # the audit's own SSH account is recognised without being listed
    exempt_users: list[str] = Field(default_factory=list)


def match_users(criteria: str) -> list[str] | None:
    """The users a Match block is limited to (criteria are ANDed, so a `User` list bounds
    it); None when it may apply to others (no User criterion, a pattern or a negation)."""
    words = criteria.split()
    pairs = dict(zip((w.lower() for w in words[0::2]), words[1::2], strict=False))
    names = pairs.get("user", "").split(",") if "user" in pairs else []
    if not names or any(char in name for name in names for char in "*?!"):
        return None
    return names


def _method_lists(value: str) -> list[list[str]]:
    return [[method.split(":")[0] for method in chain.split(",")] for chain in value.split()]


def _single_factor(value: str) -> list[str]:
    """Method lists that one factor alone satisfies (or 'any')."""
    if value.lower() == "any":
        return ["any"]
    return [",".join(chain) for chain in _method_lists(value) if len(set(chain)) < 2
            or "keyboard-interactive" not in chain]


def _otp_rules(rules: list[PamRule], p: MfaParams) -> tuple[list[str], list[str]]:
    """The OTP modules that are enforced, and those present but bypassable."""
    enforced: list[str] = []
    weak: list[str] = []
    for rule in rules:
        if rule.module not in p.otp_modules:
            continue
        text = f"{rule.location}: {rule.kind} {rule.control} {rule.module} {' '.join(rule.arguments)}"
        bypassable = rule.control in ("optional", "sufficient") or \
            ("nullok" in rule.arguments and not p.allow_nullok)
        (weak if bypassable else enforced).append(text.strip())
    return enforced, weak


@check(id="host.ssh_mfa", title="SSH requires a second factor", applies_to=Role.HOST,
       probe=ssh_mfa_facts, params=MfaParams)
def ssh_mfa(facts: SshMfaFacts, p: MfaParams) -> Finding:
    """A stolen key or password alone must not open an administrative session. Require a
    key and a one-time password: `AuthenticationMethods publickey,keyboard-interactive`,
    `KbdInteractiveAuthentication yes`, `UsePAM yes`, and an OTP module such as
    `auth required pam_google_authenticator.so` in /etc/pam.d/sshd (without `nullok`)."""
    config = facts.config
    methods = config.value("AuthenticationMethods") or "any"
    kbd = (config.value("KbdInteractiveAuthentication")
           or config.value("ChallengeResponseAuthentication") or "yes").lower()
    use_pam = (config.value("UsePAM") or "no").lower()
    enforced, weak = _otp_rules(facts.pam_auth or [], p)
    observed = {"authentication_methods": methods, "kbd_interactive": kbd, "use_pam": use_pam,
                "otp_modules": enforced, "bypassable_otp": weak, "source": config.source}
    problems: list[Text] = [says("one factor is enough: AuthenticationMethods {methods}",
                                 methods=item) for item in _single_factor(methods)]
    exempt = {*p.exempt_users, *([facts.audit_account] if facts.audit_account else [])}
    exemptions = []
    for block, option in config.overrides("AuthenticationMethods"):
        if not _single_factor(option.value):
            continue
        line = f"{option.location} (Match {block.criteria}): AuthenticationMethods {option.value}"
        users = match_users(block.criteria)
        if users and set(users) <= exempt:
            who = "the audit's own account" if users == [facts.audit_account] else "exempt"
            exemptions.append(f"{line} ({who})")
        else:
            problems.append(says("{location} (Match {criteria}): AuthenticationMethods "
                                 "{methods}", location=str(option.location),
                                 criteria=block.criteria, methods=option.value))
    observed["exemptions"] = exemptions
    if kbd != "yes":
        problems.append(says("KbdInteractiveAuthentication is {value}", value=kbd))
    if use_pam != "yes":
        problems.append(says("UsePAM is {value}: PAM cannot ask for a one-time password",
                             value=use_pam))
    if facts.pam_auth is None:
        problems.append(says("/etc/pam.d/sshd not read: {error}", error=facts.pam_error)
                        if facts.pam_error else says("/etc/pam.d/sshd not read"))
    elif not enforced:
        problems.append(says("no enforced OTP module in the sshd PAM stack (bypassable: "
                             "{modules})", modules="; ".join(weak)) if weak else
                        says("no enforced OTP module in the sshd PAM stack"))
    expected = "AuthenticationMethods publickey,keyboard-interactive with a required PAM OTP module"
    if problems:
        return failed_on(problems, observed=observed, expected=expected,
                         location=config.location("AuthenticationMethods") or config.source)
    return passed(says("AuthenticationMethods {methods} with {module}", methods=methods,
                       module=enforced[0].split(": ", 1)[1]), observed=observed,
                  expected=expected)


class RoleSeparationParams(Params):
    """Who may hold unrestricted sudo, and which groups are ordinary (clinical) users.

    Admin groups are those declared (the target's `admin_groups` in the inventory, and this
    `admin_groups`) and any group with one of the `admin_group_words` in a part of its name
    (`it-admins`, `his-root-admins`, `sysadmins`).
    `unrestricted_commands` are the sudo commands that amount to a root shell."""

    admin_groups: list[str] = Field(default_factory=lambda: ["sudo", "wheel", "admin"])
    admin_group_words: list[str] = Field(default_factory=lambda: ["admin", "wheel", "sudo",
                                                                  "root"])
    clinical_groups: list[str] = Field(default_factory=lambda: [
        "users", "clinicians", "doctors", "nurses", "reception", "registry", "mis-users"])
    exempt_users: list[str] = Field(default_factory=lambda: ["root"])
    unrestricted_commands: list[str] = Field(default_factory=lambda: [
        "ALL", "/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash", "/bin/su", "/usr/bin/su",
        "/usr/bin/sudo", "/usr/bin/env"])
    allow_nopasswd: bool = False


def _unrestricted(commands: tuple[str, ...], p: RoleSeparationParams) -> bool:
    allowed = {command.split()[0] if command != "ALL" else command for command in commands
               if not command.startswith("!")}
    return bool(allowed & set(p.unrestricted_commands))


def is_admin_group(group: str, p: RoleSeparationParams, declared: list[str]) -> bool:
    """Declared (by the target or the profile), or named as one: a word of the list in a
    part of the name (never clinical)."""
    if group in p.clinical_groups:
        return False
    parts = re.split(r"[-_.]", group.lower())
    return group in p.admin_groups or group in declared or \
        any(word in part for part in parts for word in p.admin_group_words)


def _admin_groups(facts: SudoersFacts, p: RoleSeparationParams) -> list[str]:
    return sorted(g for g in facts.groups if is_admin_group(g, p, facts.declared_admin_groups))


def _grant_problems(facts: SudoersFacts, p: RoleSeparationParams) -> list[Text]:
    clinical = {user for group in p.clinical_groups for user in facts.groups.get(group, [])}
    admins = {user for group in _admin_groups(facts, p) for user in facts.groups.get(group, [])}
    problems: list[Text] = []
    for grant in facts.grants:
        if not _unrestricted(grant.commands, p):
            continue
        where = f"{grant.location}: {grant.text}"
        for principal in grant.principals:
            if principal.startswith("!") or principal in p.exempt_users:
                continue
            if principal == "ALL":
                problems.append(says("every user gets unrestricted sudo ({where})",
                                     where=where))
            elif principal.startswith("%"):
                group = principal[1:]
                if group in p.clinical_groups:
                    problems.append(says("group {group} holds ordinary (clinical) users yet "
                                         "gets unrestricted sudo ({where})", group=group,
                                         where=where))
                elif not is_admin_group(group, p, facts.declared_admin_groups):
                    problems.append(says("group {group} is not an admin group yet gets "
                                         "unrestricted sudo ({where}); if it is one, list it "
                                         "in the target's admin_groups (inventory) or the "
                                         "check's admin_groups parameter", group=group,
                                         where=where))
            elif principal in clinical or principal not in admins:
                problems.append(says("user {user} gets unrestricted sudo outside the admin "
                                     "groups ({where})", user=principal, where=where))
        if grant.nopasswd and not p.allow_nopasswd:
            problems.append(says("unrestricted sudo without a password ({where})",
                                 where=where))
    return problems


@check(id="host.role_separation", title="Administrative rights are separate from ordinary users",
       applies_to=Role.HOST, probe=sudoers_facts, params=RoleSeparationParams)
def role_separation(facts: SudoersFacts, p: RoleSeparationParams) -> Finding:
    """Clinical staff accounts are phished and shared far more often than administrators'.
    Unrestricted sudo (`ALL`, a shell) belongs only to a dedicated admin group whose members
    are not also ordinary users; everyone else gets named commands, and root access asks for
    the administrator's password again. Fix the sudoers lines named in the evidence."""
    problems = _grant_problems(facts, p)
    clinical_groups = {group for group in p.clinical_groups if group in facts.groups}
    admin_groups = _admin_groups(facts, p)
    for group in admin_groups:
        for user in facts.groups.get(group, []):
            shared = sorted(g for g in clinical_groups if user in facts.groups[g])
            if shared and user not in p.exempt_users:
                problems.append(says("admin {user} (group {group}) is also an ordinary user "
                                     "(group {groups})", user=user, group=group,
                                     groups=", ".join(shared)))
    admin_members = {g: facts.groups.get(g, []) for g in admin_groups}
    observed = {"unrestricted": [f"{g.location}: {g.text}" for g in facts.grants
                                 if _unrestricted(g.commands, p)],
                "admin_groups": admin_members}
    expected = "unrestricted sudo only for admin groups whose members are not ordinary users"
    if problems:
        return failed_on(problems, observed=observed, expected=expected, files=facts.files)
    return passed(says("{count} unrestricted sudo grant(s), all to admin groups",
                       count=len(observed["unrestricted"])), observed=observed,
                  expected=expected, files=facts.files)
