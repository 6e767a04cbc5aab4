"""The report's charts as inline SVG: no script, no external file. Each status has a colour
and a pattern of its own, so a chart reads in greyscale print too; every number a chart
shows is in a table beside it (screen readers read the table, the chart is `aria-hidden`).

Every label is escaped here: target names come from the inventory, untrusted like the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from audit.model.results import RunDigest, RunResults
from audit.vocabulary import Severity, Status
from reports.register import one_line

Translate = Callable[..., str]


@dataclass(frozen=True)
class StatusStyle:
    """How a status is drawn: a fill colour and a pattern over it (greyscale tells them apart)."""

    colour: str
    pattern: str          # SVG path drawn in each 6x6 tile, "" for a plain fill


STYLES = {
    Status.PASS: StatusStyle("#2e7d32", ""),
    Status.WAIVED: StatusStyle("#7e57c2", "M0 3h6"),
    Status.FAIL: StatusStyle("#c62828", "M0 6L6 0M-1 1L1 -1M5 7L7 5"),
    Status.ERROR: StatusStyle("#ef6c00", "M0 0L6 6M0 6L6 0"),
    Status.MANUAL: StatusStyle("#f9a825", "M2 2h1v1h-1z"),
    Status.NOT_APPLICABLE: StatusStyle("#eceff1", ""),
}
# From what needs action first to what needs none: a grid cell shows the worst.
WORST_FIRST = (Status.FAIL, Status.ERROR, Status.MANUAL, Status.WAIVED, Status.PASS,
               Status.NOT_APPLICABLE)
BAR_WIDTH, BAR_HEIGHT, LABEL_WIDTH = 420, 12, 80
CELL = 14
CHARACTER_WIDTH, LEGEND_LINE = 6.5, 13      # at font size 10, Cyrillic included
LABEL_CHARACTERS = 32         # a longer target name or area is cut in the chart (the table has it)


def _defs(prefix: str) -> str:
    tiles = "".join(
        f'<pattern id="{prefix}-{status.value}" width="6" height="6" '
        f'patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="{style.colour}"/>'
        + (f'<path d="{style.pattern}" stroke="#fff" stroke-width="1.2"/>' if style.pattern
           else "") + "</pattern>"
        for status, style in STYLES.items())
    return f"<defs>{tiles}</defs>"


def _svg(width: int, height: int, body: str, prefix: str) -> Markup:
    return Markup(f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" aria-hidden="true" '
                  f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
                  f'{_defs(prefix)}{body}</svg>')


def _label(text: str) -> str:
    return one_line(text, LABEL_CHARACTERS)


def _text(x: float, y: float, label: str, anchor: str = "start", size: int = 10) -> str:
    return (f'<text x="{x:g}" y="{y:g}" font-size="{size}" text-anchor="{anchor}">'
            f"{escape(_label(label))}</text>")


def _legend(y: float, statuses: Sequence[Status], t: Translate, prefix: str,
            width: float) -> tuple[str, float]:
    """A key of the statuses from `y`, wrapped at `width`; and the height it took."""
    parts, x, line = [], 0.0, 0
    for status in statuses:
        label = t(f"status.{status.value}")
        room = 24 + CHARACTER_WIDTH * len(label)
        if x and x + room > width:
            x, line = 0.0, line + 1
        top = y + line * LEGEND_LINE
        parts.append(f'<rect x="{x:g}" y="{top:g}" width="10" height="10" '
                     f'fill="url(#{prefix}-{status.value})" stroke="#555" stroke-width="0.5"/>')
        parts.append(_text(x + 14, top + 9, label))
        x += room
    return "".join(parts), (line + 1) * LEGEND_LINE


def severity_chart(matrix: dict[Severity, Counter[Status]], statuses: Sequence[Status],
                   t: Translate) -> Markup:
    """One stacked bar per severity: its controls by status."""
    most = max((counts.total() for counts in matrix.values()), default=0) or 1
    rows = []
    for row, (severity, counts) in enumerate(matrix.items()):
        y, x = row * (BAR_HEIGHT + 4), float(LABEL_WIDTH)
        rows.append(_text(0, y + 10, t(f"severity.{severity.value}")))
        for status in statuses:
            width = BAR_WIDTH * counts[status] / most
            if not width:
                continue
            rows.append(f'<rect x="{x:g}" y="{y}" width="{width:g}" height="{BAR_HEIGHT}" '
                        f'fill="url(#sev-{status.value})" stroke="#555" stroke-width="0.5"/>')
            if width >= 14:
                rows.append(f'<rect x="{x + width / 2 - 7:g}" y="{y + 1}" width="14" '
                            f'height="10" fill="#fff" opacity="0.85"/>')
                rows.append(_text(x + width / 2, y + 9.5, str(counts[status]), "middle", 9))
            x += width
    height, width = len(matrix) * (BAR_HEIGHT + 4), LABEL_WIDTH + BAR_WIDTH + 10
    legend, legend_height = _legend(height + 4, statuses, t, "sev", width)
    return _svg(width, int(height + 6 + legend_height), "".join(rows) + legend, "sev")


@dataclass(frozen=True)
class AreaGrid:
    """The worst status of each target in each control area (the control id's first part)."""

    areas: list[str]
    rows: list[tuple[str, dict[str, Status]]]


def area_grid(results: RunResults) -> AreaGrid:
    """Targets in report order by areas in control order, each cell its worst status."""
    areas = list(dict.fromkeys(control.id.split(".", 1)[0] for control in results.controls))
    seen: dict[str, dict[str, list[Status]]] = {}
    for result in results.results:
        area = result.control.split(".", 1)[0]
        seen.setdefault(result.target, {}).setdefault(area, []).append(result.status)
    rows = [(target, {area: min(statuses, key=WORST_FIRST.index)
                      for area, statuses in cells.items()}) for target, cells in seen.items()]
    return AreaGrid(areas, rows)


def grid_chart(grid: AreaGrid, t: Translate) -> Markup:
    """The targets x control-area grid, one square per cell."""
    label_width = 8 + 6 * max((len(_label(target)) for target, _ in grid.rows), default=4)
    header = 8 + 6 * max((len(_label(area)) for area in grid.areas), default=4)
    parts = [f'<text transform="translate({label_width + column * CELL + 12},{header - 4}) '
             f'rotate(-60)" font-size="10">{escape(_label(area))}</text>'
             for column, area in enumerate(grid.areas)]
    for row, (target, cells) in enumerate(grid.rows):
        y = header + row * CELL
        parts.append(_text(0, y + 10, target))
        for column, area in enumerate(grid.areas):
            status = cells.get(area)
            if status is not None:
                parts.append(f'<rect x="{label_width + column * CELL}" y="{y}" '
                             f'width="{CELL - 2}" height="{CELL - 2}" '
                             f'fill="url(#grid-{status.value})" stroke="#555" '
                             'stroke-width="0.5"/>')
    height = header + len(grid.rows) * CELL
    width = max(label_width + len(grid.areas) * CELL, LABEL_WIDTH + BAR_WIDTH + 10)
    legend, legend_height = _legend(height + 4, WORST_FIRST, t, "grid", width)
    return _svg(width, int(height + 6 + legend_height), "".join(parts) + legend, "grid")


def trend_chart(trend: Sequence[RunDigest], threshold: float) -> Markup:
    """The score of each run of the series (0 to 100), the threshold dashed."""
    width, height, left = 480, 80, 30
    step = (width - left - 20) / max(len(trend) - 1, 1)

    def y_of(score: float) -> float:
        return 10 + (100 - score) * (height - 30) / 100

    points = [(left + index * step, y_of(point.score)) for index, point in enumerate(trend)]
    parts = [(f'<line x1="{left}" x2="{width - 10}" y1="{y_of(threshold):g}" '
             f'y2="{y_of(threshold):g}" stroke="#c62828" stroke-dasharray="4 3"/>'),
             _text(0, y_of(100) + 4, "100", size=9), _text(0, y_of(0) + 4, "0", size=9),
             (f'<polyline points="{" ".join(f"{x:g},{y:g}" for x, y in points)}" fill="none" '
             'stroke="#1f3a5f" stroke-width="1.5"/>')]
    for (x, y), point in zip(points, trend, strict=True):
        parts.append(f'<circle cx="{x:g}" cy="{y:g}" r="3" fill="#1f3a5f"/>')
        parts.append(_text(x, y - 6, f"{point.score:g}", "middle", 9))
        parts.append(_text(x, height - 4, f"#{point.run_id}", "middle", 9))
    return _svg(width, height, "".join(parts), "trend")
