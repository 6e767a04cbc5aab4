"""`mis-audit scan-files`: a quick personal-data self-check of a share (not built yet)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
