"""Sub-commands that live beside their area; `audit.cli` registers each module listed here."""

from typing import NoReturn

import typer
from rich.console import Console

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
)


def fail(message: str, code: int = 2) -> NoReturn:
    """`error: MESSAGE` on stderr (plain text: it may quote the user's input), then exit."""
    Console(stderr=True).print(f"error: {message}", highlight=False, markup=False,
                               soft_wrap=True)
    raise typer.Exit(code)
