"""Fix playbooks: the failed host results a registered fixer can repair, as Ansible tasks.

A fixer (in the `fixes` package, one per check id) reads a failed result's evidence (the
file, line and value behind it) and returns a `Remedy`: idempotent tasks on builtin
modules, each tagged `safe` or `review` (with the reason), and the handlers that validate
the changed configuration and then reload its service. A fixer that cannot repair what it
sees says why; that result, and every failed result without a fixer, is listed at the end
of the playbook with its control's remediation. The core never names a check.
"""

from __future__ import annotations

import importlib
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import yaml

from audit.model.results import Result, RunResults, TargetRecord
from audit.vocabulary import Lang, Status, localized

# Playbook variables: reloads can be switched off (a container or a test host without an
# init system), the rest of the play still runs.
RELOAD_SERVICES = "mis_audit_reload_services"
LOAD_AUDIT_RULES = "mis_audit_load_audit_rules"
PLAY_VARIABLES = {RELOAD_SERVICES: True, LOAD_AUDIT_RULES: True}
# Hosts a playbook can reach: over SSH, or this machine itself.
FIXABLE_TRANSPORTS = {"ssh": "", "local": " ansible_connection=local"}


class Safety(StrEnum):
    """`safe`: cannot lock anybody out; `review`: can, and says how."""

    SAFE = "safe"
    REVIEW = "review"


@dataclass(frozen=True)
class Handler:
    """A handler: runs once at the end of the play when a task notified it."""

    name: str
    module: str
    args: dict[str, Any]
    when: str | None = None
    changed_when: bool | None = None


@dataclass(frozen=True)
class Task:
    """One idempotent change."""

    name: str
    module: str
    args: dict[str, Any]
    safety: Safety = Safety.SAFE
    reason: str | None = None       # why a `review` task needs a person's look
    notify: tuple[Handler, ...] = ()
    secret: bool = False            # its arguments hold a secret: no log, no diff

    def __post_init__(self) -> None:
        if (self.safety is Safety.REVIEW) != (self.reason is not None):
            raise ValueError(f"task {self.name!r}: a review task needs its reason, "
                             "a safe one has none")


@dataclass(frozen=True)
class Remedy:
    """What a fixer proposes for one failed result: tasks, or why there are none."""

    tasks: tuple[Task, ...] = ()
    declined: str | None = None     # why the result cannot be fixed by a playbook
    partial: str | None = None      # the tasks mitigate, they do not fix: what is left

    @classmethod
    def cannot(cls, reason: str) -> Remedy:
        """No tasks: `reason` says what a person must do instead."""
        return cls(declined=reason)


Fixer = Callable[[Result], Remedy]
FIXERS: dict[str, Fixer] = {}


def fixer(check_id: str) -> Callable[[Fixer], Fixer]:
    """Register a function that repairs failed results of `check_id`."""
    def register(function: Fixer) -> Fixer:
        if check_id in FIXERS:
            raise ValueError(f"check {check_id!r} has two fixers")
        FIXERS[check_id] = function
        return function
    return register


def load_fixers() -> dict[str, Fixer]:
    """The built-in fixers, by check id."""
    from fixes import FIX_MODULES

    for name in FIX_MODULES:
        importlib.import_module(name)
    return FIXERS


@dataclass
class PlannedTask:
    """A task in a target's play, with the controls it serves."""

    task: Task
    controls: list[str]
    checks: list[str]


@dataclass
class TargetFix:
    """One target's play."""

    target: TargetRecord
    tasks: list[PlannedTask] = field(default_factory=list)
    fixed: list[Result] = field(default_factory=list)

    def add(self, result: Result, tasks: Iterable[Task], fixes: bool) -> None:
        """Add a result's tasks (which repair it when `fixes`); a task two results need (the
        same change) is planned once."""
        for task in tasks:
            same = next((p for p in self.tasks if p.task.module == task.module
                         and p.task.args == task.args), None)
            if same is None:
                self.tasks.append(PlannedTask(task, [result.control], [result.check]))
            else:
                same.controls += [c for c in [result.control] if c not in same.controls]
                same.checks += [c for c in [result.check] if c not in same.checks]
        if fixes:
            self.fixed.append(result)

    def handlers(self) -> list[Handler]:
        """Every handler the tasks notify, each once, in the order first notified."""
        found: dict[str, Handler] = {}
        for planned in self.tasks:
            for handler in planned.task.notify:
                found.setdefault(handler.name, handler)
        return list(found.values())


@dataclass(frozen=True)
class Unfixed:
    """A failed result no playbook task repairs, and what to do instead."""

    result: Result
    reason: str
    remediation: str


@dataclass
class FixPlan:
    """Every target's play and what is left to people."""

    plays: list[TargetFix]
    unfixed: list[Unfixed]

    @property
    def fixable_controls(self) -> set[tuple[str, str]]:
        """(control, target) pairs a task of the plan repairs."""
        return {(r.control, r.target) for play in self.plays for r in play.fixed}


def _chosen(result: Result, targets: set[str] | None, controls: set[str] | None) -> bool:
    return (result.status is Status.FAIL and result.waiver is None
            and result.attestation is None
            and (targets is None or result.target in targets)
            and (controls is None or result.control in controls))


def _remedy(result: Result, record: TargetRecord | None, fix: Fixer | None) -> Remedy:
    """What the check's fixer proposes, or why nothing can be proposed."""
    if fix is None:
        return Remedy.cannot("no generated fix for this check")
    if record is None or record.transport not in FIXABLE_TRANSPORTS:
        return Remedy.cannot("an offline copy of the host: fix the host itself" if record
                             and record.transport == "offline" else "not a host reached over SSH")
    try:
        return fix(result)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as error:
        # evidence of another shape (an older run, a third-party check): no task
        return Remedy.cannot(f"the evidence is not what the fixer reads ({error!r})")


def plan_fixes(results: RunResults, targets: Iterable[str] | None = None,
               controls: Iterable[str] | None = None, lang: Lang = Lang.EN) -> FixPlan:
    """The fix plan for the failed results of the chosen targets and controls."""
    fixers = load_fixers()
    wanted_targets = set(targets) if targets is not None else None
    wanted_controls = set(controls) if controls is not None else None
    records = {record.name: record for record in results.targets}
    remediation = {c.id: localized(c.remediation, lang) for c in results.controls}
    plays: dict[str, TargetFix] = {}
    unfixed: list[Unfixed] = []
    for result in results.results:
        if not _chosen(result, wanted_targets, wanted_controls):
            continue
        record = records.get(result.target)
        remedy = _remedy(result, record, fixers.get(result.check))
        if remedy.tasks and record is not None:
            play = plays.setdefault(result.target, TargetFix(record))
            play.add(result, remedy.tasks, fixes=remedy.partial is None)
        if not remedy.tasks or remedy.partial:
            reason = remedy.partial or remedy.declined or "nothing to change"
            unfixed.append(Unfixed(result, reason, remediation.get(result.control, "")))
    return FixPlan(list(plays.values()), unfixed)


def _task_body(planned: PlannedTask, target: str) -> dict[str, Any]:
    task = planned.task
    body: dict[str, Any] = {
        "name": _untemplated(f"{', '.join(planned.controls)} on {target}: {task.name}"),
        task.module: _untemplated(task.args),
        "tags": [*planned.controls, *planned.checks, task.safety.value],
    }
    if task.notify:
        body["notify"] = [handler.name for handler in task.notify]
    if task.secret:
        body |= {"no_log": True, "diff": False}
    return body


def _handler_body(handler: Handler) -> dict[str, Any]:
    body: dict[str, Any] = {"name": handler.name, handler.module: _untemplated(handler.args)}
    if handler.changed_when is not None:
        body["changed_when"] = handler.changed_when
    if handler.when:
        body["when"] = handler.when
    return body


class Template(str):
    """A value Ansible is meant to template (a variable the user supplies)."""


class _Unsafe(str):
    """Any other text that holds a Jinja delimiter is `!unsafe`: Ansible never templates what
    a target sent."""


class _PlaybookDumper(yaml.SafeDumper):
    """Safe YAML, with text tagged `!unsafe` unless it is a `Template`."""


_PlaybookDumper.add_representer(_Unsafe, lambda dumper, value: dumper.represent_scalar(
    "!unsafe", str(value), style="'" if not value or "\n" not in value else "|"))
_PlaybookDumper.add_representer(Template, lambda dumper, value: dumper.represent_str(str(value)))


def _untemplated(value: Any) -> Any:
    """Every string in `value` that Ansible would template marked unsafe, except templates."""
    if isinstance(value, Template):
        return value
    if isinstance(value, str):
        return _Unsafe(value) if "{" in value else value
    if isinstance(value, dict):
        return {key: _untemplated(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_untemplated(item) for item in value]
    return value


def _dump(value: Any, indent: int) -> list[str]:
    text = yaml.dump(value, Dumper=_PlaybookDumper, sort_keys=False, allow_unicode=True,
                     width=96)
    return [" " * indent + line if line else line for line in text.splitlines()]


def _play_lines(play: TargetFix, results: RunResults) -> list[str]:
    name = play.target.name
    head = {"name": f"mis-audit fixes for {name} ({results.profile_family or 'run'} "
                    f"of {results.started_at:%Y-%m-%d})",
            "hosts": name, "become": True, "gather_facts": False,
            "vars": dict(PLAY_VARIABLES)}
    lines = _dump([head], 0) + ["  tasks:"]
    for planned in play.tasks:
        if planned.task.reason:
            lines += textwrap.wrap(f"review: {planned.task.reason}", 92,
                                   initial_indent="    # ", subsequent_indent="    #   ")
        lines += _dump([_task_body(planned, name)], 4)
    handlers = play.handlers()
    if handlers:
        lines += ["  handlers:"] + _dump([_handler_body(h) for h in handlers], 4)
    return lines


def _comment(text: str, indent: str = "") -> list[str]:
    """`text` as comment lines (a line break in target text cannot end the comment)."""
    return [line for raw in text.splitlines() or [""] for line in
            textwrap.wrap(raw, 94, initial_indent="# " + indent,
                          subsequent_indent="# " + indent + "  ") or ["#"]]


def render_playbook(plan: FixPlan, results: RunResults) -> str:
    """The plan as an Ansible playbook: a header that says how to run it, one play per
    target, then (as comments) every failed result left to people."""
    inventory = [f"#   {play.target.name} ansible_host={play.target.address or play.target.name}"
                 f"{FIXABLE_TRANSPORTS[play.target.transport or 'ssh']}" for play in plan.plays]
    lines = [
        f"# Generated by mis-audit fix from the run of {results.started_at:%Y-%m-%d %H:%M} UTC.",
        "# Each task is tagged with its control, its check and `safe` or `review`.",
        "# Run the safe changes first, then look at the others before applying them:",
        "#   ansible-playbook -i inventory.ini playbook.yml --tags safe",
        "#   ansible-playbook -i inventory.ini playbook.yml --tags review --check --diff",
        f"# No reloads (a host without an init system): -e {RELOAD_SERVICES}=false",
        f"#   and -e {LOAD_AUDIT_RULES}=false.",
        "# inventory.ini for the targets below (an administrative account, not the audit's):",
        *inventory, "",
    ]
    if not plan.plays:
        lines += ["[]"]
    for play in plan.plays:
        lines += _play_lines(play, results) + [""]
    if plan.unfixed:
        lines.append("# Not fixed by this playbook (what a person must do):")
        for item in plan.unfixed:
            lines += _comment(f"- {item.result.control} on {item.result.target} "
                              f"({item.result.check}): {item.reason}")
            if item.remediation:
                lines += _comment(item.remediation, indent="    ")
    return "\n".join(lines).rstrip("\n") + "\n"
