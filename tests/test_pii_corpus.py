"""Generated fixtures for the personal-data scanner, and the format tests that use them.

Identifiers are computed here from the published rules (written independently of the code
under test); decoys are the same numbers with a wrong control digit, so each file holds a known
number of valid identifiers among same-length numbers that fail the checksum.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import zipfile
from datetime import date
from pathlib import Path

import docx
import openpyxl
import pytest
from pypdf import PdfReader, PdfWriter

from audit.facts.pii import FileScan, scan_bytes
from tests.test_evidence import write_pdf


def iin_control(first11: str) -> int | None:
    """The IIN/BIN control digit from the published rule, None when the number is never issued."""
    digits = [int(c) for c in first11]
    for weights in (range(1, 12), (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)):
        remainder = sum(d * w for d, w in zip(digits, weights)) % 11
        if remainder != 10:
            return remainder
    return None


def make_iin(born: date, sex_digit: int, serial: int = 1) -> str:
    """A valid IIN for a birth date (the first serial from `serial` that has a control)."""
    while True:
        first = f"{born:%y%m%d}{sex_digit}{serial:04d}"
        control = iin_control(first)
        if control is not None:
            return first + str(control)
        serial += 1


def make_bin(year_month: str, serial: int = 1) -> str:
    """A valid BIN of a resident legal entity's head office."""
    while True:
        first = f"{year_month}40{serial:05d}"
        control = iin_control(first)
        if control is not None:
            return first + str(control)
        serial += 1


def decoy(valid: str) -> str:
    """The same number with a wrong control digit."""
    return valid[:-1] + str((int(valid[-1]) + 1) % 10)


IINS = [make_iin(date(1979, 10, 28), 3, 272), make_iin(date(1985, 2, 14), 4, 1234),
        make_iin(date(1950, 7, 1), 3, 42)]
IIN_2000S = make_iin(date(2006, 12, 11), 6, 1)      # leading zero: Excel drops it
BIN = make_bin("0512")
SNILS = "11223344595"
RNOKPP = "1759013776"
DECOYS = [decoy(value) for value in IINS] + ["123456789012", decoy(SNILS)]
EVERY_RAW = IINS + [IIN_2000S, SNILS, RNOKPP, BIN]


def rows() -> list[list[str]]:
    """A patient list: a header, three valid IINs, a BIN, decoys of the same length."""
    table = [["ФИО", "ИИН", "диагноз"]]
    table += [[f"Пациент {n}", value, "J18.9"] for n, value in enumerate(IINS)]
    table += [["ТОО Клиника", BIN, ""]]
    table += [[f"Запись {n}", value, ""] for n, value in enumerate(DECOYS)]
    return table


def delimited(delimiter: str) -> bytes:
    """The patient list as CSV or TSV."""
    return "".join(delimiter.join(row) + "\n" for row in rows()).encode("utf-8")


def xlsx_bytes() -> bytes:
    """The patient list, plus an IIN stored as a number and one shown as 6.12116E+10."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows():
        sheet.append(row)
    sheet.append(["Число", int(IIN_2000S), ""])
    sheet.append(["Экспорт", "6.12116E+10", ""])
    sheet.append(["Сумма", 123456789012.0, 17.5])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def biff12_record(kind: int, data: bytes = b"") -> bytes:
    """One record of a binary workbook (MS-XLSB 2.1.4): its type and size as 7-bit varints."""
    head = bytearray()
    for value, most in ((kind, 2), (len(data), 4)):
        for _ in range(most):
            byte, value = value & 0x7F, value >> 7
            head.append(byte | (0x80 if value else 0))
            if not value:
                break
    return bytes(head) + data


def wide_string(text: str) -> bytes:
    """An XLWideString: its length in UTF-16 code units, then UTF-16LE."""
    return struct.pack("<I", len(text)) + text.encode("utf-16-le")


RELATIONSHIPS = "http://schemas.openxmlformats.org/package/2006/relationships"
OFFICE_RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def xlsb_bytes(table: list[list[str | float]]) -> bytes:
    """A binary workbook (.xlsb) of one sheet, written record by record as MS-XLSB lays it
    out (no Python library writes the format): text cells as BrtCellSt, numbers as
    BrtCellReal."""
    sheet = [biff12_record(0x0081),                                          # BrtBeginSheet
             biff12_record(0x0094, struct.pack("<4I", 0, len(table) - 1, 0, 2)),   # BrtWsDim
             biff12_record(0x0091)]                                      # BrtBeginSheetData
    for number, row in enumerate(table):
        sheet.append(biff12_record(0x0000, struct.pack("<I", number) + bytes(13)))  # BrtRowHdr
        for column, value in enumerate(row):
            cell = struct.pack("<II", column, 0)
            sheet.append(biff12_record(0x0006, cell + wide_string(value)) if isinstance(value, str)
                         else biff12_record(0x0005, cell + struct.pack("<d", value)))
    sheet += [biff12_record(0x0092), biff12_record(0x0082)]    # BrtEndSheetData, BrtEndSheet
    workbook = (biff12_record(0x0083) + biff12_record(0x008F)   # BrtBeginBook, BundleShs
                + biff12_record(0x009C, struct.pack("<II", 0, 1) + wide_string("rId1")
                                + wide_string("Пациенты"))      # BrtBundleSh
                + biff12_record(0x0090) + biff12_record(0x009D, bytes(4))  # BrtCalcProp
                + biff12_record(0x0084))                                   # BrtEndBook
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", '<Types xmlns="http://schemas.openxmlformats.'
                         'org/package/2006/content-types"><Default Extension="bin" ContentType='
                         '"application/vnd.ms-excel.sheet.binary.macroEnabled.main"/></Types>')
        package.writestr("_rels/.rels", f'<Relationships xmlns="{RELATIONSHIPS}"><Relationship '
                         f'Id="rId1" Type="{OFFICE_RELATIONSHIPS}/officeDocument" '
                         f'Target="xl/workbook.bin"/></Relationships>')
        package.writestr("xl/workbook.bin", workbook)
        package.writestr("xl/_rels/workbook.bin.rels", f'<Relationships xmlns="{RELATIONSHIPS}">'
                         f'<Relationship Id="rId1" Type="{OFFICE_RELATIONSHIPS}/worksheet" '
                         f'Target="worksheets/sheet1.bin"/></Relationships>')
        package.writestr("xl/worksheets/sheet1.bin", b"".join(sheet))
    return buffer.getvalue()


def binary_book() -> bytes:
    """The patient list as an .xlsb, with the numbers of `xlsx_bytes`."""
    table: list[list[str | float]] = [[*row] for row in rows()]
    table += [["Число", float(IIN_2000S), ""], ["Экспорт", "6.12116E+10", ""],
              ["Сумма", 123456789012.0, 17.5]]
    return xlsb_bytes(table)


def docx_bytes() -> bytes:
    """Paragraphs, a table and a table nested in a cell."""
    document = docx.Document()
    document.add_paragraph(f"Пациент: ИИН {IINS[0]}, контрольный номер {DECOYS[0]}")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = IINS[1]
    table.cell(0, 1).text = DECOYS[1]
    nested = table.cell(1, 0).add_table(rows=1, cols=1)
    nested.cell(0, 0).text = f"вложено {IINS[2]} и {BIN}"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def pdf_bytes(tmp_path: Path, password: str | None = None) -> bytes:
    """A one-page PDF with the identifiers, optionally encrypted."""
    path = write_pdf(tmp_path / "list.pdf", ["IIN list"] + [f"{v} {d}" for v, d in
                                                            zip(IINS, DECOYS)] + [BIN])
    if password is None:
        return path.read_bytes()
    writer = PdfWriter(clone_from=PdfReader(path))
    writer.encrypt(password, algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


ODF_CONTENT = """<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"><office:body>{body}
</office:body></office:document-content>"""


def odf_bytes(kind: str) -> bytes:
    """An OpenDocument spreadsheet (cells, one numeric) or text (paragraphs)."""
    if kind == "spreadsheet":
        cells = "".join(f"<table:table-row><table:table-cell><text:p>{row[1]}</text:p>"
                        f"</table:table-cell></table:table-row>" for row in rows())
        number = (f'<table:table-row><table:table-cell office:value-type="float" '
                  f'office:value="{int(IIN_2000S)}"><text:p>{int(IIN_2000S)}</text:p>'
                  f'</table:table-cell></table:table-row>')
        body = f"<office:spreadsheet><table:table>{cells}{number}</table:table></office:spreadsheet>"
    else:
        body = "<office:text>" + "".join(f"<text:p>{' '.join(row)}</text:p>" for row in rows()) \
            + "</office:text>"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("mimetype", f"application/vnd.oasis.opendocument.{kind}",
                         compress_type=zipfile.ZIP_STORED)
        package.writestr("content.xml", ODF_CONTENT.format(body=body),
                         compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A plain ZIP of the given members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        for name, content in members.items():
            package.writestr(name, content)
    return buffer.getvalue()


LIST_COUNTS = {"kz_iin": 3, "kz_bin": 1}


def every_format(tmp_path: Path) -> dict[str, tuple[bytes, str, dict[str, int]]]:
    """name -> (content, expected format, expected distinct identifiers by kind)."""
    text = ("Выписка. Пациент с ИИН " + IINS[0] + " и " + IINS[1] + ", СНИЛС 112-233-445 95, "
            "РНОКПП " + RNOKPP + ", тел. +7 (701) 123-45-67, почта a.patient@clinic.kz. "
            "Номера договоров: " + " ".join(DECOYS) + "\n").encode("utf-8")
    document = {"patients": [{"iin": v, "contract": d} for v, d in zip(IINS, DECOYS)],
                "org": {"bin": BIN}, "legacy": int(IIN_2000S)}
    return {
        "notes": (text, "text", {"kz_iin": 2, "ru_snils": 1, "ua_rnokpp": 1, "phone": 1,
                                 "email": 1}),
        "list.dat": (delimited(";"), "csv", LIST_COUNTS),
        "list.tab": (delimited("\t"), "tsv", LIST_COUNTS),
        "utf16.txt": (delimited(";").decode().encode("utf-16"), "text", LIST_COUNTS),
        "export": (json.dumps(document, ensure_ascii=True).encode(), "json",
                   {"kz_iin": 4, "kz_bin": 1}),
        "export.x": (("<list>" + "".join(f"<p iin='{v}'>{d}</p>" for v, d in zip(IINS, DECOYS))
                     + f"<org>{BIN}</org></list>").encode(), "xml", LIST_COUNTS),
        "book": (xlsx_bytes(), "xlsx", {"kz_iin": 4, "kz_bin": 1}),
        "binary book": (binary_book(), "xlsb", {"kz_iin": 4, "kz_bin": 1}),
        "letter": (docx_bytes(), "docx", LIST_COUNTS),
        "scan": (pdf_bytes(tmp_path), "pdf", LIST_COUNTS),
        "calc": (odf_bytes("spreadsheet"), "ods", {"kz_iin": 4, "kz_bin": 1}),
        "writer": (odf_bytes("text"), "odt", LIST_COUNTS),
        "bundle": (zip_bytes({"a/list.csv": delimited(","),
                              "inner.zip": zip_bytes({"book.xlsx": xlsx_bytes()})}),
                   "zip", {"kz_iin": 4, "kz_bin": 1}),
    }


FORMAT_CASES = ["notes", "list.dat", "list.tab", "utf16.txt", "export", "export.x", "book",
                "binary book", "letter", "scan", "calc", "writer", "bundle"]


@pytest.mark.parametrize("name", FORMAT_CASES)
def test_every_format_yields_exactly_the_valid_identifiers(tmp_path: Path, name: str) -> None:
    content, expected_format, expected = every_format(tmp_path)[name]
    result = scan_bytes(name, content)
    assert result.format == expected_format
    assert result.identifiers == expected, result.errors
    assert not result.encrypted and not result.errors
    assert_nothing_raw(result)


def assert_nothing_raw(result: FileScan) -> None:
    """No raw identifier anywhere in the serialised result."""
    text = result.model_dump_json()
    for raw in EVERY_RAW:
        assert raw not in text


def test_samples_are_masked_and_the_hash_is_the_files(tmp_path: Path) -> None:
    content = delimited(";")
    result = scan_bytes("list.csv", content)
    assert result.samples["kz_iin"] == ["*" * 10 + value[-2:] for value in IINS]
    import hashlib
    assert result.sha256 == hashlib.sha256(content).hexdigest()
    assert result.size == len(content)
    assert "header:ИИН" in result.context and "health:диагноз" in result.context
    assert result.confidence == "high"


def test_spreadsheet_number_padded_and_scientific_notation_suspected() -> None:
    result = scan_bytes("book", xlsx_bytes())
    assert result.identifiers["kz_iin"] == 4             # the 11-digit number, padded
    assert "**********" + IIN_2000S[-2:] in result.samples["kz_iin"]
    assert result.suspected_unverifiable == 1
    csv_result = scan_bytes("export.csv", b"IIN;name\n6.12116E+10;x\n7.91028E+11;y\n")
    assert csv_result.identifiers == {} and csv_result.suspected_unverifiable == 2


def gpg(tmp_path: Path, source: Path, armor: bool) -> bytes:
    """A symmetrically encrypted OpenPGP message made by gpg itself."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700, exist_ok=True)
    target = tmp_path / ("message.asc" if armor else "message.gpg")
    try:
        subprocess.run(["gpg", "--homedir", str(home), "--batch", "--yes", "--pinentry-mode",
                        "loopback", "--passphrase", "test-passphrase", "--symmetric",
                        *(["--armor"] if armor else []), "--output", str(target), str(source)],
                       check=True, capture_output=True, timeout=60)
    finally:
        # gpg starts an agent for this home; a test stops what it starts
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                       check=False, capture_output=True, timeout=60)
    return target.read_bytes()


def seven_zip(target: Path, source: Path, *options: str) -> bytes:
    """An archive made by 7z itself, with the given switches."""
    subprocess.run(["7z", "a", "-bd", "-y", *options, str(target), str(source)], check=True,
                   capture_output=True, timeout=60)
    return target.read_bytes()


def luks_header() -> bytes:
    """The start of a LUKS2 volume (a real one needs a block device and root's cryptsetup)."""
    return b"LUKS\xba\xbe\x00\x02" + b"\x00" * 4088


@pytest.fixture
def patient_list(tmp_path: Path) -> Path:
    path = tmp_path / "patients.csv"
    path.write_bytes(delimited(";"))
    return path


def test_protected_containers_are_counted_as_protected(tmp_path: Path,
                                                        patient_list: Path) -> None:
    zipcrypto = tmp_path / "zipcrypto.zip"
    subprocess.run(["zip", "-q", "-P", "test-passphrase", "-j", str(zipcrypto),
                    str(patient_list)], check=True, timeout=60)
    cases = {
        "zipcrypto": (zipcrypto.read_bytes(), "zip", ["zip member (zipcrypto)"]),
        "aes-zip": (seven_zip(tmp_path / "aes.zip", patient_list, "-tzip", "-ptest-passphrase",
                              "-mem=AES256"), "zip", ["zip member (aes)"]),
        "7z-hidden-names": (seven_zip(tmp_path / "hidden.7z", patient_list, "-t7z", "-ptest-passphrase",
                                      "-mhe=on"), "7z", ["encrypted 7z"]),
        "pgp-binary": (gpg(tmp_path, patient_list, armor=False), "openpgp", ["openpgp message"]),
        "pgp-armored": (gpg(tmp_path, patient_list, armor=True), "openpgp", ["openpgp message"]),
        "pdf": (pdf_bytes(tmp_path, password="secret"), "pdf", ["encrypted pdf"]),
        "luks": (luks_header(), "luks", ["luks volume"]),
    }
    for name, (content, expected_format, protected) in cases.items():
        result = scan_bytes(name, content)
        assert (name, result.format, result.protected) == (name, expected_format, protected)
        assert result.encrypted and result.identifiers == {}, name


def test_a_clear_member_beside_an_encrypted_one_is_read(tmp_path: Path,
                                                         patient_list: Path) -> None:
    mixed = tmp_path / "mixed.zip"
    subprocess.run(["zip", "-q", "-P", "pw", "-j", str(mixed), str(patient_list)], check=True)
    clear = tmp_path / "clear.csv"
    clear.write_bytes(f"ИИН\n{IINS[0]}\n".encode())
    subprocess.run(["zip", "-q", "-j", str(mixed), str(clear)], check=True)
    result = scan_bytes("mixed.zip", mixed.read_bytes())
    assert result.protected == ["zip member (zipcrypto)"] and not result.encrypted
    assert result.identifiers == {"kz_iin": 1}


def test_a_pdf_with_an_empty_user_password_is_read(tmp_path: Path) -> None:
    result = scan_bytes("owner-only.pdf", pdf_bytes(tmp_path, password=""))
    assert result.identifiers == LIST_COUNTS and not result.encrypted


def test_zip_bomb_is_refused_without_inflating() -> None:
    buffer = io.BytesIO()
    zeros = b"0" * (1024 * 1024)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as package, \
            package.open("bomb.csv", "w") as member:
        for _ in range(64):
            member.write(zeros)
    result = scan_bytes("bomb.zip", buffer.getvalue())
    assert result.identifiers == {} and len(result.errors) == 1
    assert "zip bomb" in result.errors[0]


def test_a_binary_workbook_too_large_to_read_whole_is_reported(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """calamine reads a sheet whole: a binary sheet past the bound is named, not read."""
    from audit.facts.pii import workbooks
    monkeypatch.setattr(workbooks, "XLSB_SHEET_BYTES", 100)
    result = scan_bytes("big.xlsb", binary_book())
    assert result.format == "xlsb" and result.identifiers == {}
    assert len(result.errors) == 1 and "more than the 100 read whole" in result.errors[0]


def test_nesting_beyond_the_depth_limit_is_reported() -> None:
    content = delimited(";")
    for level in range(5):
        content = zip_bytes({f"level{level}.zip" if level else "list.csv": content})
    result = scan_bytes("deep.zip", content)
    assert any("nested deeper" in error for error in result.errors)


@pytest.mark.parametrize("content", [b"PK\x03\x04 not really a zip", b"%PDF-1.4 broken",
                                     b"\x00\x01\x02binary", b"", b"{ not json " + IINS[0].encode()])
def test_malformed_files_give_details_never_exceptions(content: bytes) -> None:
    result = scan_bytes("odd", content)
    assert isinstance(result, FileScan)
    assert_nothing_raw(result)


LEGACY_NOTE = ("legacy office document: only text strings read, cells stored as numbers are "
               "not seen")


def test_legacy_office_strings_are_read_from_the_raw_file() -> None:
    """A hand-made OLE2 body: one IIN as 8-bit text, one as UTF-16 at an odd offset, a decoy."""
    body = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500 + IINS[0].encode()
            + b"\x01" * 101 + IINS[1].encode("utf-16-le") + b"\x00" * 37
            + DECOYS[2].encode("utf-16-le"))
    result = scan_bytes("old.xls", body)
    assert result.format == "ole2" and result.identifiers == {"kz_iin": 2}
    assert result.errors == [LEGACY_NOTE]
    protected = scan_bytes("locked.xlsx", body[:512] + "EncryptedPackage".encode("utf-16-le"))
    assert protected.encrypted and protected.protected == ["password-protected office document"]


def test_a_name_holding_an_identifier_is_redacted() -> None:
    result = scan_bytes(f"/share/{IINS[0]}.csv", b"nothing here\n")
    assert IINS[0] not in result.name and result.name.endswith(IINS[0][-2:] + ".csv")
