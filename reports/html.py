"""The HTML report an assessor signs, rendered from results.json alone (jinja2, autoescape on).

One self-contained page: inline CSS, no script, no external asset; it prints to A4.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from audit.model.results import Result, RunResults
from audit.profiles import LIBRARY_VERSION
from audit.vocabulary import Lang, Severity, Status, localized
from reports.charts import area_grid, grid_chart, severity_chart, trend_chart
from reports.i18n import summary_of, translator
from reports.register import findings_register, one_line, remediation_plan, target_lines
from reports.text import as_text, attestation_note, clean

# Errors that mean a target could not be reached at all, listed in the scope section.
UNREACHABLE_ERRORS = frozenset({"unreachable", "timeout"})
# Status columns of the summary tables, best first.
STATUS_ORDER = (Status.PASS, Status.WAIVED, Status.FAIL, Status.ERROR, Status.MANUAL,
                Status.NOT_APPLICABLE)
# Each list of changes since the previous run shows at most this many rows.
CHANGES_SHOWN = 50


def _finalize(value: Any) -> Any:
    # Every {{ value }} passes here before escaping: untrusted text loses control characters
    # and is cut, whatever field it sits in.
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return clean(value)


def _evidence(value: Any) -> Markup:
    # Already cleaned and cut by as_text; escaped here so _finalize leaves it alone.
    return Markup(escape(as_text(value)))


def _is_plain(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _detail(value: Any) -> Markup:
    # A list of plain values (ports, files, masked samples) reads best as one line, and a list
    # of flat records (open ports with their service) as one line per record: pretty-printed
    # JSON in a narrow column took a page per finding.
    if isinstance(value, list) and value:
        if all(_is_plain(item) for item in value):
            return Markup(escape(as_text(", ".join(str(item) for item in value))))
        if all(isinstance(item, dict) and all(_is_plain(v) for v in item.values())
               for item in value):
            lines = ("; ".join(f"{key}: {item}" for key, item in record.items())
                     for record in value)
            return Markup(escape(as_text("\n".join(lines))))
    return _evidence(value)


def _breakable(identifier: str) -> Markup:
    """A control or check id that a narrow column wraps only after a dot or an underscore
    (`hostsys.` / `disk_` / `encryption`), never inside a word."""
    parts = Markup("<wbr>").join(re.split(r"(?<=[._])", identifier))
    return Markup('<span class="id">{}</span>').format(parts)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["evidence"] = _evidence
    environment.filters["detail"] = _detail
    environment.filters["when"] = _when
    environment.filters["breakable"] = _breakable
    return environment


ENVIRONMENT = _environment()


def _severity_matrix(results: RunResults) -> dict[Severity, Counter[Status]]:
    matrix: dict[Severity, Counter[Status]] = {severity: Counter() for severity in Severity}
    for control in results.controls:
        matrix[control.severity][control.status] += 1
    return matrix


def _by_control(results: RunResults) -> dict[str, list[Result]]:
    grouped: dict[str, list[Result]] = {}
    for result in results.results:
        grouped.setdefault(result.control, []).append(result)
    return grouped


# A source longer than this is cited by a number and listed once, before the controls.
SHORT_SOURCE = 16


def cited_sources(results: RunResults) -> dict[str, str]:
    """Each long source the controls cite, by the label the controls show ("[1]")."""
    labels: dict[str, str] = {}
    for control in results.controls:
        for reference in control.references:
            source = reference.source
            if source and len(source) > SHORT_SOURCE and source not in labels:
                labels[source] = f"[{len(labels) + 1}]"
    return labels


def render_html(results: RunResults, lang: Lang = Lang.EN) -> str:
    """The report as one self-contained HTML page in `lang`."""
    template = ENVIRONMENT.get_template("report.html.j2")
    register = findings_register(results, lang)
    t = translator(lang)
    matrix = _severity_matrix(results)
    grid = area_grid(results)
    history = results.history
    return template.render(
        run=results,
        lang=lang,
        t=t,
        text=lambda value: localized(value, lang),
        statuses=STATUS_ORDER,
        severities=list(Severity),
        severity_matrix=matrix,
        severity_chart=severity_chart(matrix, STATUS_ORDER, t),
        grid=grid,
        grid_chart=grid_chart(grid, t),
        trend_chart=trend_chart(history.trend, results.threshold) if history else "",
        result_counts=Counter(result.status for result in results.results),
        results_by_control=_by_control(results), not_applicable=Status.NOT_APPLICABLE,
        manual=Status.MANUAL,
        titles={control.id: control.title for control in results.controls},
        unreachable=[r for r in results.results
                     if r.error is not None and r.error.type in UNREACHABLE_ERRORS],
        unverified=[r for r in results.results if r.status in (Status.ERROR, Status.MANUAL)],
        changes_shown=CHANGES_SHOWN,
        register=register,
        target_lines=target_lines(results, register),
        plan=remediation_plan(results, lang),
        profiles=[p for p in results.profiles if p.version != LIBRARY_VERSION],
        libraries=[p for p in results.profiles if p.version == LIBRARY_VERSION],
        result_index={(r.control, r.check, r.target): index
                      for index, r in enumerate(results.results)},
        attestation_note=attestation_note,
        one_line=one_line,
        summary=lambda result: summary_of(result, lang),
        sources=cited_sources(results),
    )
