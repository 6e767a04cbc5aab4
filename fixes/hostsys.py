"""Audit watches on the data and the data's permissions."""

from __future__ import annotations

import re

from audit.fix import LOAD_AUDIT_RULES, Handler, Remedy, Task, fixer
from audit.model.results import Result

AUDIT_RULES = "/etc/audit/rules.d/50-mis-audit.rules"
AUDIT_KEY = "mis-audit-data"
LOAD_RULES = Handler("load the audit rules (augenrules --load)", "ansible.builtin.command",
                     {"cmd": "augenrules --load"}, when=f"{LOAD_AUDIT_RULES} | bool",
                     changed_when=True)
UNWATCHED = re.compile(r"no audit watch covers (/\S.*)|the watch on (/\S.*) misses permissions \w+")
PERMISSIONS = re.compile(r"a watch with permissions ([rwxa]+) on every data location")


@fixer("hostsys.audit_rules")
def audit_rules(result: Result) -> Remedy:
    """A watch per data location in a rule file of ours; augenrules loads it."""
    wanted = PERMISSIONS.fullmatch(str(result.evidence.expected))
    problems = [str(p) for p in result.evidence.details.get("problems") or []]
    paths = [match.group(1) or match.group(2) for problem in problems
             if (match := UNWATCHED.fullmatch(problem))]
    if wanted is None or not paths or len(paths) < len(problems):
        left = [p for p in problems if not UNWATCHED.fullmatch(p)] or [result.summary]
        return Remedy.cannot("; ".join(left) + ": not a missing watch")
    return Remedy(tuple(
        Task(f"audit watch on {path} ({wanted.group(1)})", "ansible.builtin.lineinfile",
             {"path": AUDIT_RULES, "line": f"-w {path} -p {wanted.group(1)} -k {AUDIT_KEY}",
              "create": True, "owner": "root", "group": "root", "mode": "0640"},
             notify=(LOAD_RULES,))
        for path in paths))


OPEN_ENTRY = re.compile(r"(/.*) \(0o[0-7]+: other [rwx-]+\)")


@fixer("hostsys.data_permissions")
def data_permissions(result: Result) -> Remedy:
    """Other users lose every bit on the data paths found open to them."""
    entries = [str(entry) for entry in result.evidence.observed or []]
    paths = [match.group(1) for entry in entries if (match := OPEN_ENTRY.fullmatch(entry))]
    if not paths or len(paths) < len(entries):
        return Remedy.cannot("the open paths are not known from the evidence")
    return Remedy(tuple(Task(f"{path}: no access for other users", "ansible.builtin.file",
                             {"path": path, "mode": "o-rwx"}) for path in paths))
