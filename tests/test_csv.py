"""CSV: one row per result, and cells a spreadsheet will not run as formulas."""

from __future__ import annotations

import csv
import io

import pytest
from test_report_samples import sample_results

from audit.vocabulary import Lang
from reports.csv_table import BYTE_ORDER_MARK, COLUMNS, render_csv, safe_cell


def test_one_row_per_result_with_a_header() -> None:
    text = render_csv(sample_results(), Lang.KK)
    assert text.startswith(BYTE_ORDER_MARK + "control,")      # spreadsheets then read UTF-8
    rows = list(csv.DictReader(io.StringIO(text.removeprefix(BYTE_ORDER_MARK), newline="")))
    run = sample_results()
    assert len(rows) == len(run.results)
    assert tuple(rows[0]) == COLUMNS
    first = rows[0]
    assert (first["control"], first["target"], first["status"]) == ("NET-01", "db-main", "waived")
    assert first["title"] == "Дерекқорға сырттан қол жетпейді"
    assert first["severity"] == "critical" and first["waiver_approved_by"] == "Chief physician"
    assert '"open_ports"' in first["observed"]
    error_row = next(row for row in rows if row["error_type"] == "unreachable")
    assert error_row["error_message"].startswith("connect to 10.20.0.20:22")


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"])
def test_formula_starts_are_quoted(cell: str) -> None:
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["db-main", "1", " =not at start", "", "'already"])
def test_plain_cells_are_left_alone(cell: str) -> None:
    assert safe_cell(cell) == cell
