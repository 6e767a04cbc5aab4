"""`mis-audit discover`: sweep the networks a user names and write a draft inventory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from audit.commands import fail
from audit.discovery import draft_inventory, parse_networks, sweep
from audit.errors import FactUnavailable
from audit.outputs import OutputError, write_atomically


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""

    @app.command("discover")
    def discover(
        networks: Annotated[list[str], typer.Argument(help="Networks (10.20.0.0/24) or addresses to sweep; nothing else is touched.")],
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the draft inventory here instead of printing it.")] = None,
    ) -> None:
        """Find the services on the networks named and write a draft inventory.

        Read-only: a TCP connect scan of common ports, then a client's first message to each
        open one."""
        try:
            found = sweep(parse_networks(networks))
        except ValueError as error:
            fail(str(error))
        except FactUnavailable as error:
            fail(error.unavailable.message, code=1)
        text = draft_inventory(found)
        if output is None:
            typer.echo(text, nl=False)
            return
        try:
            write_atomically(output, text)
        except OutputError as error:
            fail(str(error), code=4)
        Console(stderr=True).print(f"{len(found.hosts)} hosts written to {output}",
                                   highlight=False, markup=False)
