"""`mis-audit fix RESULTS.json -o playbook.yml`: an Ansible playbook for the failed host
results a fixer can repair, from a stored run alone; what it cannot repair is listed at its
end with the control's remediation."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from audit.commands import fail, stored_results
from audit.fix import FixPlan, Safety, plan_fixes, render_playbook
from audit.outputs import OutputError, write_atomically
from audit.vocabulary import Lang


def _unknown(asked: list[str] | None, known: set[str], what: str) -> None:
    missing = sorted(set(asked or ()) - known)
    if missing:
        fail(f"no {what} named {', '.join(missing)} in the results "
             f"(known: {', '.join(sorted(known)) or 'none'})")


def summary(plan: FixPlan, destination: str) -> str:
    """One line per play and a count of what is left to people."""
    lines = []
    for play in plan.plays:
        review = sum(p.task.safety is Safety.REVIEW for p in play.tasks)
        lines.append(f"{play.target.name}: {len(play.tasks)} task(s), {review} to review, "
                     f"for {len(play.fixed)} failed result(s)")
    lines.append(f"{len(plan.unfixed)} failed result(s) not fixed by a playbook "
                 f"(listed at the end of {destination})")
    return "\n".join(lines) + "\n"


def fix(results_file: Annotated[Path, typer.Argument(help="A stored results.json.")],
        output: Annotated[Path | None, typer.Option(
            "--output", "-o", help="Write the playbook here (default: standard output).")] = None,
        target: Annotated[list[str] | None, typer.Option(
            "--target", "-t", help="Only this target (repeatable).")] = None,
        control: Annotated[list[str] | None, typer.Option(
            "--control", "-c", help="Only this control (repeatable).")] = None,
        lang: Annotated[Lang, typer.Option("--lang")] = Lang.EN) -> None:
    """An Ansible playbook that fixes the failed host results it can: safe and review tasks."""
    results = stored_results(results_file)
    _unknown(target, {t.name for t in results.targets}, "target")
    _unknown(control, {c.id for c in results.controls}, "control")
    plan = plan_fixes(results, target, control, lang)
    playbook = render_playbook(plan, results)
    if output is None:
        sys.stdout.write(playbook)
        sys.stderr.write(summary(plan, "the playbook"))
        return
    try:
        write_atomically(output, playbook.encode())
    except OutputError as error:
        fail(str(error))
    sys.stdout.write(f"playbook: {output}\n" + summary(plan, str(output)))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("fix")(fix)
