"""Legacy `.xls` and binary `.xlsb` workbooks read with python-calamine: a Rust reader of BIFF
and BIFF12 that reads their numeric cells too, which the raw strings of an `.xls` do not hold.
calamine reads a sheet whole: a legacy sheet holds at most 65,536 rows, and a binary sheet is
read only up to `XLSB_SHEET_BYTES` (calamine holds about three times what it inflates to).
(XLSX and OpenDocument have their own streaming reader, `audit.facts.pii.sheet_xml`.)
"""

from __future__ import annotations

import zipfile
from itertools import chain, islice
from typing import BinaryIO

from audit.facts.pii.readers import TextBatch
from audit.facts.pii.sheet_xml import SHEETS
from audit.facts.pii.text import LONGEST_NUMBER, SHORTEST_NUMBER, TextScanner

# Rows sifted together: a bounded share of a sheet (256 cells a row at most in an .xls,
# 16,384 in an .xlsb).
ROWS_AT_A_TIME = 2048
# The largest binary sheet read, as it inflates: a million rows of shared strings and numbers.
XLSB_SHEET_BYTES = 64 * 1024 * 1024


class WorkbookUnreadable(Exception):
    """calamine could not open the file as a workbook (a Word 97 file is OLE2 too), or it
    is too large to read whole."""


def read_binary_workbook(package: zipfile.ZipFile, stream: BinaryIO,
                         scanner: TextScanner) -> None:
    """Every cell of an `.xlsb` whose package `refuse_bomb` has judged, unless one of its
    sheets inflates beyond `XLSB_SHEET_BYTES`."""
    largest = max((info.file_size for info in package.infolist()
                   if info.filename.lower().startswith(SHEETS)), default=0)
    if largest > XLSB_SHEET_BYTES:
        raise WorkbookUnreadable(f"a sheet inflates to {largest} bytes, more than the "
                                 f"{XLSB_SHEET_BYTES} read whole: not scanned")
    read_workbook(stream, scanner)


def read_workbook(stream: BinaryIO, scanner: TextScanner) -> None:
    """Every cell of every sheet, text and numbers in batches (an IIN stored as a number
    arrives as a float, 850101300013.0, or lost its leading zero)."""
    from python_calamine import CalamineError, CalamineWorkbook

    stream.seek(0)
    try:
        workbook = CalamineWorkbook.from_filelike(stream)
    except (CalamineError, ValueError) as error:
        raise WorkbookUnreadable(f"{type(error).__name__}: {error}") from error
    batch = TextBatch(scanner)
    try:
        for name in workbook.sheet_names:
            rows = workbook.get_sheet_by_name(name).iter_rows()
            while cells := list(chain.from_iterable(islice(rows, ROWS_AT_A_TIME))):
                # Sifted by two comprehensions, not a loop body per cell (most of the read);
                # only 9- to 12-digit whole numbers can be identifiers (bool is no number).
                batch.add_all([value for value in cells if value.__class__ is str and value],
                              [value for value in cells
                               if (value.__class__ is float or value.__class__ is int)
                               and SHORTEST_NUMBER <= value < LONGEST_NUMBER])
        batch.flush()
    finally:
        workbook.close()
