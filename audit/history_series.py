"""Which earlier runs a run compares with: its series, and what changed in its inputs.

A series is (organisation, system, profile family), the family being the roots of the
profiles' `extends` chains: a tailoring of kz-mis-baseline stays in kz-mis-baseline's series,
gdpr-health is another. Fingerprints of the profiles and the inventory say whether a change of
results may come from a change of what was asked rather than of the system.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from audit.model.results import RunResults, SiteOutcome
from audit.plan import ORGANISATION_TARGET
from audit.profiles import LIBRARY_VERSION


@dataclass(frozen=True)
class SeriesKey:
    """Where a run is filed in the store."""

    organisation: str
    system: str
    family: str
    # The key versions before 0.2 filed runs under: every profile id, library files included.
    legacy: str
    site: str | None = None     # one site's part of the system, a series of its own


@dataclass(frozen=True)
class Fingerprints:
    """What the run was asked: the profiles (and library files) and the inventory."""

    profile: str
    inventory: str | None


def series_key(results: RunResults, site: str | None = None) -> SeriesKey:
    """The series of a run (or of one of its sites); a results.json without a family falls
    back to the legacy key."""
    legacy = ",".join(sorted(profile.id for profile in results.profiles))
    return SeriesKey(results.organisation, results.system or "",
                     results.profile_family or legacy, legacy, site)


def site_run(results: RunResults, site: SiteOutcome) -> RunResults:
    """One site's part of a run, as the history files it: its targets' and the
    organisation's results, the site's score and verdict."""
    kept = {*site.targets, ORGANISATION_TARGET}
    return results.model_copy(update={
        "results": [r for r in results.results if r.target in kept],
        "targets": [t for t in results.targets if t.name in kept],
        "score": site.score, "verdict": site.verdict, "sites": []})


def fingerprints(results: RunResults) -> Fingerprints:
    """The fingerprints of a run's inputs."""
    pinned = "\n".join(sorted(f"{p.id} {p.sha256}" for p in results.profiles))
    return Fingerprints(hashlib.sha256(pinned.encode()).hexdigest(), results.inventory_sha256)


def profiles_label(results: RunResults) -> str:
    """The profiles as the history lists them: ids and versions, library files left out."""
    return ", ".join(f"{p.id} {p.version}" for p in results.profiles
                     if p.version != LIBRARY_VERSION)


def changed(before: str | None, after: str | None) -> bool | None:
    """Whether a fingerprint changed; None when either run did not keep one."""
    return None if before is None or after is None else before != after
