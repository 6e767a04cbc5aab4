"""data.personal_data_files on hand-built facts: exact statuses and evidence."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from audit.facts.pii import FileScan, PathProblem, PersonalDataFacts
from audit.facts.pii.formats import FileFormat
from audit.vocabulary import Status
from checks.data import PersonalDataParams, personal_data_files_check


def scan(name: str, identifiers: dict[str, int] | None = None, protected: list[str] | None = None,
         encrypted: bool = False, suspected: int = 0) -> FileScan:
    return FileScan(name=name, format=FileFormat.CSV, size=10, sha256="ab" * 32,
                    identifiers=identifiers or {}, protected=protected or [],
                    encrypted=encrypted, suspected_unverifiable=suspected,
                    samples={kind: ["**********12"] for kind in identifiers or {}})


def facts(*files: FileScan, problems: list[PathProblem] | None = None,
          truncated: str | None = None) -> PersonalDataFacts:
    return PersonalDataFacts(roots=["/srv/share"], files=list(files), problems=problems or [],
                             bytes_scanned=10 * len(files), truncated=truncated)


def test_a_clear_text_file_with_an_iin_fails_with_masked_evidence() -> None:
    finding = personal_data_files_check(
        facts(scan("/srv/share/list.xlsx", {"kz_iin": 40, "phone": 12}), scan("/srv/a.txt")),
        PersonalDataParams())
    assert finding.status is Status.FAIL
    assert finding.summary == "1 clear-text file(s) hold 40 personal identifiers"
    leak, = finding.details["leaking"]
    assert leak["file"] == "/srv/share/list.xlsx" and leak["sha256"] == "ab" * 32
    assert leak["identifiers"] == {"kz_iin": 40, "phone": 12}
    assert leak["samples"] == {"kz_iin": ["**********12"], "phone": ["**********12"]}
    assert finding.observed == {"files_scanned": 2, "leaking": 1, "protected": 0,
                                "unreadable": 0}


@pytest.mark.parametrize("files", [
    [scan("clean.csv")],
    [scan("company.csv", {"kz_bin": 5})],                          # a BIN is no person
    [scan("contacts.csv", {"phone": 30, "email": 30})],            # weak signals only
    [scan("vault.zip", protected=["zip member (aes)"], encrypted=True)],
    [],
])
def test_files_without_clear_national_identifiers_pass(files: list[FileScan]) -> None:
    assert personal_data_files_check(facts(*files), PersonalDataParams()).status is Status.PASS


def test_threshold_and_kinds_are_parameters() -> None:
    few = facts(scan("list.csv", {"ru_snils": 2}))
    assert personal_data_files_check(few, PersonalDataParams(threshold=2)).status is Status.PASS
    assert personal_data_files_check(few, PersonalDataParams(threshold=1)).status is Status.FAIL
    phones = facts(scan("contacts.csv", {"phone": 3}))
    assert personal_data_files_check(phones, PersonalDataParams(kinds=["phone"])).status \
        is Status.FAIL


def test_protected_suspected_and_unread_files_are_listed() -> None:
    finding = personal_data_files_check(facts(
        scan("vault.7z", protected=["encrypted 7z"], encrypted=True),
        scan("export.csv", suspected=4),
        problems=[PathProblem("/srv/share/pipe", "not a regular file")],
        truncated="file count limit (1) reached"), PersonalDataParams())
    assert finding.status is Status.PASS
    assert "1 path(s) not read" in finding.summary and "scan stopped early" in finding.summary
    assert [r["file"] for r in finding.details["protected"]] == ["vault.7z"]
    assert finding.details["suspected"][0]["suspected_unverifiable"] == 4
    assert finding.details["problems"] == [{"path": "/srv/share/pipe",
                                            "reason": "not a regular file"}]


@pytest.mark.parametrize("bad", [{"threshold": -1}, {"kinds": ["passport"]}, {"kinds": []},
                                 {"max_files": 0}, {"colour": "red"}])
def test_bad_parameters_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PersonalDataParams(**bad)
