"""The command line: parse, then load → plan → run → score → render, then an exit code."""

from __future__ import annotations

import importlib
import json
import signal
import sys
from dataclasses import replace
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from audit import __version__
from audit.commands import (
    COMMAND_MODULES,
    SignCert,
    SignKey,
    TrustedCerts,
    message_signing,
    stored_results,
)
from audit.commands.history import record_history
from audit.engine import Observer, Observers
from audit.errors import InputError
from audit.eventlog import JsonEventLog, emit
from audit.inventory import load_attestations, load_inventory, load_waivers
from audit.journal import (
    JOURNAL_FILE,
    Journal,
    JournalHeader,
    inputs_digest,
    new_header,
    read_journal,
    remove_journal,
    resumed_request,
)
from audit.logs import debug_log, quiet_logging
from audit.model.results import Result, RunResults
from audit.outputs import OutputError, new_private_directory, private_directory, write_atomically
from audit.plan import build_plan
from audit.profiles import load_profiles
from audit.progress import ProgressObserver
from audit.registry import default_registry, params_schema
from audit.run import (
    RESULTS_FILE,
    PreparedRun,
    RunRequest,
    dispatched_sites,
    execute,
    prepare,
    write_results,
)
from audit.runlock import RunLocked, run_locks
from audit.sites import MergeRefused, StoredRun, merge_runs
from audit.vocabulary import Lang, Verdict
from audit.yamlfile import load_document
from reports import DEFAULT_FORMATS, RENDERERS
from reports.pdf import PdfUnavailable

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="Security-posture auditor for medical information systems.")
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


class Exit(IntEnum):
    """The process's answer to cron and CI."""

    READY = 0
    NOT_READY = 1
    INVALID = 2
    REGRESSED = 3       # --fail-on-regression: something that passed last time now fails
    NOT_WRITTEN = 4     # an output could not be written (a full disk, permissions)
    LOCKED = 75         # another run holds this inventory or directory (EX_TEMPFAIL: retry)
    INTERRUPTED = 130


class LogFormat(StrEnum):
    """How run events reach stderr."""

    TEXT = "text"       # progress bar on a terminal, warnings as lines
    JSON = "json"       # one JSON object per event


def _fail_input(error: InputError) -> NoReturn:
    for problem in error.problems:
        # the message quotes the user's file: text, never rich markup
        err.print(Text.assemble(("error:", "red"), f" {problem}"), highlight=False,
                  soft_wrap=True)
    raise typer.Exit(Exit.INVALID)


def _usage(message: str) -> NoReturn:
    err.print(Text.assemble(("error:", "red"), f" {message}"), highlight=False, soft_wrap=True)
    raise typer.Exit(Exit.INVALID)


def _formats(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in RENDERERS]
    if unknown:
        _usage(f"unknown format {', '.join(unknown)} (known: {', '.join(RENDERERS)})")
    return names


def _fail_output(error: OutputError) -> NoReturn:
    # One line naming the path, no traceback: cron mails it as it is.
    err.print(f"error: {error}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(Exit.NOT_WRITTEN)


def _fresh_run_directory() -> Path:
    """Create a new run directory (0700) under ./mis-audit-runs, named by the time."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = Path("mis-audit-runs") / stamp
    candidate, suffix = base, 1
    while not new_private_directory(candidate):
        suffix += 1
        candidate = base.with_name(f"{stamp}-{suffix}")
    return candidate


def _run_directory(output: Path | None) -> Path:
    # Made before anything is contacted: an unwritable -o fails in a second, not after the audit.
    try:
        return private_directory(output) if output else _fresh_run_directory()
    except OutputError as error:
        _fail_output(error)


def _render(results: RunResults, formats: list[str], lang: Lang, directory: Path) -> list[Path]:
    """Write each rendered format into `directory`; raises OutputError naming the file."""
    written = []
    for name in formats:
        renderer = RENDERERS[name]
        if name == "json":
            continue   # results.json is always written first, by the run itself
        try:
            content = renderer.render(results, lang)
        except PdfUnavailable as error:
            raise OutputError(directory / renderer.file_name, str(error)) from None
        written.append(write_atomically(directory / renderer.file_name, content))
    return written


def _write_outputs(results: RunResults, history: str | None, formats: list[str], lang: Lang,
                   directory: Path) -> RunResults:
    """results.json, the history (which rewrites it), then the reports; exit 4 on a failure.

    An interrupted run is not recorded in the history: resumed, it is recorded once, whole."""
    try:
        write_results(results, directory)
        if results.complete:
            results = record_history(results, history, directory)
        _render(results, formats, lang, directory)
    except OutputError as error:
        _fail_output(error)
    except KeyboardInterrupt:
        # every file is written whole or not at all: say which are there, no traceback
        written = sorted(path.name for path in directory.iterdir() if not path.name.startswith("."))
        err.print(f"interrupted while writing outputs; complete in {directory}: "
                  f"{', '.join(written) or 'none'}", highlight=False, markup=False)
        raise typer.Exit(Exit.INTERRUPTED) from None
    return results


def _interrupt_on_sigterm() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


@app.command()
def run(
    profile: Annotated[list[str] | None, typer.Option("--profile", "-p", help="Profile id or path; repeat to combine.")] = None,
    inventory: Annotated[Path | None, typer.Option("--inventory", "-i", help="Inventory file (default: this machine).")] = None,
    waivers: Annotated[Path | None, typer.Option("--waivers", "-w", help="Waivers file.")] = None,
    attestations: Annotated[Path | None, typer.Option("--attestations", "-a", help="Attestations file: an assessor's verdicts on manual controls.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Run directory (default: a fresh one under ./mis-audit-runs).")] = None,
    format: Annotated[str, typer.Option("--format", help="Comma-separated output formats.")] = ",".join(DEFAULT_FORMATS),
    lang: Annotated[Lang, typer.Option("--lang", help="Report language.")] = Lang.EN,
    jobs: Annotated[int, typer.Option("--jobs", min=1, max=256, help="Checks run at once.")] = 8,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds each check may take.")] = 30.0,
    fail_under: Annotated[float | None, typer.Option("--fail-under", min=0, max=100, help="Exit 0 when the score reaches this, whatever the verdict.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no summary (for cron).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Keep tracebacks of failed checks in results; log every library to mis-audit.log in the run directory.")] = False,
    history: Annotated[str | None, typer.Option("--history", help="History store: a SQLite file, a postgresql:// URL, or 'off' (default: $MIS_AUDIT_HISTORY, else a per-user file).")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue the interrupted run in DIR, with its inputs: what finished is kept, the rest is probed.")] = None,
    fail_on_regression: Annotated[bool, typer.Option("--fail-on-regression", help="Exit 3 when something that passed in the previous run of this audit now fails.")] = False,
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="json: one JSON object per event on stderr, for journald or a log collector.")] = LogFormat.TEXT,
    broker: Annotated[str | None, typer.Option("--broker", envvar="MIS_AUDIT_BROKER", help="Task queue broker: each site's targets go to its scanner (mis-audit worker --site NAME).")] = None,
    site_timeout: Annotated[float | None, typer.Option("--site-timeout", min=1, help="Seconds a site's scanner may take for all its targets; then they are errors naming the site (default: 600).")] = None,
    sign_key: SignKey = None,
    sign_cert: SignCert = None,
    trusted_certs: TrustedCerts = None,
) -> None:
    """Audit the targets against the profile(s); write results.json and the reports."""
    formats = _formats(format)
    header, finished = _interrupted_run(resume, profile, inventory, waivers)
    signing = message_signing(sign_key, sign_cert, trusted_certs)
    try:
        # Attestations decide nothing that is probed: a resumed run may be given them afresh.
        request = replace(resumed_request(header, debug, broker, site_timeout, signing),
                          attestations=attestations) if header \
            else RunRequest(
            profiles=profile or RunRequest().profiles, inventory=inventory, waivers=waivers,
            attestations=attestations, jobs=jobs, timeout=timeout, debug=debug, broker=broker,
            site_timeout=site_timeout or RunRequest.site_timeout, signing=signing)
        prepared = prepare(request)
    except InputError as error:
        _fail_input(error)
    except KeyboardInterrupt:
        err.print("interrupted before anything was contacted", highlight=False)
        raise typer.Exit(Exit.INTERRUPTED) from None
    for waiver in prepared.waivers.expired:
        err.print(f"warning: waiver for {waiver.control} ({waiver.target}) expired on "
                  f"{waiver.expires.isoformat()} and is ignored", highlight=False, markup=False)
    if header and inputs_digest(prepared) != header.inputs_sha256:
        _usage(f"{resume}: the profile, inventory or waivers changed since the interrupted "
               "run; start a new run")
    directory = resume or _run_directory(output)
    quiet_logging()         # again: every library is loaded by now
    if debug:
        debug_log(directory)
    try:
        with run_locks(directory, prepared.request.inventory):
            if header is None and (directory / JOURNAL_FILE).exists():
                _usage(f"{directory} holds an interrupted run: continue it with --resume "
                       f"{directory}, or choose another directory")
            results = _probe(prepared, directory, header, finished,
                             quiet or log_format is LogFormat.JSON, log_format)
            results = _write_outputs(results, history, formats, lang, directory)
            if results.complete:
                remove_journal(directory)
    except RunLocked as locked:
        err.print(f"error: {locked}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(Exit.LOCKED) from None
    for warning in results.warnings:      # unused credentials, evidence, waivers (audit.usage)
        if log_format is LogFormat.JSON:
            emit(sys.stderr, "warning", message=warning)
        else:
            err.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)
    code = _exit_code(results, fail_under, fail_on_regression)
    if log_format is LogFormat.JSON:
        emit(sys.stderr, "run_finished", complete=results.complete, score=results.score,
             verdict=results.verdict.value, results=str(directory.resolve() / RESULTS_FILE),
             exit_code=int(code))
    if not quiet:
        _print_summary(results, directory, formats)
    raise typer.Exit(code)


def _interrupted_run(resume: Path | None, profile: list[str] | None, inventory: Path | None,
                     waivers: Path | None) -> tuple[JournalHeader | None, list[Result]]:
    if resume is None:
        return None, []
    if profile or inventory or waivers:
        _usage("--resume continues a run with its own inputs: give no -p, -i or -w")
    try:
        return read_journal(resume)
    except InputError as error:
        _fail_input(error)


def _probe(prepared: PreparedRun, directory: Path, header: JournalHeader | None,
           finished: list[Result], quiet: bool, log_format: LogFormat) -> RunResults:
    """Run the plan, checkpointing each result; progress on a terminal, events as asked."""
    started_at = header.started_at if header else datetime.now(UTC)
    journal = Journal(directory, None if header else new_header(prepared, started_at))
    showing = not quiet and err.is_terminal
    targets = [item.target for item in build_plan(prepared.profile,
                                                  prepared.inventory.inventory.targets)
               ] if showing or log_format is LogFormat.JSON else []
    progress = ProgressObserver(err, dispatched_sites(prepared), targets, finished) \
        if showing else None
    observers: list[Observer] = [journal, *([progress] if progress else [])]
    if log_format is LogFormat.JSON:
        observers.append(JsonEventLog(sys.stderr, targets, finished))
    try:
        return execute(prepared, Observers(*observers), finished, started_at)
    finally:
        journal.close()
        if progress:
            progress.close()
        if journal.failure:
            err.print(f"warning: checkpoint stopped ({journal.failure}): an interruption "
                      "now would lose the run", highlight=False, markup=False)


def _exit_code(results: RunResults, fail_under: float | None, fail_on_regression: bool) -> Exit:
    if not results.complete:
        return Exit.INTERRUPTED
    if fail_on_regression and results.history and results.history.regressions:
        return Exit.REGRESSED
    if fail_under is not None:
        return Exit.READY if results.score >= fail_under else Exit.NOT_READY
    return Exit.READY if results.verdict is Verdict.READY else Exit.NOT_READY


def _print_summary(results: RunResults, directory: Path, formats: list[str]) -> None:
    verdict = "READY" if results.verdict is Verdict.READY else "NOT READY"
    colour = "green" if results.verdict is Verdict.READY else "red"
    out.print(f"[{colour}]{verdict}[/{colour}]  score {results.score:g} / 100 "
              f"(threshold {results.threshold:g})" + ("" if results.complete else "  [INTERRUPTED]"),
              highlight=False)
    for blocker in results.blockers:
        out.print(f"  blocker: {blocker.summary}", highlight=False, markup=False)
    directory = directory.resolve()
    report = directory / RENDERERS["html"].file_name
    out.print(f"results: {directory / RESULTS_FILE}", highlight=False, markup=False)
    if "html" in formats:
        out.print(f"report:  {report}", highlight=False, markup=False)


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="Profiles, inventories, waivers, attestations.")]) -> None:
    """Validate input files; nothing is contacted. Exit 2 on the first invalid file."""
    registry = default_registry()
    today = datetime.now(UTC).date()
    failed = False
    for path in files:
        try:
            kind = _kind_of(path)
            if kind == "profile":
                load_profiles([str(path) if "/" in str(path) else f"./{path}"], registry)
            elif kind == "inventory":
                load_inventory(path)
            elif kind == "attestations":
                load_attestations(path, today, expired_is_error=True)
            else:
                load_waivers(path, today, expired_is_error=True)
            out.print(f"ok: {path} ({kind})", highlight=False, markup=False)
        except InputError as error:
            failed = True
            for problem in error.problems:
                err.print(f"error: {problem}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(Exit.INVALID if failed else Exit.READY)


def _kind_of(path: Path) -> str:
    data = load_document(path).data
    if isinstance(data, dict) and set(data) == {"attestations"} or isinstance(data, list) \
            and data and all(isinstance(item, dict) and "attested_by" in item for item in data):
        return "attestations"
    if isinstance(data, list) or (isinstance(data, dict) and set(data) == {"waivers"}):
        return "waivers"
    if isinstance(data, dict) and ("organisation" in data or "targets" in data):
        return "inventory"
    return "profile"


@app.command("checks")
def list_checks(check_id: Annotated[str | None, typer.Argument(help="Show one check.")] = None) -> None:
    """The registered checks and their parameters."""
    registry = default_registry()
    if check_id is None:
        # ids are copied into profiles: never cut them
        table = Table(Column("id", no_wrap=True), "applies to", "title")
        for spec in registry.specs():
            table.add_row(spec.id, ", ".join(sorted(spec.applies_to)), spec.title)
        out.print(table)
        return
    if check_id not in registry:
        _usage(f"unknown check id {check_id!r}")
    spec = registry.get(check_id)
    out.print(f"{spec.id}: {spec.title}", highlight=False, markup=False)
    out.print(f"applies to: {', '.join(sorted(spec.applies_to))}", highlight=False, markup=False)
    out.print(spec.description, highlight=False, markup=False)
    out.print("parameters (JSON Schema):", highlight=False, markup=False)
    out.print_json(json.dumps(params_schema(spec)))


@app.command()
def report(
    results_file: Annotated[Path, typer.Argument(help="A stored results.json.")],
    format: Annotated[str, typer.Option("--format")] = "html",
    lang: Annotated[Lang, typer.Option("--lang")] = Lang.EN,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
) -> None:
    """Re-render a stored run; nothing is probed."""
    formats = [name for name in _formats(format) if name != "json"]
    results = stored_results(results_file)
    try:
        # A new -o directory is 0700; an existing one (the run's own) keeps its mode.
        written = _render(results, formats, lang, private_directory(output or results_file.parent))
    except OutputError as error:
        _fail_output(error)
    for path in written:
        out.print(f"wrote {path}", highlight=False, markup=False)


@app.command()
def merge(
    results_files: Annotated[list[Path], typer.Argument(help="The sites' results.json files.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Run directory (default: a fresh one under ./mis-audit-runs).")] = None,
    format: Annotated[str, typer.Option("--format", help="Comma-separated output formats.")] = ",".join(DEFAULT_FORMATS),
    lang: Annotated[Lang, typer.Option("--lang", help="Report language.")] = Lang.EN,
    history: Annotated[str | None, typer.Option("--history", help="History store (as for run).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary.")] = False,
) -> None:
    """Merge per-site runs of one profile into one record and report of the whole system."""
    formats = _formats(format)
    runs = [StoredRun(str(path), stored_results(path)) for path in results_files]
    try:
        merged = merge_runs(runs)
    except MergeRefused as refused:
        _usage(str(refused))
    directory = _run_directory(output)
    merged = _write_outputs(merged, history, formats, lang, directory)
    if not quiet:
        _print_summary(merged, directory, formats)
    raise typer.Exit(_exit_code(merged, None, False))


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__, highlight=False, markup=False)


def _register_command_modules() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_command_modules()


def main() -> None:
    """Console-script entry point."""
    quiet_logging()     # no library prints a log line or a thread's traceback on the terminal
    _interrupt_on_sigterm()
    app(prog_name="mis-audit")


if __name__ == "__main__":
    main()
