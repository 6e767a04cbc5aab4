"""Progress on the terminal (stderr), fed by the engine's observer interface."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from audit.model.results import Result


class ProgressObserver:
    """A rich progress bar: one step per finished check."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(TextColumn("auditing"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("{task.description}"),
                                  console=console, transient=True)
        self._task = self._progress.add_task("", total=None)
        self._progress.start()

    def started(self, total: int) -> None:
        """Size the bar."""
        self._progress.update(self._task, total=total)

    def finished(self, result: Result) -> None:
        """Advance the bar, naming the last check."""
        self._progress.update(self._task, advance=1, description=f"{result.check} @ {result.target}")

    def close(self) -> None:
        """Remove the bar."""
        self._progress.stop()
