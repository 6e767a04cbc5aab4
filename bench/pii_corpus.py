"""The benchmark's generated corpus (`bench/pii_scan.py`): valid IINs computed from the
published rule, decoys with a wrong control digit, and files of every format holding them.
"""

from __future__ import annotations

import io
import json
import random
import sys
import tempfile
import zipfile
from datetime import date, timedelta
from pathlib import Path

NAMES = ["Иванова Айгерим Сериковна", "Петров Пётр Петрович", "Нурланов Ерлан Нурланұлы",
         "Ахметова Динара Маратовна", "Smith John"]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))      # tests.test_evidence
DIAGNOSES = ["J18.9 Пневмония", "I10 Гипертензия", "U07.1 COVID-19", "Z00.0 Осмотр"]


def iin_pool(rng: random.Random, size: int) -> list[str]:
    """Valid IINs with random birth dates (1940-2009), computed from the published rule."""
    pool: list[str] = []
    while len(pool) < size:
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(25_500))
        century = 5 if born.year >= 2000 else 3
        first = f"{born:%y%m%d}{century + rng.randrange(2)}{rng.randrange(10_000):04d}"
        digits = [int(c) for c in first]
        for weights in (range(1, 12), (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)):
            control = sum(d * w for d, w in zip(digits, weights)) % 11
            if control != 10:
                pool.append(first + str(control))
                break
    return pool


def decoys(pool: list[str]) -> list[str]:
    """Same numbers, wrong control digit: they must not be counted."""
    return [value[:-1] + str((int(value[-1]) + 1) % 10) for value in pool]


def csv_lines(first_row: int, valid: list[str], invalid: list[str],
              rng: random.Random, count: int = 10_000) -> list[str]:
    """Patient-list rows: one IIN (or a checksum-failing decoy) and a phone per row."""
    numbers = rng.choices(valid, k=count // 2) + rng.choices(invalid, k=count - count // 2)
    # A phone per row, nearly all distinct (a multiplicative hash of the row number).
    phones = [(first_row + n) * 7919 % 10 ** 7 for n in range(len(numbers))]
    return [f"{first_row + n};{NAMES[n % 5]};{number};+7 70{n % 10} {phone // 10 ** 4:03d} "
            f"{phone // 100 % 100:02d} {phone % 100:02d};19{50 + n % 50}-0{1 + n % 9}"
            f"-1{n % 10};{DIAGNOSES[n % 4]};{n * 37 % 100000}.00\n"
            for n, (number, phone) in enumerate(zip(numbers, phones))]


def write_csv(path: Path, target_bytes: int, valid: list[str], invalid: list[str],
              rng: random.Random) -> None:
    """A patient list of about `target_bytes`."""
    written = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("id;ФИО;ИИН;телефон;дата;диагноз;сумма\n")
        row = 0
        while written < target_bytes:
            lines = csv_lines(row, valid, invalid, rng)
            row += len(lines)
            text = "".join(lines)
            handle.write(text)
            written += len(text.encode("utf-8"))


def xlsx_bytes(rows: int, valid: list[str], rng: random.Random) -> bytes:
    """A workbook in write-only mode: IINs as text, some as numbers (leading zero lost)."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Пациенты")
    sheet.append(["ФИО", "ИИН", "диагноз", "сумма"])
    for n, number in enumerate(rng.choices(valid, k=rows)):
        cell: str | int = int(number) if n % 10 == 0 else number
        sheet.append([NAMES[n % 5], cell, DIAGNOSES[n % 4], n * 37 % 100000])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def excel_xlsx_bytes(rows: int, valid: list[str], rng: random.Random) -> bytes:
    """A workbook as Excel writes one: text (names, IINs, phones, diagnoses) in the shared
    strings, UTF-8; one IIN in ten stored as a number; an amount per row."""
    from tests.test_pii_sheet_xml import MAIN, package

    strings = {text: n for n, text in enumerate(NAMES + DIAGNOSES + ["ФИО", "ИИН", "телефон"])}
    cells = []
    for row, number in enumerate(rng.choices(valid, k=rows), start=2):
        phone = f"+7 70{row % 10} {row * 7919 % 10 ** 7:07d}"
        iin = (f'<c r="B{row}"><v>{int(number)}</v></c>' if row % 10 == 0 else
               f'<c r="B{row}" t="s"><v>{strings.setdefault(number, len(strings))}</v></c>')
        cells.append(f'<row r="{row}"><c r="A{row}" t="s"><v>{row % 5}</v></c>{iin}'
                     f'<c r="C{row}" t="s"><v>{strings.setdefault(phone, len(strings))}</v></c>'
                     f'<c r="D{row}" t="s"><v>{5 + row % 4}</v></c><c r="E{row}" s="1"><v>'
                     f'{row * 37 % 100000}.5</v></c></row>')
    header = '<row r="1">' + "".join(f'<c r="{column}1" t="s"><v>{9 + n}</v></c>'
                                     for n, column in enumerate("ABC")) + "</row>"
    sheet = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{MAIN}">'
             f'<sheetData>{header}{"".join(cells)}</sheetData></worksheet>')
    shared = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="{MAIN}" '
              f'count="{len(strings)}" uniqueCount="{len(strings)}">'
              + "".join(f"<si><t>{text}</t></si>" for text in strings) + "</sst>")
    return package([sheet], shared)


def ods_bytes(rows: int, valid: list[str], rng: random.Random) -> bytes:
    """A spreadsheet as LibreOffice writes one: names, IINs, phones and diagnoses as text,
    one IIN in ten stored as a number, an amount per row."""
    from tests.test_pii_sheet_xml import ods_cell, ods_package

    header = "".join(ods_cell(text) for text in ("ФИО", "ИИН", "телефон"))
    table = [f"<table:table-row>{header}</table:table-row>"]
    for row, number in enumerate(rng.choices(valid, k=rows)):
        iin = ods_cell(int(number)) if row % 10 == 0 else ods_cell(number)
        table.append(f"<table:table-row>{ods_cell(NAMES[row % 5])}{iin}"
                     f"{ods_cell(f'+7 70{row % 10} {row * 7919 % 10 ** 7:07d}')}"
                     f"{ods_cell(DIAGNOSES[row % 4])}{ods_cell(row * 37 % 100000 + 0.5)}"
                     "</table:table-row>")
    return ods_package(table)


def xls_bytes(rows: int, valid: list[str], rng: random.Random) -> bytes:
    """A legacy BIFF workbook (xlwt): IINs as numbers, as a 1990s export would hold them."""
    import xlwt  # type: ignore[import-untyped]

    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("Пациенты")
    for n, number in enumerate(rng.choices(valid, k=min(rows, 65_535))):
        sheet.write(n, 0, NAMES[n % 5])
        sheet.write(n, 1, int(number))
        sheet.write(n, 2, DIAGNOSES[n % 4])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def docx_bytes(rows: int, valid: list[str], rng: random.Random) -> bytes:
    """A letter with paragraphs and a table of patients."""
    import docx

    document = docx.Document()
    for n, number in enumerate(rng.choices(valid, k=rows)):
        document.add_paragraph(f"{NAMES[n % 5]}, ИИН {number}, {DIAGNOSES[n % 4]}")
    table = document.add_table(rows=max(rows // 4, 1), cols=2)
    for row, number in zip(table.rows, rng.choices(valid, k=rows // 4)):
        row.cells[0].text, row.cells[1].text = NAMES[0], number
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def pdf_bytes(pages: int, lines_per_page: int, valid: list[str], rng: random.Random) -> bytes:
    """A text PDF: the tests' one-page fixture PDF (Helvetica), one per page, joined."""
    from pypdf import PdfReader, PdfWriter

    from tests.test_evidence import write_pdf

    writer = PdfWriter()
    with tempfile.TemporaryDirectory() as scratch:
        for page in range(pages):
            lines = [f"Patient {number} contract {n * 7919}" for n, number
                     in enumerate(rng.choices(valid, k=lines_per_page))]
            writer.add_page(PdfReader(write_pdf(Path(scratch, f"{page}.pdf"), lines)).pages[0])
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def small_share(root: Path, count: int, valid: list[str], invalid: list[str],
                rng: random.Random) -> dict[str, int]:
    """`count` small files of mixed types in folders of 500: text, CSV, JSON, XML, XLSX,
    DOCX, PDF and ZIP, in the proportions `SMALL_MIX` gives. Office files are drawn from a
    few templates (generating 10,000 DOCX files one by one would take minutes)."""
    templates = {
        "xlsx": [xlsx_bytes(40, valid, rng) for _ in range(20)],
        "docx": [docx_bytes(12, valid, rng) for _ in range(20)],
        "pdf": [pdf_bytes(1, 20, valid, rng) for _ in range(20)],
    }
    made: dict[str, int] = {}
    kinds = [kind for kind, share in SMALL_MIX for _ in range(share)]
    for n in range(count):
        kind = kinds[n % len(kinds)]
        folder = root / f"dept{n // 500:03d}"
        if n % 500 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        lines = csv_lines(n * 20, valid, invalid, rng, count=20)
        if kind in templates:
            content = templates[kind][n % 20]
        elif kind == "json":
            content = json.dumps([line.split(";")[:3] for line in lines],
                                 ensure_ascii=False).encode()
        elif kind == "xml":
            content = ("<list>" + "".join(f"<p>{line.strip()}</p>" for line in lines)
                       + "</list>").encode()
        elif kind == "zip":
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
                package.writestr("list.csv", "".join(lines))
            content = buffer.getvalue()
        else:
            content = "".join(lines).encode()
        (folder / f"file{n:06d}.{kind}").write_bytes(content)
        made[kind] = made.get(kind, 0) + 1
    return made


# (kind, share in 20): a clinic share is mostly text exports and office documents.
SMALL_MIX = (("csv", 6), ("txt", 3), ("json", 2), ("xml", 1), ("xlsx", 3), ("docx", 3),
             ("pdf", 1), ("zip", 1))
