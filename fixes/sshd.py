"""sshd options and password ages: set where sshd and login read them first."""

from __future__ import annotations

import re

from audit.fix import RELOAD_SERVICES, Handler, Remedy, Safety, Task, Template, fixer
from audit.model.results import Result

SSHD_CONFIG = "/etc/ssh/sshd_config"
# Drop-ins are read in name order and sshd keeps the first value it reads: this one wins
# over the rest once sshd_config includes the directory before its own settings.
DROP_IN = "/etc/ssh/sshd_config.d/00-mis-audit.conf"
INCLUDE = "Include /etc/ssh/sshd_config.d/*.conf"
# Handlers run in the order the play lists them: the check first, and a failed check stops
# the play before the reload.
CHECK_SSHD = Handler("check the sshd configuration (sshd -t)", "ansible.builtin.command",
                     {"cmd": "/usr/sbin/sshd -t"}, changed_when=False)
RELOAD_SSHD = Handler("reload sshd", "ansible.builtin.service",
                      {"name": Template("{{ mis_audit_sshd_service | default('ssh') }}"),
                       "state": "reloaded"}, when=f"{RELOAD_SERVICES} | bool")
LOGIN_DEFS = "/etc/login.defs"


def sshd_options(options: dict[str, str], safety: Safety = Safety.SAFE,
                 reason: str | None = None) -> tuple[Task, ...]:
    """Tasks that make sshd read `options` before any other value of theirs."""
    include = Task(f"{SSHD_CONFIG} reads {DROP_IN.rsplit('/', 1)[0]}/*.conf",
                   "ansible.builtin.lineinfile",
                   {"path": SSHD_CONFIG, "line": INCLUDE, "insertbefore": "BOF"})
    settings = tuple(Task(f"sshd: {keyword} {value}", "ansible.builtin.lineinfile",
                          {"path": DROP_IN, "regexp": rf"^\s*{keyword}\s", "line":
                           f"{keyword} {value}", "create": True, "owner": "root",
                           "group": "root", "mode": "0644"},
                          safety, reason, notify=(CHECK_SSHD, RELOAD_SSHD))
                     for keyword, value in options.items())
    return (include, *settings)


def _in_match_blocks(result: Result) -> Remedy | None:
    blocks = result.evidence.details.get("match_blocks") or []
    if blocks:
        return Remedy.cannot("a Match block sets it (" + "; ".join(map(str, blocks)) +
                             "): edit that block by hand")
    return None


@fixer("host.ssh_root_login")
def root_login(result: Result) -> Remedy:
    """PermitRootLogin no (or the profile's first allowed value)."""
    allowed = result.evidence.expected if isinstance(result.evidence.expected, list) else []
    value = "no" if not allowed or "no" in allowed else str(allowed[0])
    return _in_match_blocks(result) or Remedy(sshd_options(
        {"PermitRootLogin": value}, Safety.REVIEW,
        "whoever administers this host by logging in as root must log in with a named "
        "account and sudo first"))


@fixer("host.ssh_password_auth")
def password_auth(result: Result) -> Remedy:
    """PasswordAuthentication no."""
    return _in_match_blocks(result) or Remedy(sshd_options(
        {"PasswordAuthentication": "no"}, Safety.REVIEW,
        "accounts without an SSH key (or certificate) can no longer log in"))


SESSION_LIMIT = re.compile(r"sessions end within (\d+) s")
CLIENT_ALIVE_COUNT = 3


@fixer("host.ssh_idle_timeout")
def idle_timeout(result: Result) -> Remedy:
    """ClientAliveInterval so that an unanswering client is dropped within the limit."""
    limit = SESSION_LIMIT.fullmatch(str(result.evidence.expected))
    if limit is None:
        return Remedy.cannot(f"the expected limit is not known ({result.evidence.expected})")
    interval = max(1, min(300, int(limit.group(1)) // CLIENT_ALIVE_COUNT))
    return _in_match_blocks(result) or Remedy(sshd_options(
        {"ClientAliveInterval": str(interval), "ClientAliveCountMax": str(CLIENT_ALIVE_COUNT)}))


MAX_DAYS = re.compile(r"<= (\d+)")
ACCOUNT = re.compile(r"([a-z_][a-z0-9_.-]*\$?): ")


@fixer("host.password_max_age")
def password_max_age(result: Result) -> Remedy:
    """PASS_MAX_DAYS for new accounts, `chage -M` (the user module) for existing ones."""
    limit = MAX_DAYS.fullmatch(str(result.evidence.expected))
    if limit is None:
        return Remedy.cannot(f"the expected maximum is not known ({result.evidence.expected})")
    days = int(limit.group(1))
    tasks = [Task(f"login.defs: PASS_MAX_DAYS {days}", "ansible.builtin.lineinfile",
                  {"path": LOGIN_DEFS, "regexp": r"^\s*#?\s*PASS_MAX_DAYS\s",
                   "line": f"PASS_MAX_DAYS\t{days}"})]
    for account in result.evidence.details.get("accounts") or []:
        if name := ACCOUNT.match(str(account)):
            tasks.append(Task(
                f"account {name.group(1)}: password expires after {days} days",
                "ansible.builtin.user", {"name": name.group(1), "password_expire_max": days},
                Safety.REVIEW, "a password already older than the maximum expires at once: "
                "its owner must change it at the next login"))
    return Remedy(tuple(tasks))
