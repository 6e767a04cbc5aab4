"""The portfolio: every series of the history store (a system, or one of its sites) with its
latest verdict and score, its trend, what regressed since its previous run, and where its
report is. Read from the store alone; `reports/portfolio.py` renders it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audit.history import TREND_LENGTH, HistoryStore, StoredRun
from audit.history_diff import diff_snapshots
from audit.model.results import FindingChange

# Runs read from the store for the page: enough for every series' trend in a large group.
RUNS_READ = 10_000


@dataclass(frozen=True)
class Series:
    """One line of the portfolio."""

    organisation: str
    system: str
    site: str | None
    latest: StoredRun
    trend: list[StoredRun]              # oldest first, the latest last
    regressions: list[FindingChange]    # since the series' previous run
    report: Path | None                 # the latest run's HTML report, if it is still there


def _key(run: StoredRun) -> tuple[str, str, str, str]:
    return run.organisation, run.system, run.family or run.profiles, run.site or ""


def portfolio(store: HistoryStore) -> list[Series]:
    """Every series, systems before their sites, by organisation and system."""
    grouped: dict[tuple[str, str, str, str], list[StoredRun]] = {}
    for run in store.runs(RUNS_READ, sites=True):          # newest first
        grouped.setdefault(_key(run), []).append(run)
    compared = [run.run_id for runs in grouped.values() if len(runs) > 1 for run in runs[:2]]
    snapshots = store.snapshots(compared)
    lines = []
    for key in sorted(grouped):
        runs = grouped[key]
        latest = runs[0]
        regressions: list[FindingChange] = []
        if len(runs) > 1:
            regressions = diff_snapshots(snapshots[runs[1].run_id],
                                         snapshots[latest.run_id]).regressions
        report = Path(latest.run_directory) / "report.html" if latest.run_directory else None
        lines.append(Series(latest.organisation, latest.system, latest.site, latest,
                            list(reversed(runs[:TREND_LENGTH])), regressions,
                            report if report and report.is_file() else None))
    return lines
