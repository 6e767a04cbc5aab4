"""Sub-commands that live beside their area; `audit.cli` registers each module listed here."""

from pathlib import Path
from typing import NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from audit.model.results import RunResults
from audit.run import read_results

COMMAND_MODULES: tuple[str, ...] = (
    "audit.commands.scan",
    "audit.commands.history",
    "audit.commands.profiles",
    "audit.commands.grants",
    "audit.commands.init",
    "audit.commands.schedule",
    "audit.commands.plan",
    "audit.commands.seal",
    "audit.commands.discover",
    "audit.commands.fix",
    "audit.commands.worker",
)


def fail(message: str, code: int = 2) -> NoReturn:
    """`error: MESSAGE` on stderr (plain text: it may quote the user's input), then exit."""
    Console(stderr=True).print(f"error: {message}", highlight=False, markup=False,
                               soft_wrap=True)
    raise typer.Exit(code)


def stored_results(path: Path) -> RunResults:
    """A stored results.json, or exit 2 saying why it cannot be read."""
    try:
        return read_results(path)
    except FileNotFoundError:
        fail(f"{path}: file not found")
    except OSError as error:
        fail(f"{path}: cannot read: {error.strerror or error}")
    except (ValidationError, ValueError) as error:
        fail(f"{path}: not a mis-audit results.json ({str(error).splitlines()[0]})")
