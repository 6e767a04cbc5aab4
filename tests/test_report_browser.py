"""The HTML report in a real browser (headless Chromium): no console errors, a screenshot, A4 PDF."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader
from test_report_samples import sample_results

from audit.model.results import RunResults
from audit.vocabulary import Lang
from reports.html import render_html
from tests.servers.base import require_binary

CONSOLE_PROBLEM = re.compile(r"CONSOLE|Uncaught", re.IGNORECASE)
A4_POINTS = (595.28, 841.89)


def _chromium(page: Path, work: Path, *action: str) -> subprocess.CompletedProcess[str]:
    binary = require_binary("chromium")
    argv = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={work / 'profile'}", "--enable-logging=stderr",
            "--v=0", *action, page.as_uri()]
    # No proxy and no network: the page is a local file and must need nothing else.
    environment = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False,
                          env=environment, cwd=work)


def _console_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if CONSOLE_PROBLEM.search(line)]


def test_console_detection_sees_a_script_error(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>")
    assert _console_lines(_chromium(page, tmp_path, "--dump-dom"))


def test_report_renders_without_console_errors_and_prints_to_a4(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(sample_results(), Lang.RU), encoding="utf-8")

    dom = _chromium(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console_lines(dom) == []
    assert "Оценка защищённости информации" in dom.stdout

    screenshot = tmp_path / "report.png"
    shot = _chromium(page, tmp_path, f"--screenshot={screenshot}", "--window-size=1280,2400")
    assert shot.returncode == 0 and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    pdf = tmp_path / "report.pdf"
    printed = _chromium(page, tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert printed.returncode == 0, printed.stderr[-2000:]
    reader = PdfReader(pdf)
    assert len(reader.pages) >= 3                    # cover, summary and scope, controls
    for pdf_page in reader.pages:
        width, height = float(pdf_page.mediabox.width), float(pdf_page.mediabox.height)
        assert (width, height) == pytest.approx(A4_POINTS, abs=2)
    assert "Подпись оценщика" in reader.pages[0].extract_text()   # sign-off on the cover


def many_areas(results: RunResults, areas: int = 24) -> RunResults:
    """The sample run with its controls and results repeated over as many areas (the part of
    a control id before the dot) as a large profile has."""
    def moved(area: int, control: str) -> str:
        return f"area{area}.{control}"
    return results.model_copy(update={
        "controls": [c.model_copy(update={"id": moved(n, c.id)})
                     for n in range(areas) for c in results.controls],
        "results": [r.model_copy(update={"control": moved(n, r.control)})
                    for n in range(areas) for r in results.results]})


def test_the_report_is_no_wider_than_a_laptop_window(tmp_path: Path) -> None:
    """No horizontal scrollbar at 1280 px, however many areas the grid's hidden table has."""
    page = tmp_path / "report.html"
    measure = ("<script>addEventListener('load', () => { document.title = 'width ' + "
               "document.documentElement.scrollWidth + ' ' + "
               "document.documentElement.clientWidth; });</script>")
    page.write_text(render_html(many_areas(sample_results())).replace(
        "</body>", measure + "</body>"), encoding="utf-8")
    dom = _chromium(page, tmp_path, "--dump-dom", "--window-size=1280,900")
    [(scrolled, window)] = re.findall(r"<title>width (\d+) (\d+)</title>", dom.stdout)
    assert int(scrolled) <= int(window), (scrolled, window)
