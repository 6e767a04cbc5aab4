"""The terminal's progress bars: one for a run here, one per site for a dispatched run."""

from __future__ import annotations

import io
import re

from rich.console import Console

from audit.model.results import Result
from audit.progress import ProgressObserver
from audit.vocabulary import Status

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _result(target: str, check: str = "db.unauthenticated_access") -> Result:
    return Result(control="net.db_unauth", check=check, target=target, status=Status.PASS,
                  summary="ok")


def _screen(observer: ProgressObserver, console: Console) -> str:
    observer._progress.refresh()
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_a_dispatched_run_shows_a_bar_per_site_and_one_for_here() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=80, color_system=None)
    planned = ["north-db", "north-db", "north-host", "south-db", "here-host", "organisation"]
    observer = ProgressObserver(console, {"north-db": "north", "north-host": "north",
                                          "south-db": "south"}, planned,
                                already=[_result("south-db")])
    observer.started(5)
    observer.finished(_result("north-db"))
    observer.finished(_result("here-host", "host.firewall"))
    screen = _screen(observer, console)
    observer.close()
    lines = ANSI.sub("", screen.replace("\r", "\n")).splitlines()
    last = {line.split()[0]: line for line in lines if line.strip()}
    assert "1/3" in last["north"] and "db.unauthenticated_access @ north-db" in last["north"]
    assert "1/1" in last["south"], "a resumed run's finished results count"
    assert "1/2" in last["here"] and "host.firewall @ here-host" in last["here"]
    assert all(len(line) <= 80 for line in last.values())


def test_a_run_here_shows_one_bar() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=80, color_system=None)
    observer = ProgressObserver(console)
    observer.started(2)
    observer.finished(_result("web"))
    screen = _screen(observer, console)
    observer.close()
    assert "auditing" in screen and "1/2" in screen and "north" not in screen
