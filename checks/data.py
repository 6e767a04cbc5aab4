"""Data at rest: personal data left in clear text on file shares and hosts."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from audit.facts.pii import NATIONAL_IDS, FileScan, Kind, PersonalDataFacts, personal_data_files
from audit.messages import Message, says
from audit.registry import Finding, Params, check, failed, passed
from audit.vocabulary import Role

MIB = 1024 * 1024


class PersonalDataParams(Params):
    """How many identifiers a clear-text file may hold, which kinds count, and how much of a
    target the scan may read."""

    threshold: int = Field(default=0, ge=0)
    kinds: list[Kind] = Field(default_factory=lambda: sorted(NATIONAL_IDS), min_length=1)
    max_file_bytes: int = Field(default=2048 * MIB, ge=1)
    max_files: int = Field(default=10_000, ge=1)
    max_total_bytes: int = Field(default=20 * 1024 * MIB, ge=1)


def _file_record(scan: FileScan) -> dict[str, Any]:
    record: dict[str, Any] = {"file": scan.name, "format": scan.format.value, "size": scan.size,
                              "sha256": scan.sha256}
    if scan.identifiers:
        record |= {"identifiers": dict(scan.identifiers), "samples": dict(scan.samples),
                   "confidence": scan.confidence}
    for key in ("capped", "context", "protected", "errors"):
        if getattr(scan, key):
            record[key] = list(getattr(scan, key))
    if scan.suspected_unverifiable:
        record["suspected_unverifiable"] = scan.suspected_unverifiable
    return record


@check(id="data.personal_data_files", title="No personal identifiers in clear-text files",
       applies_to=[Role.FILESHARE, Role.HOST], probe=personal_data_files,
       params=PersonalDataParams)
def personal_data_files_check(facts: PersonalDataFacts, p: PersonalDataParams) -> Finding:
    """Patient lists with national ID numbers leak as spreadsheets on shares and hosts. A file
    that holds valid identifiers (checksums and birth dates verified) in clear text fails;
    encrypted archives, OpenPGP messages, encrypted PDFs and LUKS volumes count as protected.
    Remove the files, or keep them only in an encrypted container with access limited to
    the staff who need them. Samples are masked; the SHA-256 pins each file."""
    kinds = frozenset(str(kind) for kind in p.kinds)
    leaking = [scan for scan in facts.files
               if not scan.encrypted and scan.personal_count(kinds) > p.threshold]
    protected = [scan for scan in facts.files if scan.protected]
    suspected = [scan for scan in facts.files if scan.suspected_unverifiable and
                 scan not in leaking]
    details: dict[str, Any] = {
        "paths": facts.roots, "files_scanned": len(facts.files),
        "bytes_scanned": facts.bytes_scanned,
        "leaking": [_file_record(scan) for scan in leaking],
        "protected": [_file_record(scan) for scan in protected],
        "suspected": [_file_record(scan) for scan in suspected],
        "problems": [{"path": problem.path, "reason": problem.reason}
                     for problem in facts.problems],
    }
    if facts.truncated:
        details["truncated"] = facts.truncated
    expected = f"no clear-text file with more than {p.threshold} identifiers " \
               f"({', '.join(sorted(kinds))})"
    observed = {"files_scanned": len(facts.files), "leaking": len(leaking),
                "protected": len(protected), "unreadable": len(facts.problems)}
    if leaking:
        total = sum(scan.personal_count(kinds) for scan in leaking)
        return failed(says("{count} clear-text file(s) hold {total} personal identifiers",
                           count=len(leaking), total=total),
                      observed=observed, expected=expected, **details)
    notes = _notes(facts)
    summary = says("no clear-text file holds personal identifiers in {count} file(s) scanned "
                   "({notes})", count=len(facts.files), notes=notes) if notes else \
        says("no clear-text file holds personal identifiers in {count} file(s) scanned",
             count=len(facts.files))
    return passed(summary, observed=observed, expected=expected, **details)


def _notes(facts: PersonalDataFacts) -> Message | None:
    """What limited the scan: paths not read, an early stop."""
    stopped = facts.truncated_message or facts.truncated
    if facts.problems and stopped:
        return says("{count} path(s) not read; scan stopped early: {why}",
                    count=len(facts.problems), why=stopped)
    if facts.problems:
        return says("{count} path(s) not read", count=len(facts.problems))
    return says("scan stopped early: {why}", why=stopped) if stopped else None
