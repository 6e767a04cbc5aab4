"""One whole audit from test files: write the profile, inventory and waivers, prepare, execute."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from hosts import HOST_CHECKS, profile_text

from audit.model.results import Result, RunResults
from audit.registry import Registry
from audit.run import RunRequest, execute, prepare
from audit.vocabulary import Status


def run_audit(directory: Path, profile: str, inventory: str | None = None,
              waivers: str | None = None, registry: Registry | None = None,
              today: date | None = None, **request: Any) -> RunResults:
    """Write the given texts into `directory` (profile.yaml, inventory.yaml, waivers.yaml),
    then run the audit in this process; `request` holds the other RunRequest fields
    (timeout, jobs...). Without an inventory the target is this machine."""
    files = {"profile.yaml": profile, "inventory.yaml": inventory, "waivers.yaml": waivers}
    for name, text in files.items():
        if text is not None:
            (directory / name).write_text(text, encoding="utf-8")
    run = RunRequest(profiles=[str(directory / "profile.yaml")],
                     inventory=directory / "inventory.yaml" if inventory is not None else None,
                     waivers=directory / "waivers.yaml" if waivers is not None else None,
                     **request)
    return execute(prepare(run, registry=registry, today=today))


def statuses(results: RunResults) -> dict[tuple[str, str], Status]:
    """Every result's status by (check, target)."""
    return {(result.check, result.target): result.status for result in results.results}


def by_target(results: RunResults) -> dict[tuple[str, str], Result]:
    """Every result by (target, check)."""
    return {(result.target, result.check): result for result in results.results}


def offline_host_run(directory: Path, variant: str = "weak") -> RunResults:
    """The VARIANT host tree (tests/hosts/) audited offline with every host check."""
    from tests.servers.sshd import host_tree

    host_tree(variant, directory / variant)
    inventory = (f"organisation: X\ntargets:\n  - {{name: {variant}, roles: [host], "
                 f"root: {directory / variant}}}\n")
    return run_audit(directory, profile_text(HOST_CHECKS), inventory)


def weak_and_hardened_trees(directory: Path) -> Path:
    """The weak and hardened host trees, copied into `directory` (its `weak` and `hardened`)."""
    from tests.servers.sshd import host_tree

    for variant in ("weak", "hardened"):
        host_tree(variant, directory / variant)
    return directory
