"""`mis-audit scan-files`: a quick personal-data self-check of a share or a directory.

The same probe and the same check as `data.personal_data_files` in a full run, on paths of
this machine: exit 1 when a clear-text file holds personal identifiers, 0 when none does,
2 on bad usage.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from audit.facts.pii import FileScan, PersonalDataFacts, scan_paths
from audit.registry import Finding
from audit.transports.filesystem import LocalTransport
from audit.vocabulary import Status
from checks.data import PersonalDataParams, personal_data_files_check

EXIT_CLEAN, EXIT_LEAKS, EXIT_USAGE = 0, 1, 2


def _identifiers(scan: FileScan) -> str:
    return ", ".join(f"{kind} {count}{'+' if kind in scan.capped else ''}"
                     for kind, count in scan.identifiers.items()) or "-"


def _samples(scan: FileScan) -> str:
    return " ".join(sample for samples in scan.samples.values() for sample in samples[:2])


def _table(facts: PersonalDataFacts, leaking: set[str]) -> Table:
    # Four columns, two facts stacked in two of them: it reads at 80 columns; a long path
    # folds onto more lines, never cut.
    table = Table(title="Files scanned", show_lines=False, expand=True)
    for column, ratio in (("file / sha256", 3), ("format", None), ("verdict", None),
                          ("identifiers / masked samples", 2)):
        table.add_column(column, overflow="fold", ratio=ratio)
    for scan in facts.files:
        verdict = "LEAK" if scan.name in leaking else \
            "protected" if scan.encrypted else "suspected" if scan.suspected_unverifiable \
            else "clean"
        samples = _samples(scan)
        table.add_row(f"{escape(scan.name)}\n{scan.sha256[:16]}", scan.format.value, verdict,
                      _identifiers(scan) + (f"\n{escape(samples)}" if samples else ""))
    return table


def _print_report(facts: PersonalDataFacts, finding: Finding, console: Console) -> None:
    leaking = {record["file"] for record in finding.details.get("leaking", [])}
    console.print(_table(facts, leaking))
    for problem in facts.problems:
        console.print(f"[yellow]not read:[/yellow] {escape(problem.path)}: "
                      f"{escape(problem.reason)}", highlight=False, soft_wrap=True)
    if facts.truncated:
        console.print(f"[yellow]stopped early:[/yellow] {escape(facts.truncated)}")
    colour = "red" if finding.status is Status.FAIL else "green"
    console.print(f"[{colour}]{escape(finding.summary)}[/{colour}]", highlight=False)


def _json_report(facts: PersonalDataFacts, finding: Finding) -> str:
    document = {
        "status": finding.status.value, "summary": finding.summary,
        "files": [scan.model_dump(mode="json") for scan in facts.files],
        "problems": [{"path": p.path, "reason": p.reason} for p in facts.problems],
        "truncated": facts.truncated,
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""

    @app.command("scan-files")
    def scan_files(
        paths: Annotated[list[Path], typer.Argument(help="Files or directories to scan.")],
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
        threshold: Annotated[int, typer.Option(min=0, help="Identifiers a clear-text file may hold.")] = 0,
        max_file_mb: Annotated[int, typer.Option(min=1, help="Largest file scanned, MiB.")] = 2048,
        max_files: Annotated[int, typer.Option(min=1, help="Most files scanned.")] = 10_000,
        max_total_mb: Annotated[int, typer.Option(min=1, help="Most bytes scanned in all, MiB.")] = 20480,
    ) -> None:
        """Scan files for personal identifiers (IIN, SNILS, RNOKPP); samples are masked."""
        console, errors = Console(), Console(stderr=True)
        missing = [str(path) for path in paths if not path.exists() and not path.is_symlink()]
        if missing:
            errors.print(f"[red]error:[/red] no such file or directory: "
                         f"{escape(', '.join(missing))}", highlight=False)
            raise typer.Exit(EXIT_USAGE)
        params = PersonalDataParams(threshold=threshold, max_file_bytes=max_file_mb << 20,
                                    max_files=max_files, max_total_bytes=max_total_mb << 20)
        facts = scan_paths(LocalTransport(), [os.path.abspath(path) for path in paths], params)
        finding = personal_data_files_check(facts, params)
        if as_json:
            console.out(_json_report(facts, finding), highlight=False)
        else:
            _print_report(facts, finding, console)
        raise typer.Exit(EXIT_LEAKS if finding.status is Status.FAIL else EXIT_CLEAN)
