"""`mis-audit plan RESULTS.json [--csv]`: what to fix first, from a stored run alone.

The same list as the report's remediation plan: the failed controls, the biggest score gain
first, whether fixing each lifts a blocker. On the terminal it fits 80 columns; `--csv` writes
it for a ticket system (one row per control, the targets to fix in one cell)."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Annotated

import typer

from audit.commands import stored_results
from audit.model.results import RunResults
from audit.vocabulary import Lang
from reports.csv_table import BYTE_ORDER_MARK, safe_cell
from reports.register import PlanStep, one_line, remediation_plan

WIDTH = 80
CSV_COLUMNS = ("rank", "control", "title", "severity", "status", "score_gain", "score_after",
               "lifts_blocker", "targets", "remediation", "playbook_targets")
PLAYBOOK_MARK = "*"


def plan_text(results: RunResults, steps: list[PlanStep]) -> str:
    """The plan for a terminal: two lines per control, never wider than 80 columns."""
    lines = [one_line(f"Remediation plan: score {results.score:g} / 100, threshold "
                      f"{results.threshold:g}, {len(steps)} controls to fix", WIDTH)]
    if not steps:
        return lines[0] + "\nNothing failed.\n"
    lines.append(f"{'#':>3} {'gain':>6} {'after':>6} {'blocker':<7} {'severity':<8} control")
    for step in steps:
        head = (f"{step.rank:>3} {step.gain:>+6.2f} {step.score_after:>6.2f} "
                f"{'yes' if step.lifts_blocker else '':<7} {step.control.severity.value:<8} ")
        lines.append(head + one_line(f"{step.control.id}: {step.title}", WIDTH - len(head)))
        targets = [t + PLAYBOOK_MARK if t in step.playbook_targets else t for t in step.targets]
        lines.append(" " * 4 + one_line(f"on {', '.join(targets) or 'the system'}: "
                                        f"{step.fix}", WIDTH - 4))
    if any(step.playbook_targets for step in steps):
        lines.append(f"{PLAYBOOK_MARK} a generated fix: mis-audit fix RESULTS.json -o playbook.yml")
    return "\n".join(lines) + "\n"


def plan_csv(steps: list[PlanStep]) -> str:
    """The plan as CSV (byte-order mark, CRLF), one row per control, safe in a spreadsheet."""
    buffer = io.StringIO()
    buffer.write(BYTE_ORDER_MARK)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for step in steps:
        writer.writerow([safe_cell(cell) for cell in (
            str(step.rank), step.control.id, step.title, step.control.severity.value,
            step.control.status.value, f"{step.gain:.2f}", f"{step.score_after:.2f}",
            "yes" if step.lifts_blocker else "no", " ".join(step.targets), step.fix,
            " ".join(step.playbook_targets))])
    return buffer.getvalue()


def plan(results_file: Annotated[Path, typer.Argument(help="A stored results.json.")],
         as_csv: Annotated[bool, typer.Option("--csv", help="CSV for a ticket system.")] = False,
         lang: Annotated[Lang, typer.Option("--lang")] = Lang.EN) -> None:
    """What to fix first: failed controls by how much fixing each raises the score."""
    results = stored_results(results_file)
    steps = remediation_plan(results, lang)
    sys.stdout.write(plan_csv(steps) if as_csv else plan_text(results, steps))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("plan")(plan)
