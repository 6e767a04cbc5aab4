"""`mis-audit history` (past runs) and `mis-audit diff OLD NEW` (what changed between two)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from audit.commands import fail
from audit.history import (
    DISABLED,
    HISTORY_ENV,
    HistoryUnavailable,
    StoredRun,
    default_location,
    open_store,
    record_run,
    redact,
)
from audit.history_diff import Snapshot, diff_snapshots, snapshot
from audit.model.results import FindingChange, HistoryError, RunResults
from audit.outputs import OutputError, private_directory, write_atomically
from audit.portfolio import portfolio
from audit.run import read_results, write_results
from audit.vocabulary import Lang, Verdict
from reports.portfolio import FILE_NAME as PORTFOLIO_FILE
from reports.portfolio import render_portfolio
from reports.text import clean

_err = Console(stderr=True)


def _out() -> Console:
    # Made per command, so the terminal width (COLUMNS) is read when the command runs.
    return Console()


def _cell(text: str, limit: int) -> Text:
    # Text, not str: rich would read "[...]" in a target's banner as markup, or choke on it.
    return Text(clean(text, limit))


HistoryOption = Annotated[str | None, typer.Option(
    "--history", help=f"History store: a SQLite file or a postgresql:// URL "
                      f"(default: ${HISTORY_ENV}, else a per-user file).")]


def _location(history: str | None) -> str:
    location = history or default_location()
    if location == DISABLED:
        fail("the history store is switched off (--history off)")
    return location


def _verdict(verdict: Verdict) -> str:
    return "ready" if verdict is Verdict.READY else "NOT READY"


def history(limit: Annotated[int, typer.Option("--limit", min=1, max=10_000,
                                               help="How many runs, newest first.")] = 20,
            as_json: Annotated[bool, typer.Option("--json", help="One JSON list, for scripts.")]
            = False,
            store: HistoryOption = None) -> None:
    """List past runs with their score and verdict."""
    location = _location(store)
    try:
        runs = open_store(location).runs(limit)
    except HistoryUnavailable as error:
        fail(str(error))
    if as_json:
        typer.echo(json.dumps([_run_record(run) for run in runs], indent=2, ensure_ascii=False))
        return
    if not runs:
        _out().print(f"no runs recorded in {redact(location)}", highlight=False, markup=False)
        return
    # Five columns, the audit's names stacked in one: it reads at 80 columns.
    table = Table("run", "started (UTC)", "organisation / system / profiles", "score",
                  "verdict")
    table.columns[0].no_wrap = True
    table.columns[1].no_wrap = True
    for run in runs:
        audit = Text("\n").join([_cell(run.organisation, 80), _cell(run.system or "-", 80),
                                 _cell(run.profiles, 160)])
        table.add_row(f"#{run.run_id}", run.started_at.strftime("%Y-%m-%d %H:%M"), audit,
                      f"{run.score:g}",
                      _verdict(run.verdict) + ("" if run.complete else "\nincomplete"))
    _out().print(table)


def _run_record(run: StoredRun) -> dict[str, object]:
    return {"run_id": run.run_id, "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat(), "organisation": run.organisation,
            "system": run.system, "profiles": run.profiles, "tool_version": run.tool_version,
            "complete": run.complete, "score": run.score, "threshold": run.threshold,
            "verdict": run.verdict.value}


def _side(reference: str, store: str | None) -> tuple[str, float, Snapshot]:
    """A run to compare: a results.json file, or a run id (`12` or `#12`) from the store."""
    path = Path(reference)
    if path.is_file():
        try:
            results = read_results(path)
        except (ValidationError, ValueError, OSError) as error:
            fail(f"{reference}: not a mis-audit results.json ({str(error).splitlines()[0]})")
        return str(path), results.score, snapshot(results)
    run_id = reference.removeprefix("#")
    if not run_id.isdigit():
        fail(f"{reference}: neither a results.json file nor a run id")
    try:
        stored, results_snapshot = open_store(_location(store)).run(int(run_id))
    except HistoryUnavailable as error:
        fail(str(error))
    except KeyError:
        fail(f"run #{run_id} is not in the history store")
    return _describe(stored), stored.score, results_snapshot


def _describe(run: StoredRun) -> str:
    return f"run #{run.run_id} of {run.started_at:%Y-%m-%d %H:%M} UTC"


def _print_changes(title: str, changes: list[FindingChange]) -> None:
    """One block per change: the ids whole on one line, the finding wrapped under them, so
    it reads at 80 columns as well as at 200."""
    if not changes:
        return
    out = _out()
    out.print(f"{title} ({len(changes)})", highlight=False, markup=False)
    for change in changes:
        before = change.before.value if change.before else "absent"
        after = change.after.value if change.after else "absent"
        out.print(Text(f"  {clean(change.control, 64)}  {clean(change.check, 64)}  "
                       f"{clean(change.target, 120)}: {before} -> {after}"), soft_wrap=True)
        out.print(Padding(Text(clean(change.summary, 300)), (0, 0, 0, 6), expand=False))


def diff(old: Annotated[str, typer.Argument(help="Older run: results.json or run id.")],
         new: Annotated[str, typer.Argument(help="Newer run: results.json or run id.")],
         strict: Annotated[bool, typer.Option(
             "--strict", help="Newly judged results that do not pass count as regressions.")]
         = False,
         store: HistoryOption = None) -> None:
    """Show what regressed, what is newly judged and what was fixed.

    Regressed: passed or was waived, now fails or errors. Newly judged: absent or not
    applicable before (a target or service added to the inventory). Exit 1 only when
    something regressed (with --strict, also when a newly judged result does not pass).
    """
    old_name, old_score, old_snapshot = _side(old, store)
    new_name, new_score, new_snapshot = _side(new, store)
    changes = diff_snapshots(old_snapshot, new_snapshot)
    out = _out()
    out.print(Text(f"old: {clean(old_name, 300)}\nnew: {clean(new_name, 300)}"), soft_wrap=True)
    out.print(f"score {old_score:g} -> {new_score:g} ({new_score - old_score:+g})",
              highlight=False, markup=False)
    if changes.unchanged:
        _out().print("no result changed", highlight=False, markup=False)
    _print_changes("regressed", changes.regressions)
    _print_changes("newly judged, not passing", changes.new)
    if changes.newly_passing:
        _out().print(f"newly judged, passing: {changes.newly_passing}", highlight=False,
                     markup=False)
    _print_changes("fixed", changes.fixes)
    raise typer.Exit(1 if changes.failed(strict) else 0)


def portfolio_page(output: Annotated[Path, typer.Option("--output", "-o", help="Directory the page (portfolio.html) is written to.")],
                   lang: Annotated[Lang, typer.Option("--lang")] = Lang.EN,
                   store: HistoryOption = None) -> None:
    """A static HTML page over the history of every system and site.

    Each with its latest verdict and score, trend, what regressed, links to the reports."""
    try:
        lines = portfolio(open_store(_location(store)))
    except HistoryUnavailable as error:
        fail(str(error))
    try:
        directory = private_directory(output)
        page = write_atomically(directory / PORTFOLIO_FILE,
                                render_portfolio(lines, directory.resolve(), lang))
    except OutputError as error:
        fail(str(error))
    _out().print(f"wrote {page} ({len(lines)} series)", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("history")(history)
    app.command("diff")(diff)
    app.command("portfolio")(portfolio_page)


def record_history(results: RunResults, history: str | None, directory: Path) -> RunResults:
    """Record a finished run and rewrite its results.json with the history summary embedded.

    The store being unavailable only warns, in one line: a run never fails for want of its
    history. results.json (and so the report) then says why the run is not recorded.
    """
    location = history or default_location()
    if location == DISABLED:
        return results
    try:
        recorded = record_run(results, location, str(directory.resolve()))
    except HistoryUnavailable as error:
        _err.print(f"warning: run not recorded in the history: {error}", highlight=False,
                   markup=False, soft_wrap=True)
        recorded = results.model_copy(update={"history_error": HistoryError(
            location=error.location, reason=error.reason)})
    write_results(recorded, directory)
    return recorded
