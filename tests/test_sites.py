"""Sites: targets name the site whose scanner reaches them, each site is scored on its own,
and `mis-audit merge` makes one record of per-site runs that equals one run over them all."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hosts import HOST_CHECKS, profile_text
from runs import run_audit, statuses, weak_and_hardened_trees

from audit.model.results import RunResults
from audit.sites import MergeRefused, StoredRun, merge_runs
from audit.vocabulary import Lang, Verdict
from reports.html import render_html

PROFILE = profile_text(HOST_CHECKS)


def _inventory(trees: Path, targets: dict[str, str], site: str | None = None) -> str:
    """An inventory of offline host trees: target name -> variant@site (or variant)."""
    lines = ["organisation: Hospital group\nsystem: MIS 4\n" + (f"site: {site}\n" if site else "")
             + "targets:\n"]
    for name, where in targets.items():
        variant, _, own_site = where.partition("@")
        lines.append(f"  - {{name: {name}, roles: [host], root: {trees / variant}"
                     + (f", site: {own_site}" if own_site else "") + "}\n")
    return "".join(lines)


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return weak_and_hardened_trees(tmp_path_factory.mktemp("site-trees"))


def _run(directory: Path, inventory: str, profile: str = PROFILE) -> RunResults:
    directory.mkdir(parents=True)
    results = run_audit(directory, profile, inventory)
    (directory / "results.json").write_text(results.model_dump_json())
    return results


@dataclass
class Runs:
    """One run over both sites, and each site's own run, stored under `work`."""

    work: Path
    whole: RunResults
    north: RunResults
    south: RunResults

    def stored(self, *sites: str) -> list[StoredRun]:
        return [StoredRun(str(self.work / site / "results.json"), getattr(self, site))
                for site in sites]


@pytest.fixture(scope="module")
def runs(trees: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    work = tmp_path_factory.mktemp("site-runs")
    return Runs(
        work, _run(work / "whole", _inventory(trees, {"ward-a": "weak@north",
                                                      "ward-b": "hardened@south"})),
        _run(work / "north", _inventory(trees, {"ward-a": "weak"}, site="north")),
        _run(work / "south", _inventory(trees, {"ward-b": "hardened"}, site="south")))


def test_each_site_is_scored_on_its_own(runs: Runs) -> None:
    whole = runs.whole
    sites = {site.name: site for site in whole.sites}
    assert sorted(sites) == ["north", "south"]
    assert sites["north"].targets == ["ward-a"] and sites["south"].targets == ["ward-b"]
    assert sites["north"].verdict is Verdict.NOT_READY and sites["north"].score == 0
    assert sites["south"].score == 100 and sites["south"].verdict is Verdict.READY
    assert whole.score == 0, "a control is as bad as its worst target, whichever the site"
    assert {t.name: t.site for t in whole.targets} == {"ward-a": "north", "ward-b": "south"}


def test_a_run_without_sites_has_no_site_section(trees: Path, tmp_path: Path) -> None:
    plain = _run(tmp_path / "plain", _inventory(trees, {"ward-a": "weak"}))
    assert plain.sites == []
    assert 'id="sites"' not in render_html(plain)


def test_the_merge_of_per_site_runs_equals_one_run_over_all(
        runs: Runs) -> None:
    merged = merge_runs(runs.stored("north", "south"))
    whole = runs.whole
    assert statuses(merged) == statuses(whole)
    assert (merged.score, merged.verdict) == (whole.score, whole.verdict)
    assert [(c.id, c.status) for c in merged.controls] == [(c.id, c.status) for c in whole.controls]
    assert [(s.name, s.score, s.verdict) for s in merged.sites] == \
        [(s.name, s.score, s.verdict) for s in whole.sites]
    assert merged.sites[0].source == str(runs.work / "north" / "results.json")
    assert merged.started_at == min(runs.north.started_at, runs.south.started_at)


def test_runs_of_different_profiles_or_sharing_a_target_are_refused(
        runs: Runs, trees: Path, tmp_path: Path) -> None:
    stricter = _run(tmp_path / "stricter", _inventory(trees, {"ward-c": "weak"}, site="east"),
                    PROFILE.replace("version: '1'", "version: '2'"))
    with pytest.raises(MergeRefused, match="another profile"):
        merge_runs([*runs.stored("north"), StoredRun("east/results.json", stricter)])
    with pytest.raises(MergeRefused, match="'ward-a' is in"):
        merge_runs(runs.stored("north", "north"))


def test_the_merge_command_writes_one_report_with_its_sites(
        runs: Runs, tmp_path: Path) -> None:
    work = runs.work
    out = tmp_path / "merged"
    merged = subprocess.run(
        [sys.executable, "-m", "audit.cli", "merge", str(work / "north" / "results.json"),
         str(work / "south" / "results.json"), "-o", str(out), "--history", "off",
         "--lang", "ru"], capture_output=True, text=True, timeout=120, check=False)
    assert merged.returncode == 1, merged.stderr           # not ready: north fails
    record = json.loads((out / "results.json").read_text())
    assert [site["name"] for site in record["sites"]] == ["north", "south"]
    page = (out / "report.html").read_text()
    assert 'id="sites"' in page and "Площадки" in page
    refused = subprocess.run(
        [sys.executable, "-m", "audit.cli", "merge", str(work / "north" / "results.json"),
         str(work / "north" / "results.json"), "-o", str(tmp_path / "x"), "--history", "off"],
        capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 2 and "is in" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert render_html(RunResults.model_validate(record), Lang.KK).count("Алаңдар") >= 1
