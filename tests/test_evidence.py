"""Evidence documents: existence, age, SHA-256, size and sections, read from real PDF, DOCX
and text files generated here; the check itself with hand-built facts."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader, PdfWriter

from audit.facts.context import Environment, TargetContext
from audit.facts.evidence import EvidenceFacts, evidence_document
from audit.model.inventory import EvidenceDocument, Scope, Target
from audit.plan import ORGANISATION_TARGET
from audit.vocabulary import Role, Status
from checks.evidence import DocumentParams, document, sections_found

TODAY = date(2026, 6, 1)
PLAN_SECTIONS = {"isolation": ["isolation", "изоляц"], "forensics": ["forensic", "криминалист"]}


def write_pdf(path: Path, lines: list[str]) -> Path:
    """A minimal one-page PDF with the lines in Helvetica, offsets computed by hand."""
    text = " ".join(f"({line}) Tj 0 -16 Td" for line in lines)
    stream = f"BT /F1 12 Tf 72 720 Td {text} ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>"),
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    body = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, content in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % number + content + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    body += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    body += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    path.write_bytes(bytes(body))
    return path


def write_docx(path: Path, paragraphs: list[str], table_cells: list[str] = ()) -> Path:
    """A DOCX with paragraphs and, optionally, a one-row table."""
    document_ = docx.Document()
    for paragraph in paragraphs:
        document_.add_paragraph(paragraph)
    if table_cells:
        table = document_.add_table(rows=1, cols=len(table_cells))
        for cell, text in zip(table.rows[0].cells, table_cells):
            cell.text = text
    document_.save(str(path))
    return path


def gather(tmp_path: Path, params: DocumentParams,
           evidence: dict[str, EvidenceDocument]) -> EvidenceFacts:
    """Run the real probe through a target context, as the engine does."""
    environment = Environment(base_dir=tmp_path, today=TODAY, scope=Scope(), evidence=evidence)
    organisation = Target.model_construct(name=ORGANISATION_TARGET, roles=[Role.ORGANISATION],
                                          paths=[], services=[], urls=[])
    return TargetContext(organisation, environment).gather(evidence_document, params)


def audit(tmp_path: Path, file: str | None, dated: date | None = None,
          **params: object) -> tuple[EvidenceFacts, object]:
    """Facts and finding for an `irp` document (None: not named by the inventory)."""
    p = DocumentParams.model_validate({"document": "irp", **params})
    evidence = {} if file is None else {"irp": EvidenceDocument(file=file, date=dated,
                                                                issued_by="CERT-KZ")}
    facts = gather(tmp_path, p, evidence)
    return facts, document(facts, p)


# --- the probe against real files ------------------------------------------------------------

def test_pdf_is_hashed_sized_and_read(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "irp.pdf", ["Incident response plan", "1. Isolation of hosts",
                                           "2. Forensic imaging"])
    assert "Isolation" in PdfReader(pdf).pages[0].extract_text()   # the fixture is a real PDF
    facts, finding = audit(tmp_path, "irp.pdf", date(2026, 1, 10), sections=PLAN_SECTIONS)
    assert facts.sha256 == hashlib.sha256(pdf.read_bytes()).hexdigest()
    assert facts.size == pdf.stat().st_size
    assert finding.status is Status.PASS
    assert finding.details["sections_found"] == ["isolation", "forensics"]
    assert finding.details["sha256"] == facts.sha256
    assert finding.details["issued_by"] == "CERT-KZ"
    assert finding.details["date"] == "2026-01-10"


def test_pdf_without_a_section_fails_and_names_it(tmp_path: Path) -> None:
    write_pdf(tmp_path / "irp.pdf", ["Incident response plan", "Isolation of hosts"])
    _, finding = audit(tmp_path, "irp.pdf", date(2026, 1, 10), sections=PLAN_SECTIONS)
    assert finding.status is Status.FAIL
    assert finding.details["sections_missing"] == ["forensics"]
    assert "forensics" in finding.summary


def test_docx_sections_in_russian_paragraphs_and_tables(tmp_path: Path) -> None:
    write_docx(tmp_path / "irp.docx", ["План реагирования на инциденты", "Изоляция систем"],
               ["Цифровая КРИМИНАЛИСТИКА", "ответственный"])
    _, finding = audit(tmp_path, "irp.docx", date(2026, 2, 1), sections=PLAN_SECTIONS)
    assert finding.status is Status.PASS, finding.summary


def test_plain_list_of_sections_matches_case_insensitively(tmp_path: Path) -> None:
    (tmp_path / "irp.txt").write_text("ISOLATION\nForensics\n", encoding="utf-8")
    _, finding = audit(tmp_path, "irp.txt", date(2026, 2, 1), sections=["isolation", "forensics"])
    assert finding.status is Status.PASS


def test_too_old_document_fails_with_its_age(tmp_path: Path) -> None:
    write_pdf(tmp_path / "irp.pdf", ["Isolation", "Forensic"])
    _, finding = audit(tmp_path, "irp.pdf", date(2025, 5, 31), max_age_days=365)
    assert finding.status is Status.FAIL
    assert finding.observed == "366 days"


def test_age_on_the_limit_passes(tmp_path: Path) -> None:
    write_pdf(tmp_path / "irp.pdf", ["Isolation"])
    _, finding = audit(tmp_path, "irp.pdf", date(2025, 6, 1), max_age_days=365)
    assert finding.status is Status.PASS


def test_undated_document_is_dated_by_its_modification_time(tmp_path: Path) -> None:
    import os
    path = write_pdf(tmp_path / "irp.pdf", ["Isolation"])
    stamp = 1_780_000_000   # 2026-05-28 UTC
    os.utime(path, (stamp, stamp))
    facts, finding = audit(tmp_path, "irp.pdf")
    assert facts.date_source == "file modification time"
    assert facts.age_days == 4
    assert finding.status is Status.PASS


def test_missing_file_is_manual_never_pass(tmp_path: Path) -> None:
    facts, finding = audit(tmp_path, "nowhere.pdf", date(2026, 1, 1))
    assert not facts.exists
    assert finding.status is Status.MANUAL
    assert "not found" in finding.summary


def test_document_not_named_is_manual(tmp_path: Path) -> None:
    _, finding = audit(tmp_path, None)
    assert finding.status is Status.MANUAL


def test_future_date_is_manual(tmp_path: Path) -> None:
    write_pdf(tmp_path / "irp.pdf", ["Isolation"])
    _, finding = audit(tmp_path, "irp.pdf", date(2026, 7, 1))
    assert finding.status is Status.MANUAL
    assert "after the audit" in finding.summary


def test_corrupt_pdf_gives_manual_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "irp.pdf").write_bytes(b"%PDF-1.4\nthis is not a PDF at all")
    facts, finding = audit(tmp_path, "irp.pdf", date(2026, 1, 1), sections=PLAN_SECTIONS)
    assert facts.text is None and facts.text_unavailable
    assert finding.status is Status.MANUAL
    assert facts.sha256 is not None          # still pinned by its hash


def test_corrupt_pdf_without_sections_still_passes_on_age(tmp_path: Path) -> None:
    (tmp_path / "irp.pdf").write_bytes(b"not a pdf")
    _, finding = audit(tmp_path, "irp.pdf", date(2026, 1, 1))
    assert finding.status is Status.PASS


def test_encrypted_pdf_is_not_read(tmp_path: Path) -> None:
    source = write_pdf(tmp_path / "plain.pdf", ["Isolation", "Forensic"])
    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt("secret")
    with open(tmp_path / "irp.pdf", "wb") as handle:
        writer.write(handle)
    facts, finding = audit(tmp_path, "irp.pdf", date(2026, 1, 1), sections=PLAN_SECTIONS)
    assert facts.text_unavailable == "the PDF is encrypted"
    assert finding.status is Status.MANUAL


def test_docx_that_is_not_a_zip_gives_manual(tmp_path: Path) -> None:
    (tmp_path / "irp.docx").write_bytes(b"PK but not really")
    _, finding = audit(tmp_path, "irp.docx", date(2026, 1, 1), sections=PLAN_SECTIONS)
    assert finding.status is Status.MANUAL
    assert "could not be parsed" in finding.summary


def test_unsupported_format_cannot_confirm_sections(tmp_path: Path) -> None:
    (tmp_path / "irp.odt").write_bytes(b"whatever")
    _, finding = audit(tmp_path, "irp.odt", date(2026, 1, 1), sections=PLAN_SECTIONS)
    assert finding.status is Status.MANUAL


def test_relative_paths_resolve_against_the_inventory(tmp_path: Path) -> None:
    (tmp_path / "evidence").mkdir()
    write_docx(tmp_path / "evidence" / "irp.docx", ["isolation", "forensic"])
    _, finding = audit(tmp_path, "evidence/irp.docx", date(2026, 1, 1), sections=PLAN_SECTIONS)
    assert finding.status is Status.PASS


# --- the pure check and its parameters --------------------------------------------------------

def facts_of(**overrides: object) -> EvidenceFacts:
    base: dict[str, object] = {
        "name": "irp", "file": "irp.pdf", "exists": True, "dated": date(2026, 1, 1),
        "date_source": "inventory", "sha256": "ab" * 32, "size": 10, "issued_by": None,
        "today": TODAY, "text": "isolation and forensic imaging", "text_unavailable": None}
    return EvidenceFacts(**{**base, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(("overrides", "params", "status"), [
    ({}, {}, Status.PASS),
    ({}, {"sections": ["isolation"]}, Status.PASS),
    ({}, {"sections": ["breach"]}, Status.FAIL),
    ({"dated": date(2024, 1, 1)}, {}, Status.FAIL),
    ({"exists": False}, {}, Status.MANUAL),
    ({"file": None, "exists": False}, {}, Status.MANUAL),
    ({"text": None, "text_unavailable": "x"}, {"sections": ["isolation"]}, Status.MANUAL),
])
def test_check_statuses(overrides: dict[str, object], params: dict[str, object],
                        status: Status) -> None:
    p = DocumentParams.model_validate({"document": "irp", **params})
    assert document(facts_of(**overrides), p).status is status


def test_sections_accept_a_list_a_mapping_or_single_terms() -> None:
    as_list = DocumentParams.model_validate({"document": "d", "sections": ["a", "b"]})
    as_map = DocumentParams.model_validate({"document": "d", "sections": {"a": "x", "b": ["y"]}})
    assert as_list.sections == {"a": ["a"], "b": ["b"]}
    assert as_map.sections == {"a": ["x"], "b": ["y"]}


@pytest.mark.parametrize("bad", [{"sections": [""]}, {"sections": {"a": []}}, {"max_age_days": 0},
                                 {"sections": 3}, {"unknown": 1}])
def test_bad_parameters_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        DocumentParams.model_validate({"document": "d", **bad})


def test_sections_found_is_case_and_whitespace_insensitive() -> None:
    found, missing = sections_found("digital forensics; system isolation",
                                    {"iso": ["System  ISOLATION"], "b": ["breach"]})
    assert (found, missing) == (["iso"], ["b"])
