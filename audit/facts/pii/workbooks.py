"""Legacy `.xls` workbooks read with python-calamine: a Rust reader of BIFF that reads their
numeric cells too, which the raw strings of the file do not hold. A legacy sheet holds at most
65,536 rows, so a workbook is read whole. (XLSX and OpenDocument have their own streaming
reader, `audit.facts.pii.sheet_xml`.)
"""

from __future__ import annotations

from typing import BinaryIO

from audit.facts.pii.readers import TextBatch
from audit.facts.pii.text import LONGEST_NUMBER, SHORTEST_NUMBER, TextScanner


class WorkbookUnreadable(Exception):
    """calamine could not open the file as a workbook (a Word 97 file is OLE2 too)."""


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
