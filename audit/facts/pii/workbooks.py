"""OpenDocument and legacy `.xls` spreadsheets read with python-calamine: a Rust reader that
also reads the numeric cells of BIFF `.xls` files. (XLSX has its own streaming reader,
`audit.facts.pii.xlsx`.)

calamine parses a whole sheet before handing over its rows, so its memory grows with the
sheet. An OpenDocument sheet larger than `CALAMINE_MAX_SHEET_BYTES` (its XML, unpacked) is
read by OpenDocument's `iterparse` instead: slower, but flat in memory. A legacy `.xls` holds
at most 65,536 rows a sheet, so it is always read whole.
"""

from __future__ import annotations

import zipfile
from typing import BinaryIO

from audit.facts.pii.readers import TextBatch
from audit.facts.pii.text import LONGEST_NUMBER, SHORTEST_NUMBER, TextScanner

# Unpacked sheet XML up to this size is read by calamine, which holds the sheet in memory:
# measured, about 1 MB of memory per MB of XML. Larger sheets are streamed.
CALAMINE_MAX_SHEET_BYTES = 512 * 1024 * 1024


class WorkbookUnreadable(Exception):
    """calamine could not open the file as a workbook (a Word 97 file is OLE2 too)."""


def fits_in_memory(package: zipfile.ZipFile) -> bool:
    """Whether the sheets of an OpenDocument package are small enough for calamine."""
    return package.getinfo("content.xml").file_size <= CALAMINE_MAX_SHEET_BYTES


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
    add_text, add_number = batch.add, batch.add_number
    try:
        for name in workbook.sheet_names:
            for row in workbook.get_sheet_by_name(name).iter_rows():
                for value in row:
                    if value.__class__ is str:
                        if value:
                            add_text(value)
                    # Only 9- to 12-digit whole numbers can be identifiers.
                    elif (value.__class__ is float or value.__class__ is int) \
                            and SHORTEST_NUMBER <= value < LONGEST_NUMBER:
                        add_number(value)
        batch.flush()
    finally:
        workbook.close()
