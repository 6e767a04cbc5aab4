"""The shared document reader: real PDF and DOCX files generated here, the bounds it is given,
and a typed reason (never a parser's exception) for what it cannot read."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader, PdfWriter

from audit.facts.documents import (
    DeadlinePassed,
    DocumentLimits,
    DocumentUnreadable,
    Unreadable,
    docx_paragraphs,
    pdf_pages,
    text_chunks,
)
from tests.test_evidence import write_pdf

UNBOUNDED = DocumentLimits()
Reader = Callable[[Path, DocumentLimits], Iterator[object]]


def encrypted_pdf(tmp_path: Path, password: str) -> Path:
    """The one-page fixture PDF, encrypted with a user password ("" protects by owner only)."""
    writer = PdfWriter(clone_from=PdfReader(write_pdf(tmp_path / "plain.pdf", ["Isolation"])))
    writer.encrypt(password)
    path = tmp_path / "locked.pdf"
    with open(path, "wb") as handle:
        writer.write(handle)
    return path


def word_document(tmp_path: Path) -> Path:
    """Body paragraphs, a table with a table nested in a cell, a header and a footer."""
    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = "header"
    document.sections[0].footer.paragraphs[0].text = "footer"
    document.add_paragraph("first")
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "cell"
    table.cell(0, 1).add_table(rows=1, cols=1).cell(0, 0).text = "nested"
    document.add_paragraph("last")
    path = tmp_path / "plan.docx"
    document.save(str(path))
    return path


def test_pdf_pages_from_a_path_or_a_stream(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "plan.pdf", ["Incident response", "Isolation"])
    for source in (path, io.BytesIO(path.read_bytes())):
        pages = list(pdf_pages(source, UNBOUNDED))
        assert len(pages) == 1 and "Isolation" in pages[0]


def test_pdf_pages_stop_at_the_page_and_character_limits(tmp_path: Path) -> None:
    writer = PdfWriter()
    page = PdfReader(write_pdf(tmp_path / "one.pdf", ["Isolation"])).pages[0]
    for _ in range(5):
        writer.add_page(page)
    buffer = io.BytesIO()
    writer.write(buffer)
    assert len(list(pdf_pages(io.BytesIO(buffer.getvalue()), UNBOUNDED))) == 5
    assert len(list(pdf_pages(io.BytesIO(buffer.getvalue()), DocumentLimits(max_pages=2)))) == 2
    # The page that reaches the character limit is the last one read, and it is kept whole.
    first = list(pdf_pages(io.BytesIO(buffer.getvalue()), DocumentLimits(max_chars=3)))
    assert len(first) == 1 and first[0].strip() == "Isolation"


def test_docx_paragraphs_include_headers_footers_and_nested_tables(tmp_path: Path) -> None:
    # The leak scanner's masked samples follow this order, so it must not change: footer and
    # header, the body, then cells from the last (a cell's own empty paragraphs, and a nested
    # table straight after the cell that holds it).
    assert list(docx_paragraphs(word_document(tmp_path), UNBOUNDED)) == \
        ["footer", "header", "first", "last", "", "", "nested", "cell"]


def test_docx_that_would_unpack_too_far_is_not_parsed(tmp_path: Path) -> None:
    with pytest.raises(DocumentUnreadable) as refused:
        list(docx_paragraphs(word_document(tmp_path), DocumentLimits(max_unpacked_bytes=1024)))
    assert refused.value.reason is Unreadable.TOO_LARGE
    assert str(refused.value) == "the DOCX unpacks to more than 0 MiB, not read"


def test_encrypted_pdf_is_a_typed_reason(tmp_path: Path) -> None:
    with pytest.raises(DocumentUnreadable) as locked:
        list(pdf_pages(encrypted_pdf(tmp_path, "secret"), UNBOUNDED))
    assert locked.value.reason is Unreadable.ENCRYPTED
    assert str(locked.value) == "the PDF is encrypted"


def test_pdf_protected_by_an_owner_password_only_is_read(tmp_path: Path) -> None:
    assert "Isolation" in "".join(pdf_pages(encrypted_pdf(tmp_path, ""), UNBOUNDED))


@pytest.mark.parametrize(("reader", "content"), [
    (pdf_pages, b"%PDF-1.4\nthis is not a PDF at all"),
    (docx_paragraphs, b"PK\x03\x04 but not really"),
])
def test_broken_file_is_malformed_naming_the_parser_error(tmp_path: Path, reader: Reader,
                                                         content: bytes) -> None:
    path = tmp_path / "broken"
    path.write_bytes(content)
    with pytest.raises(DocumentUnreadable) as broken:
        list(reader(path, UNBOUNDED))
    assert broken.value.reason is Unreadable.MALFORMED
    assert broken.value.parser_error and str(broken.value).startswith(broken.value.parser_error)


def test_text_chunks_re_encode_utf16_and_hash_the_raw_bytes() -> None:
    raw = "\ufeffИзоляция 061211600012\n".encode("utf-16-le")
    digest = hashlib.sha256()
    text = b"".join(text_chunks(io.BytesIO(raw), UNBOUNDED, digest))
    assert text.decode("utf-8") == "Изоляция 061211600012\n"
    assert digest.hexdigest() == hashlib.sha256(raw).hexdigest()


def test_text_chunks_read_at_most_four_bytes_a_character(tmp_path: Path) -> None:
    path = tmp_path / "plan.txt"
    path.write_bytes(b"x" * 100)
    assert b"".join(text_chunks(path, DocumentLimits(max_chars=10))) == b"x" * 40


def test_a_passed_deadline_stops_every_reader(tmp_path: Path) -> None:
    past = DocumentLimits(deadline=time.monotonic() - 1)
    pdf = write_pdf(tmp_path / "plan.pdf", ["Isolation"])
    sources: list[tuple[Reader, Path]] = [(pdf_pages, pdf),
                                          (docx_paragraphs, word_document(tmp_path)),
                                          (text_chunks, pdf)]
    for reader, path in sources:
        with pytest.raises(DeadlinePassed):
            list(reader(path, past))
