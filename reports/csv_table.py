"""CSV: one row per result, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io

from audit.model.results import RunResults
from audit.vocabulary import Lang, localized
from reports.text import as_text, attestation_note

COLUMNS = ("control", "title", "severity", "check", "target", "status", "summary", "observed",
           "expected", "details", "error_type", "error_message", "waiver_reason",
           "waiver_approved_by", "waiver_expires", "attestation", "duration_ms")

BYTE_ORDER_MARK = "\ufeff"
# A spreadsheet runs a cell starting with these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """The cell as text a spreadsheet will not evaluate."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def render_csv(results: RunResults, lang: Lang = Lang.EN) -> str:
    """The run's results as CSV text (a header row, then one row per result).

    It starts with a byte-order mark: without it a spreadsheet reads Cyrillic as mojibake.
    """
    controls = {control.id: control for control in results.controls}
    buffer = io.StringIO()
    buffer.write(BYTE_ORDER_MARK)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for result in results.results:
        control = controls.get(result.control)
        waiver = result.waiver
        row = (
            result.control,
            localized(control.title, lang) if control else "",
            control.severity.value if control else "",
            result.check,
            result.target,
            result.status.value,
            result.summary,
            result.evidence.observed,
            result.evidence.expected,
            result.evidence.details or None,
            result.error.type if result.error else "",
            result.error.message if result.error else "",
            waiver.reason if waiver else "",
            waiver.approved_by if waiver else "",
            waiver.expires.isoformat() if waiver else "",
            attestation_note(result),
            str(result.duration_ms),
        )
        writer.writerow([safe_cell(as_text(cell)) for cell in row])
    return buffer.getvalue()
