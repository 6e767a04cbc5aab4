"""Hostile text from targets never reaches a report unescaped, uncut or as a formula."""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser
from xml.etree import ElementTree

import pytest
from test_report_samples import hostile_results
from test_sarif import VALIDATOR as SARIF_VALIDATOR

from audit.vocabulary import Lang
from reports import RENDERERS

END = "END-OF-THE-10-MB-BANNER"
BANNER = "B" * 10_000_000 + END
CORPUS = {
    "script": "<script>alert(1)</script>",
    "attribute": "\"><img src=x onerror=alert(1)> ' onmouseover='alert(2)",
    "javascript_url": "javascript:alert(document.cookie)",
    "markup_close": "</pre></td></tr></table></section><script>x()</script>",
    "xml": "]]></failure><testcase name='x'/><![CDATA[",
    "control": "ok\x00\x01\x07\x08\x0b\x0c\x1b[31mred\x7f\x85\u202egnp.exe",
    "formula": "=HYPERLINK(\"http://evil.invalid\",\"x\")",
    "formula_plus": "+cmd|' /C calc'!A0",
    "formula_minus": "-2+3",
    "formula_at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "formula_tab": "\t=1+1",
    "formula_cr": "\r=1+1",
    "banner": BANNER,
}
UNSAFE_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "section", "h1", "h2", "h3", "colgroup", "col", "details", "summary",
                "h4", "p", "table", "thead", "tr", "th", "td", "code", "pre", "span", "strong", "ul", "li",
                "a", "br", "wbr", "div", "footer", "em", "small", "dl", "dt", "dd", "nav", "ol",
                # the inline SVG charts: shapes and text, no script, no link, no image
                "svg", "defs", "pattern", "rect", "path", "text", "line", "polyline", "circle"}
SVG_ATTRIBUTES = {"xmlns", "aria-hidden", "viewbox", "width", "height", "patternunits", "x",
                  "y", "fill", "stroke", "stroke-width", "stroke-dasharray", "opacity", "d",
                  "font-size", "text-anchor", "transform", "x1", "x2", "y1", "y2", "points",
                  "cx", "cy", "r"}
# Bound on any output: the renderers cut every field, so 13 fields of 10 MB shrink to this.
MAX_OUTPUT = 3_000_000


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.extend(attrs)


def _render(name: str, payload: str) -> str:
    return RENDERERS[name].render(hostile_results(payload), Lang.EN)


def _common(output: str) -> None:
    assert END not in output, "a 10 MB banner reached the output whole"
    assert len(output) < MAX_OUTPUT


@pytest.mark.parametrize("payload", CORPUS.values(), ids=CORPUS.keys())
def test_html_keeps_hostile_text_inert(payload: str) -> None:
    output = _render("html", payload)
    _common(output)
    assert not UNSAFE_CHARACTERS.search(output)
    assert "<script" not in output.lower()
    collector = _TagCollector()
    collector.feed(output)
    assert collector.tags <= ALLOWED_TAGS
    for name, value in collector.attributes:
        assert not name.startswith("on"), (name, value)
        if name == "href":
            assert value is not None and value.startswith("#")
        assert name in {"lang", "charset", "name", "content", "class", "id", "href", "style",
                        *SVG_ATTRIBUTES}
        if name == "fill":
            assert value is not None and re.fullmatch(r"#[0-9a-f]{3,6}|none|url\(#[a-z_-]+\)",
                                                      value), value
    if payload == CORPUS["script"]:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in output   # shown, as text


@pytest.mark.parametrize("payload", CORPUS.values(), ids=CORPUS.keys())
def test_sarif_keeps_hostile_text_inert(payload: str) -> None:
    output = _render("sarif", payload)
    _common(output)
    log = json.loads(output)
    SARIF_VALIDATOR.validate(log)

    def strings(value: object) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            return [s for k, v in value.items() for s in strings(k) + strings(v)]
        if isinstance(value, list):
            return [s for item in value for s in strings(item)]
        return []

    assert not any(UNSAFE_CHARACTERS.search(text) for text in strings(log))


@pytest.mark.parametrize("payload", CORPUS.values(), ids=CORPUS.keys())
def test_junit_keeps_hostile_text_inert(payload: str) -> None:
    output = _render("junit", payload)
    _common(output)
    root = ElementTree.fromstring(output)    # control characters would make this fail
    tags = {element.tag for element in root.iter()}
    assert tags <= {"testsuites", "testsuite", "properties", "property", "testcase", "failure",
                    "error", "skipped", "system-out"}


@pytest.mark.parametrize("payload", CORPUS.values(), ids=CORPUS.keys())
def test_csv_keeps_hostile_text_inert(payload: str) -> None:
    output = _render("csv", payload)
    _common(output)
    rows = list(csv.reader(io.StringIO(output.removeprefix("\ufeff"), newline="")))
    assert len(rows) == 1 + len(hostile_results("x").results)
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell[:80]
            assert not UNSAFE_CHARACTERS.search(cell)
