"""The portfolio page: one static HTML file over the history store, no script, no external
asset; every system and site with its latest verdict, score, trend and regressions."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from audit.portfolio import Series
from audit.vocabulary import Lang
from reports.charts import trend_chart
from reports.html import ENVIRONMENT
from reports.i18n import translator

FILE_NAME = "portfolio.html"
REGRESSIONS_SHOWN = 8       # per line; the series' own report lists them all


def render_portfolio(lines: list[Series], directory: Path, lang: Lang = Lang.EN) -> str:
    """The page, its report links relative to `directory` (where it is written)."""
    def link(report: Path | None) -> str | None:
        return os.path.relpath(report, directory) if report else None

    rows = [{"series": line, "report": link(line.report),
             "trend": trend_chart([run.digest() for run in line.trend],
                                  line.latest.threshold)} for line in lines]
    return ENVIRONMENT.get_template("portfolio.html.j2").render(
        rows=rows, t=translator(lang), lang=lang, shown=REGRESSIONS_SHOWN,
        generated=datetime.now(UTC))
