"""Renderers: each takes results.json (as a RunResults) and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from audit.model.results import RunResults
from audit.vocabulary import Lang


@dataclass(frozen=True)
class Renderer:
    """One output format."""

    name: str
    file_name: str
    render: Callable[[RunResults, Lang], str | bytes]


def _json(results: RunResults, lang: Lang) -> str:
    from audit.run import results_json
    return results_json(results)


def _html(results: RunResults, lang: Lang) -> str:
    from reports.html import render_html
    return render_html(results, lang)


def _sarif(results: RunResults, lang: Lang) -> str:
    from reports.sarif import render_sarif
    return render_sarif(results, lang)


def _junit(results: RunResults, lang: Lang) -> str:
    from reports.junit import render_junit
    return render_junit(results, lang)


def _csv(results: RunResults, lang: Lang) -> str:
    from reports.csv_table import render_csv
    return render_csv(results, lang)


def _oscal(results: RunResults, lang: Lang) -> str:
    from reports.oscal import render_oscal
    return render_oscal(results, lang)


def _pdf(results: RunResults, lang: Lang) -> bytes:
    from reports.pdf import render_pdf
    return render_pdf(results, lang)


RENDERERS: dict[str, Renderer] = {
    renderer.name: renderer for renderer in (
        Renderer("json", "results.json", _json),
        Renderer("html", "report.html", _html),
        Renderer("sarif", "results.sarif", _sarif),
        Renderer("junit", "junit.xml", _junit),
        Renderer("csv", "results.csv", _csv),
        Renderer("pdf", "report.pdf", _pdf),
        Renderer("oscal", "results.oscal.json", _oscal),
    )
}

DEFAULT_FORMATS = ("json", "html")
