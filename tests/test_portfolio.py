"""The portfolio page over the history store: three runs of a two-site system, the third
regressing at one site; the history keeps the system's series and each site's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hosts import HOST_CHECKS, profile_text
from runs import weak_and_hardened_trees
from test_report_browser import _chromium, _console_lines

from audit.history import open_store


def _inventory(trees: Path, north: str) -> str:
    return ("organisation: Hospital group\nsystem: MIS 4\ntargets:\n"
            f"  - {{name: ward-a, site: north, roles: [host], root: {trees / north}}}\n"
            f"  - {{name: ward-b, site: south, roles: [host], root: {trees / 'hardened'}}}\n")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "audit.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The history store and the runs' directory after three runs: north goes weak last."""
    work = tmp_path_factory.mktemp("portfolio")
    trees = weak_and_hardened_trees(work / "trees")
    history = work / "history.sqlite"
    (work / "profile.yaml").write_text(profile_text(HOST_CHECKS))
    for index, north in enumerate(("hardened", "hardened", "weak"), start=1):
        (work / "inventory.yaml").write_text(_inventory(trees, north))
        done = _cli("run", "-p", str(work / "profile.yaml"), "-i", str(work / "inventory.yaml"),
                    "-o", str(work / "runs" / f"run{index}"), "--history", str(history),
                    "--quiet")
        assert done.returncode in (0, 1), done.stderr
    return history, work


def test_the_history_keeps_the_system_and_each_site(three_runs: tuple[Path, Path]) -> None:
    history, _ = three_runs
    runs = open_store(str(history)).runs(sites=True)
    assert len(runs) == 9                       # three runs, each with its two sites
    assert [run.site for run in open_store(str(history)).runs()] == [None] * 3
    latest = {run.site: run for run in reversed(runs)}
    assert latest["south"].score == 100 and latest["north"].score == 0
    assert all(run.run_directory and run.run_directory.endswith("run3")
               for run in runs[:3])


def test_the_portfolio_shows_each_series_its_trend_and_what_regressed(
        three_runs: tuple[Path, Path], tmp_path: Path) -> None:
    history, work = three_runs
    done = _cli("portfolio", "-o", str(tmp_path / "page"), "--history", str(history))
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "page" / "portfolio.html").read_text()
    rows = re.findall(r"<tr(?: class=\"site\")?>\n<td>(.*?)</td>", page, re.DOTALL)
    assert len(rows) == 3 and "Hospital group" in rows[0]
    assert "north" in rows[1] and "south" in rows[2]
    assert page.count('<circle cx=') == 9, "three runs in each of three trends"
    regressed = page.split('<tr class="site">')[1]          # north's line
    assert "ward-a" in regressed and "host.ssh_root_login" in regressed
    south = page.split('<tr class="site">')[2]
    assert "ward-b" not in south.split("<ul")[0] and "nothing" in south
    link = re.search(r'href="([^"]+)"', page)
    assert link and (tmp_path / "page" / link.group(1)).resolve() == \
        (work / "runs" / "run3" / "report.html").resolve()
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org", "")

    dom = _chromium(tmp_path / "page" / "portfolio.html", tmp_path, "--dump-dom")
    assert dom.returncode == 0 and _console_lines(dom) == []
    shot = tmp_path / "portfolio.png"
    taken = _chromium(tmp_path / "page" / "portfolio.html", tmp_path, f"--screenshot={shot}",
                      "--window-size=1280,900")
    assert taken.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
