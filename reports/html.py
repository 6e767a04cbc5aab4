"""The HTML report, rendered from results.json alone (jinja2, autoescape on)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from audit.model.results import RunResults
from audit.vocabulary import Lang, Status, localized

_ENVIRONMENT = Environment(
    loader=PackageLoader("reports", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


_ENVIRONMENT.filters["as_text"] = _as_text


def render_html(results: RunResults, lang: Lang = Lang.EN) -> str:
    """The report as one self-contained HTML page."""
    template = _ENVIRONMENT.get_template("report.html.j2")
    by_control: dict[str, list[Any]] = {}
    for result in results.results:
        by_control.setdefault(result.control, []).append(result)
    unverified = [r for r in results.results if r.status in (Status.ERROR, Status.MANUAL)]
    return template.render(
        run=results,
        lang=lang,
        text=lambda value: localized(value, lang),
        results_by_control=by_control,
        control_counts=Counter(c.status.value for c in results.controls),
        result_counts=Counter(r.status.value for r in results.results),
        unverified=unverified,
    )
