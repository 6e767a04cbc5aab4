"""Who may log in and how: the sshd PAM stack, per-user password ageing, sudoers and groups.

Password hashes never leave this module: a shadow entry keeps only whether it holds a
usable password and its maximum age.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from audit.errors import FactUnavailable
from audit.facts.context import TargetContext
from audit.facts.host import LoginDefs, SshdConfig, login_defs, sshd_config
from audit.facts.host_batch import dir_files, optional_text, prefetch_host, strip_comment
from audit.messages import says
from audit.model.inventory import SshCredential
from audit.transports.base import Transport
from audit.transports.reads import HostReads
from audit.vocabulary import Reason

MAX_INCLUDE_DEPTH = 8
READS = HostReads(
    purpose="PAM stack of sshd, password ages, sudo rights, groups and accounts",
    files=("/etc/pam.d/sshd", "/etc/shadow", "/etc/sudoers", "/etc/group", "/etc/passwd"),
    config_dirs=("/etc/pam.d", "/etc/sudoers.d"),
)


@dataclass(frozen=True)
class PamRule:
    """One line of a PAM stack, after includes were followed."""

    kind: str              # auth, account, password, session
    control: str
    module: str
    arguments: tuple[str, ...]
    location: str


@dataclass(frozen=True)
class SshMfaFacts:
    """What decides whether SSH asks for a second factor."""

    config: SshdConfig
    pam_auth: list[PamRule] | None     # None: /etc/pam.d/sshd absent
    pam_error: str | None = None
    audit_account: str | None = None   # the account this audit logged in with over SSH


def audit_account(context: TargetContext) -> str | None:
    """The user the audit logs in as (over SSH), from the target's credential reference."""
    credential = context.environment.credentials.get(context.target.ssh or "")
    return credential.user if isinstance(credential, SshCredential) else None


def ssh_mfa_facts(context: TargetContext) -> SshMfaFacts:
    """sshd's configuration and the auth part of its PAM stack."""
    config = context.gather(sshd_config)
    transport = prefetch_host(context)
    account = audit_account(context)
    try:
        rules = pam_stack(transport, "sshd")
    except FactUnavailable as error:
        return SshMfaFacts(config, None, error.message, account)
    return SshMfaFacts(config, None if rules is None else
                       [rule for rule in rules if rule.kind == "auth"], None, account)


def pam_stack(transport: Transport, service: str, depth: int = 0) -> list[PamRule] | None:
    """The rules of /etc/pam.d/SERVICE with @include, include and substack followed."""
    if depth > MAX_INCLUDE_DEPTH:
        raise FactUnavailable(Reason.REFUSED, says("PAM includes nested deeper than {depth}",
                                                   depth=MAX_INCLUDE_DEPTH))
    path = f"/etc/pam.d/{PurePosixPath(service).name}"
    text = optional_text(transport, path)
    if text is None:
        return None
    rules: list[PamRule] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        words = _pam_words(strip_comment(raw))
        if not words:
            continue
        if words[0] == "@include" and len(words) > 1:
            rules += pam_stack(transport, words[1], depth + 1) or []
            continue
        if len(words) < 3:
            continue
        kind, control = words[0].lstrip("-"), words[1]
        if control in ("include", "substack"):
            rules += [rule for rule in pam_stack(transport, words[2], depth + 1) or []
                      if rule.kind == kind]
            continue
        rules.append(PamRule(kind, control, PurePosixPath(words[2]).name, tuple(words[3:]),
                             f"{path}:{number}"))
    return rules


def _pam_words(line: str) -> list[str]:
    # A bracketed control "[success=1 default=ignore]" is one word despite its blanks.
    match = re.match(r"^(\S+)\s+(\[[^\]]*\])\s*(.*)$", line)
    if match:
        return [match.group(1), match.group(2), *match.group(3).split()]
    return line.split()


@dataclass(frozen=True)
class ShadowEntry:
    """An account's password state, without its hash."""

    user: str
    usable_password: bool
    max_days: int | None
    location: str


@dataclass(frozen=True)
class PasswordPolicy:
    """login.defs, and the per-user ageing in /etc/shadow when it can be read."""

    login_defs: LoginDefs
    shadow: list[ShadowEntry] | None
    shadow_note: str | None = None


def password_policy(context: TargetContext) -> PasswordPolicy:
    """login.defs and the shadow file's ageing fields."""
    defs = context.gather(login_defs)
    try:
        text = prefetch_host(context).read_text("/etc/shadow")
    except FactUnavailable as error:
        return PasswordPolicy(defs, None, error.message)
    return PasswordPolicy(defs, parse_shadow(text))


def parse_shadow(text: str) -> list[ShadowEntry]:
    """Accounts of a shadow file: locked (`!`, `*`) and empty hashes are not usable."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split(":")
        if len(fields) < 5 or not fields[0]:
            continue
        hashed = fields[1]
        usable = bool(hashed) and not hashed.startswith(("!", "*"))
        max_days = int(fields[4]) if fields[4].strip().isdigit() else None
        entries.append(ShadowEntry(fields[0], usable, max_days, f"/etc/shadow:{number}"))
    return entries


@dataclass(frozen=True)
class SudoGrant:
    """One user specification of sudoers, aliases expanded."""

    principals: tuple[str, ...]      # "alice", "%group", "ALL", "!bob"
    runas: str
    commands: tuple[str, ...]
    nopasswd: bool
    location: str
    text: str


@dataclass(frozen=True)
class SudoersFacts:
    """Every sudo grant, and who belongs to which group."""

    grants: list[SudoGrant]
    groups: dict[str, list[str]]
    files: list[str]
    declared_admin_groups: list[str] = field(default_factory=list)    # the target's own


@dataclass
class _SudoParse:
    aliases: dict[str, list[str]] = field(default_factory=dict)
    grants: list[SudoGrant] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


ALIAS_LINE = re.compile(r"^(User|Runas|Host|Cmnd|Cmd)_Alias\s+(.*)$")
INCLUDE_LINE = re.compile(r"^[@#](include|includedir)\s+(\S+)")
TAG = re.compile(r"^((?:NO)?(?:PASSWD|EXEC|SETENV|LOG_INPUT|LOG_OUTPUT|MAIL|FOLLOW|INTERCEPT)):\s*")


def sudoers_facts(context: TargetContext) -> SudoersFacts:
    """sudoers with its includes, and group membership from /etc/group and /etc/passwd."""
    transport = prefetch_host(context)
    state = _SudoParse()
    _parse_sudoers(transport, "/etc/sudoers", state, 0)
    return SudoersFacts(state.grants, group_members(transport), state.files,
                        list(context.target.admin_groups))


def _parse_sudoers(transport: Transport, path: str, state: _SudoParse, depth: int) -> None:
    if depth > MAX_INCLUDE_DEPTH:
        raise FactUnavailable(Reason.REFUSED, says("sudoers includes nested deeper than {depth}",
                                                   depth=MAX_INCLUDE_DEPTH))
    text = transport.read_text(path)
    state.files.append(path)
    for number, line in _logical_lines(text):
        location = f"{path}:{number}"
        include = INCLUDE_LINE.match(line)
        if include:
            _follow_include(transport, include.group(1), include.group(2), path, state, depth)
            continue
        line = strip_comment(line)
        alias = ALIAS_LINE.match(line)
        if alias:
            for definition in alias.group(2).split(":"):
                name, _, items = definition.partition("=")
                state.aliases[name.strip()] = _items(items)
        elif line and not line.startswith("Defaults") and "=" in line:
            state.grants += _grants(line, location, state.aliases)


def _follow_include(transport: Transport, kind: str, target: str, path: str,
                    state: _SudoParse, depth: int) -> None:
    full = target if target.startswith("/") else str(PurePosixPath(path).parent / target)
    if kind == "include":
        _parse_sudoers(transport, full, state, depth + 1)
        return
    # sudo skips files whose names end in "~" or contain a dot (editor backups, .dpkg-old)
    for included in sorted(dir_files(transport, full)):
        name = PurePosixPath(included).name
        if not name.endswith("~") and "." not in name:
            _parse_sudoers(transport, included, state, depth + 1)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append((start, (pending + raw).strip()))
        pending = ""
    return lines


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _expand(items: list[str], aliases: dict[str, list[str]], depth: int = 0) -> list[str]:
    expanded: list[str] = []
    for item in items:
        negated, name = item.startswith("!"), item.lstrip("!").strip()
        if name in aliases and depth < MAX_INCLUDE_DEPTH:
            expanded += [("!" if negated else "") + value
                         for value in _expand(aliases[name], aliases, depth + 1)]
        else:
            expanded.append(item)
    return expanded


def _grants(line: str, location: str, aliases: dict[str, list[str]]) -> list[SudoGrant]:
    left, _, right = line.partition("=")
    left_words = re.sub(r"\s*,\s*", ",", left.strip()).split()
    if len(left_words) < 2:
        return []
    principals = tuple(_expand(_items(left_words[0]), aliases))
    grants = []
    runas, nopasswd = "root", False
    for item in _items(right.split(":", 1)[0] if _host_spec(right) else right):
        if item.startswith("("):
            runas, _, item = item[1:].partition(")")
            item = item.strip()
        while (tag := TAG.match(item)) is not None:
            nopasswd = {"NOPASSWD": True, "PASSWD": False}.get(tag.group(1), nopasswd)
            item = item[tag.end():]
        grants.append((runas.strip(), item.strip(), nopasswd))
    by_runas: dict[tuple[str, bool], list[str]] = {}
    for runas_value, command, flag in grants:
        by_runas.setdefault((runas_value, flag), []).extend(_expand([command], aliases))
    return [SudoGrant(principals, runas_value, tuple(commands), flag, location, line)
            for (runas_value, flag), commands in by_runas.items()]


def _host_spec(right: str) -> bool:
    # "... : otherhost = ..." separates specs for other hosts; a tag colon is not one.
    return bool(re.search(r":\s*[\w.,-]+\s*=", right))


def group_members(transport: Transport) -> dict[str, list[str]]:
    """Members of each group: listed in /etc/group, or having it as primary group."""
    groups: dict[str, set[str]] = {}
    by_gid: dict[str, str] = {}
    for line in (optional_text(transport, "/etc/group") or "").splitlines():
        fields = line.strip().split(":")
        if len(fields) >= 4:
            groups[fields[0]] = {member for member in fields[3].split(",") if member}
            by_gid[fields[2]] = fields[0]
    for line in (optional_text(transport, "/etc/passwd") or "").splitlines():
        fields = line.strip().split(":")
        if len(fields) >= 4 and fields[3] in by_gid:
            groups[by_gid[fields[3]]].add(fields[0])
    return {name: sorted(members) for name, members in sorted(groups.items())}
