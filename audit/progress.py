"""Progress on the terminal (stderr), fed by the engine's observer interface."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from audit.model.results import Result

HERE = "here"           # the bar of what this machine audits, beside the sites' bars


class ProgressObserver:
    """A rich progress bar: one step per finished check. A run that sends targets to their
    sites' scanners shows a bar per site (and one for what is audited here), each sized by
    its part of the plan and started at what a resumed run had already finished."""

    def __init__(self, console: Console, site_of: Mapping[str, str] | None = None,
                 planned_targets: Iterable[str] = (), already: Sequence[Result] = ()) -> None:
        self._site_of = dict(site_of or {})
        planned = Counter(self._site_of.get(target, HERE) for target in planned_targets)
        done = Counter(self._site_of.get(result.target, HERE) for result in already)
        width = max((len(site) for site in planned), default=0)
        self._progress = Progress(TextColumn(f"{{task.fields[label]:<{max(width, 8)}}}"),
                                  BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                  TextColumn("{task.description}"), console=console,
                                  transient=True)
        if self._site_of:
            self._bars = {site: self._progress.add_task("", total=count, completed=done[site],
                                                        label=site)
                          for site, count in sorted(planned.items(),
                                                    key=lambda item: (item[0] == HERE, item[0]))}
        else:
            self._bars = {HERE: self._progress.add_task("", total=None, label="auditing")}
        self._progress.start()

    def started(self, total: int) -> None:
        """Size the bar (the sites' bars are sized already)."""
        if not self._site_of:
            self._progress.update(self._bars[HERE], total=total)

    def finished(self, result: Result) -> None:
        """Advance the bar of the result's site, naming the last check."""
        self._progress.update(self._bars[self._site_of.get(result.target, HERE)], advance=1,
                              description=f"{result.check} @ {result.target}")

    def close(self) -> None:
        """Remove the bars."""
        self._progress.stop()
