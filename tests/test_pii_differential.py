"""The scanner against a reference kept here: a plain regex and checksum pass, written from the
published rules, over the text an independent reader extracts (openpyxl for XLSX, pypdf for
PDF, ElementTree for ODS, python-docx for DOCX, the bytes themselves for text). Over a
generated corpus of every format, with identifiers split across lines and cells, decoys that
fail the checksum and BINs, both must give the same counts and the same masked samples.
Where the scanner's readers see more than the reference's (the numeric cells of a legacy
`.xls`, which calamine reads), the test names the difference.
"""

from __future__ import annotations

import io
import random
import re
import zipfile
from collections.abc import Iterator
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path
from xml.etree import ElementTree

import docx
import openpyxl
import pytest
from pypdf import PdfReader

from audit.facts.pii import FileScan, scan_bytes, scan_paths
from audit.facts.pii.formats import FileFormat
from audit.transports.filesystem import LocalTransport
from tests.test_evidence import write_pdf
from tests.test_pii_corpus import decoy, iin_control, make_bin, make_iin, odf_bytes

KZ_KINDS = ("kz_iin", "kz_iin_low_confidence", "kz_bin")


# --- the reference ---------------------------------------------------------------------------

def reference_kind(value: str) -> str | None:
    """The kind of a 12-digit number by the published rules (LEGAL.md section 4)."""
    if iin_control(value[:11]) != int(value[11]):
        return None
    year, month, day, century = int(value[:2]), int(value[2:4]), int(value[4:6]), int(value[6])
    centuries = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}
    if century in centuries and real_date(centuries[century] + year, month, day):
        return "kz_iin"
    if century not in centuries and real_date(1900 + year, month, day) \
            and (month, day) != (2, 29):
        return "kz_iin_low_confidence"
    if 1 <= month <= 12 and int(value[4]) in (4, 5, 6) and int(value[5]) in (0, 1, 2, 3):
        return "kz_bin"
    return None


def real_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


TWELVE = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")


class Reference:
    """Distinct values and the first three masked, by kind, in order of appearance."""

    def __init__(self) -> None:
        self.values: dict[str, list[str]] = {}

    def text(self, text: str) -> None:
        for match in TWELVE.finditer(text):
            self._add(match.group())

    def number(self, value: float) -> None:
        if value == int(value) and 10 ** 8 <= value < 10 ** 12:
            self._add(f"{int(value):012d}")

    def _add(self, value: str) -> None:
        kind = reference_kind(value)
        if kind is not None and value not in self.values.setdefault(kind, []):
            self.values[kind].append(value)

    def counts(self) -> dict[str, int]:
        return {kind: len(values) for kind, values in self.values.items() if values}

    def samples(self) -> dict[str, list[str]]:
        masked = {"kz_bin": lambda v: "*" * 8 + v[-4:]}
        return {kind: [masked.get(kind, lambda v: "*" * 10 + v[-2:])(value)
                       for value in values[:3]] for kind, values in self.values.items() if values}


def kz_only(scan: FileScan) -> tuple[dict[str, int], dict[str, list[str]]]:
    return ({kind: count for kind, count in scan.identifiers.items() if kind in KZ_KINDS},
            {kind: samples for kind, samples in scan.samples.items() if kind in KZ_KINDS})


# --- the corpus ------------------------------------------------------------------------------

def values(rng: random.Random, count: int) -> list[str]:
    """IINs, BINs and low-confidence numbers, with a decoy after each, shuffled."""
    found: list[str] = []
    for n in range(count):
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(25_000))
        found.append(make_iin(born, 3 + 2 * (born.year >= 2000) + n % 2, rng.randrange(9000)))
        if n % 7 == 0:
            found.append(make_bin(f"{rng.randrange(100):02d}{rng.randrange(1, 13):02d}",
                                  rng.randrange(90_000)))
    return [v for value in found for v in (value, decoy(value))]


def text_lines(rng: random.Random, items: list[str]) -> str:
    """Identifiers in free text and CSV rows; some split across a line end (then neither
    reader may find them), some glued to longer digit runs."""
    lines = []
    for n, value in enumerate(items):
        if n % 11 == 5:
            lines.append(f"split {value[:6]}\n{value[6:]};x")
        elif n % 13 == 3:
            lines.append(f"longer 9{value} run")
        else:
            lines.append(f"{n};Пациент {n};{value};+7 701 {n % 1000:03d} 11 22")
    return "ИИН;ФИО\n" + "\n".join(lines) + "\n"


def xlsx_with_numbers(items: list[str]) -> tuple[bytes, Reference]:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for n, value in enumerate(items):
        sheet.append([f"row {n}", int(value) if n % 3 == 0 else value,
                      f"{value[:5]}" if n % 5 == 0 else None])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue(), reference_of_workbook(buffer.getvalue())


def reference_of_workbook(content: bytes) -> Reference:
    """openpyxl's cells. The scanner tallies numbers at once and text in batches of 256 KiB,
    so in a small workbook the numbers come first: the reference does the same."""
    reference = Reference()
    cells = [cell for row in openpyxl.load_workbook(io.BytesIO(content), read_only=True)
             .active.iter_rows(values_only=True) for cell in row]
    for cell in cells:
        if isinstance(cell, int | float):
            reference.number(cell)
    reference.text("\n".join(cell for cell in cells if isinstance(cell, str)))
    return reference


def pdf_with(tmp_path: Path, items: list[str]) -> tuple[bytes, Reference]:
    path = write_pdf(tmp_path / "list.pdf", [f"{n} {value}" for n, value in enumerate(items)])
    reference = Reference()
    for page in PdfReader(path).pages:
        reference.text(page.extract_text())
    return path.read_bytes(), reference


def docx_with(items: list[str]) -> tuple[bytes, Reference]:
    document = docx.Document()
    for value in items[:len(items) // 2]:
        document.add_paragraph(f"ИИН {value}")
    table = document.add_table(rows=len(items) - len(items) // 2, cols=1)
    for row, value in zip(table.rows, items[len(items) // 2:]):
        row.cells[0].text = value
    buffer = io.BytesIO()
    document.save(buffer)
    reference = Reference()
    from audit.facts.documents import DocumentLimits, docx_paragraphs
    reference.text("\n".join(docx_paragraphs(io.BytesIO(buffer.getvalue()),
                                             DocumentLimits())))
    return buffer.getvalue(), reference


def ods_reference(content: bytes) -> Reference:
    reference = Reference()
    with zipfile.ZipFile(io.BytesIO(content)) as package:
        root = ElementTree.fromstring(package.read("content.xml"))
    office = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
    for element in root.iter():
        if element.get(f"{office}value-type") == "float":
            reference.number(float(element.get(f"{office}value", "0")))
    reference.text("\n".join("".join(p.itertext()) for p in root.iter(
        "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}p")))
    return reference


def corpus(tmp_path: Path) -> Iterator[tuple[str, bytes, Reference]]:
    rng = random.Random(17)
    text = text_lines(rng, values(rng, 400))
    reference = Reference()
    reference.text(text)
    yield "list.csv", text.encode(), reference
    utf16 = Reference()
    utf16.text(text)
    yield "list-utf16.txt", text.encode("utf-16"), utf16
    yield "book.xlsx", *xlsx_with_numbers(values(rng, 120))
    yield "scan.pdf", *pdf_with(tmp_path, values(rng, 20))
    yield "letter.docx", *docx_with(values(rng, 60))
    ods = odf_bytes("spreadsheet")
    yield "calc.ods", ods, ods_reference(ods)
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("a.csv", text)
    yield "bundle.zip", bundle.getvalue(), reference


def test_the_scanner_agrees_with_the_reference_on_every_format(tmp_path: Path) -> None:
    for name, content, reference in corpus(tmp_path):
        scan = scan_bytes(name, content)
        assert not scan.errors, (name, scan.errors)
        assert kz_only(scan) == (reference.counts(), reference.samples()), name
        assert reference.counts().get("kz_iin", 0) > 0 and "kz_bin" in reference.counts() \
            or name == "calc.ods", name


def xls_bytes(strings: list[str], numbers: list[str]) -> bytes:
    """A real BIFF8 workbook written by xlwt: IINs as text and as numbers (an IIN born in
    2000-2009 stored as a number lost its leading zero)."""
    xlwt = pytest.importorskip("xlwt")
    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("Пациенты")
    sheet.write(0, 0, "ИИН")
    for row, value in enumerate(strings, start=1):
        sheet.write(row, 0, value)
    for row, value in enumerate(numbers, start=1):
        sheet.write(row, 1, int(value))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_numeric_iin_cells_of_a_legacy_xls_are_found() -> None:
    strings = [make_iin(date(1979, 10, 28), 3, 272)]
    numbers = [make_iin(date(1950, 7, 1), 3, 42), make_iin(date(2006, 12, 11), 6, 1)]
    decoys = [decoy(value) for value in strings + numbers]
    scan = scan_bytes("old.xls", xls_bytes(strings + decoys[:1], numbers + decoys[1:]))
    assert scan.format == FileFormat.OLE2 and scan.errors == []
    assert scan.identifiers == {"kz_iin": 3}
    assert sorted(scan.samples["kz_iin"]) == sorted("*" * 10 + v[-2:] for v in strings + numbers)
    # The difference from the reference (and from the reader before calamine): the raw text
    # strings of the file hold only the IIN written as text; the two stored as numbers (one
    # of them 11 digits long, its leading zero lost) are what the new reader adds.
    reference = Reference()
    reference.text("\n".join(strings + decoys[:1]))
    assert reference.counts() == {"kz_iin": 1}
    assert set(scan.samples["kz_iin"]) - set(reference.samples()["kz_iin"]) == \
        {"*" * 10 + v[-2:] for v in numbers}


class LargeBounds:
    max_file_bytes = 1 << 30
    max_files = 10
    max_total_bytes = 1 << 30


def counted_merges(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many pieces each file scanned in pieces was merged from, as they are merged."""
    from audit.facts.pii import pieces
    merged = pieces.merged
    counts: list[int] = []

    def counting(*args: object) -> FileScan:
        counts.append(len(args[-1]))                # type: ignore[arg-type]
        return merged(*args)                        # type: ignore[arg-type]

    monkeypatch.setattr(pieces, "merged", counting)
    return counts


def test_a_large_file_scanned_in_pieces_on_every_core_equals_one_pass(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces of 64 KiB and the pool started at once: identifiers sit across every piece
    boundary, one stretch has no line end (cut at a separator), numbers in scientific
    notation are counted once each."""
    from audit.facts.pii import parallel, pieces
    monkeypatch.setattr(pieces, "PIECE_BYTES", 64 * 1024)
    monkeypatch.setattr(pieces, "SPLIT_BYTES", 128 * 1024)
    monkeypatch.setattr(parallel, "POOL_AFTER_FILES", 0)
    rng = random.Random(5)
    text = text_lines(rng, values(rng, 6000)) + " ".join(values(rng, 3000)) + \
        "\n6.12116E+10;7.91028E+11\n" * 50
    path = tmp_path / "big.csv"
    path.write_text(text, encoding="utf-8")
    assert path.stat().st_size > 6 * pieces.PIECE_BYTES
    piece_counts = counted_merges(monkeypatch)
    facts = scan_paths(LocalTransport(), [str(path)], LargeBounds(), workers=2)
    assert piece_counts == [3]          # in pieces: one for each worker, one for this process
    whole = scan_bytes(str(path), path.read_bytes())
    split, = facts.files
    assert split.model_dump() == whole.model_dump()
    reference = Reference()
    reference.text(text)
    assert kz_only(split) == (reference.counts(), reference.samples())
    assert split.suspected_unverifiable == 100


def test_pieces_cut_anywhere_merge_into_the_whole_files_result(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """In one process: a file cut into many small pieces (some boundaries land in stretches
    without a line end) gives, merged, exactly the one-pass result."""
    import hashlib
    import secrets

    from audit.facts.pii import pieces
    monkeypatch.setattr(pieces, "PIECE_BYTES", 4096)
    rng = random.Random(9)
    text = (text_lines(rng, values(rng, 800)) + ";".join(values(rng, 400))
            + "\n6.12116E+10\n" * 3).encode()
    stream = io.BytesIO(text)
    key = secrets.token_bytes(32)
    plan = pieces.plan(stream, len(text), key, workers=64)
    assert len(plan) > 20 and plan[0].start == 0 and plan[-1].end == len(text)
    assert all(a.end == b.start for a, b in pairwise(plan))
    scans = [pieces.scan_piece(stream, piece, None) for piece in plan]
    split = pieces.merged("big.csv", FileFormat.TEXT, len(text),
                          hashlib.sha256(text).hexdigest(), key, scans)
    assert split.model_dump() == scan_bytes("big.csv", text).model_dump()


def docx_fixtures(rng: random.Random) -> Iterator[bytes]:
    """Documents with sections, headers and footers (linked and not), hyperlinks, breaks and
    tabs, tables nested in cells, cells merged across columns and rows."""
    from docx.enum.section import WD_SECTION
    from docx.oxml import OxmlElement

    from tests.test_pii_corpus import docx_bytes
    yield docx_bytes()
    items = values(rng, 40)
    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = f"шапка {items[0]}"
    document.sections[0].footer.paragraphs[0].text = f"подвал {items[1]}"
    paragraph = document.add_paragraph(f"ИИН {items[2]}")
    run = paragraph.add_run(f"\t{items[3]}")
    run.add_break()
    run.add_text(items[4])
    link = OxmlElement("w:hyperlink")
    link_run = OxmlElement("w:r")
    link_text = OxmlElement("w:t")
    link_text.text = f"ссылка {items[5]}"
    link_run.append(link_text)
    link.append(link_run)
    paragraph._p.append(link)
    table = document.add_table(rows=3, cols=3)
    table.cell(0, 0).merge(table.cell(0, 1)).text = items[6]
    table.cell(1, 2).merge(table.cell(2, 2)).text = items[7]
    table.cell(2, 0).text = items[8]
    table.cell(1, 1).add_table(rows=1, cols=2).cell(0, 1).text = items[9]
    second = document.add_section(WD_SECTION.NEW_PAGE)
    second.header.is_linked_to_previous = False
    second.header.paragraphs[0].text = f"вторая шапка {items[10]}"
    document.add_paragraph(" ".join(items[11:20]))
    document.add_section(WD_SECTION.NEW_PAGE)        # linked to the second section's
    buffer = io.BytesIO()
    document.save(buffer)
    yield buffer.getvalue()


def test_the_fast_docx_reader_gives_python_docx_paragraphs_in_order() -> None:
    from audit.facts.documents import DocumentLimits, docx_paragraphs
    from audit.facts.pii import docx_text
    for content in docx_fixtures(random.Random(3)):
        with zipfile.ZipFile(io.BytesIO(content)) as package:
            fast = [text for text in docx_text.docx_paragraphs(package) if text]
        slow = [text for text in docx_paragraphs(io.BytesIO(content), DocumentLimits())
                if text]
        assert fast == slow
