"""`mis-audit profiles` (the shipped profiles with their control counts) and
`mis-audit profiles show ID|PATH` (one profile resolved: inheritance, library and tailoring
applied, with every control's references, checks and parameters)."""

from __future__ import annotations

import json
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from audit.errors import InputError
from audit.model.profile import Reference, ReferenceKind
from audit.profiles import ResolvedControl, ResolvedProfile, builtin_profile_ids, load_profiles
from audit.registry import default_registry
from audit.vocabulary import Lang, localized

_out = Console()
_err = Console(stderr=True)

# How a reference's kind is worded, as the report words it.
KIND_LABELS: dict[ReferenceKind, str] = {
    ReferenceKind.LAW: "legal requirement",
    ReferenceKind.PROPOSAL: "recommended practice (proposal, not in force)",
    ReferenceKind.EXTERNAL: "external reference",
    ReferenceKind.VERIFY: "unconfirmed citation",
    ReferenceKind.INCIDENT: "incident",
}

LangOption = Annotated[Lang, typer.Option("--lang", help="Language of titles.")]

profiles_app = typer.Typer(help="The shipped profiles, or one profile resolved.",
                           no_args_is_help=False)


def _fail(error: InputError) -> NoReturn:
    for problem in error.problems:
        _err.print(f"error: {problem}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(2)


def _resolve(reference: str) -> ResolvedProfile:
    try:
        return load_profiles([reference], default_registry())
    except InputError as error:
        _fail(error)


@profiles_app.callback(invoke_without_command=True)
def list_profiles(context: typer.Context, lang: LangOption = Lang.EN) -> None:
    """List the shipped profiles with their control counts."""
    if context.invoked_subcommand is not None:
        return
    table = Table("id", "version", "controls", "threshold", "title")
    for known in builtin_profile_ids():
        resolved = _resolve(known)
        table.add_row(known, resolved.version, str(len(resolved.controls)),
                      f"{resolved.threshold:g}", Text(localized(resolved.title, lang)))
    _out.print(table)


@profiles_app.command("show")
def show(profile: Annotated[str, typer.Argument(help="A profile id or a path to a profile.")],
         lang: LangOption = Lang.EN,
         as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Print one profile resolved: inheritance, library controls and tailoring applied."""
    resolved = _resolve(profile)
    if as_json:
        _out.print_json(json.dumps(resolved_document(resolved)))
        return
    _print_header(resolved, lang)
    for item in resolved.controls:
        _print_control(item, lang)
    for disabled in resolved.disabled:
        _line(f"disabled {disabled.control} (by {disabled.profile}): {disabled.reason}")


def resolved_document(resolved: ResolvedProfile) -> dict[str, Any]:
    """The resolved profile as plain JSON data."""
    return {
        "id": resolved.id, "title": resolved.title, "version": resolved.version,
        "description": resolved.description,
        "threshold": resolved.threshold,
        "weights": {severity.value: weight for severity, weight in resolved.weights.items()},
        "sources": [record.model_dump(mode="json") for record in resolved.records],
        "disabled": [item.model_dump(mode="json") for item in resolved.disabled],
        "controls": [{**item.control.model_dump(mode="json", by_alias=True, exclude={"checks"}),
                      "checks": [{"check": planned.spec.id,
                                  "with": planned.params.model_dump(mode="json")}
                                 for planned in item.checks]}
                     for item in resolved.controls],
    }


def _line(text: str) -> None:
    # Wrapped at the terminal's width, continuation lines under the text's own indent.
    indent = len(text) - len(text.lstrip(" "))
    shown = Text(text.lstrip(" "))
    _out.print(Padding(shown, (0, 0, 0, indent), expand=False) if indent else shown,
               highlight=False)


def _print_header(resolved: ResolvedProfile, lang: Lang) -> None:
    _line(f"{resolved.id} {resolved.version}: {localized(resolved.title, lang)}")
    if resolved.description:
        _line(localized(resolved.description, lang))
    _line(f"threshold {resolved.threshold:g}; weights "
          + ", ".join(f"{severity.value} {weight}" for severity, weight in resolved.weights.items()))
    for record in resolved.records:
        _line(f"source {record.source} ({record.id} {record.version}, "
              f"sha256 {record.sha256[:12]})")
    _line(f"{len(resolved.controls)} controls")


def _print_control(item: ResolvedControl, lang: Lang) -> None:
    control = item.control
    _line("")
    _line(f"{control.id} [{control.severity.value}] {localized(control.title, lang)}")
    if not item.checks:
        _line("  checks: none (manual: an assessor decides from evidence)")
    for planned in item.checks:
        parameters = json.dumps(planned.params.model_dump(mode="json"), ensure_ascii=False)
        _line(f"  check {planned.spec.id} {parameters}")
    for reference in control.references:
        _line(f"  {_describe(reference, lang)}")


def _describe(reference: Reference, lang: Lang) -> str:
    source = f" (source: {reference.source})" if reference.source else ""
    return f"[{KIND_LABELS[reference.kind]}] {reference.text_in(lang)}{source}"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.add_typer(profiles_app, name="profiles")
