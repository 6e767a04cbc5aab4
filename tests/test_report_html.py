"""The assessor's HTML report: every part, in every language, self-contained and printable."""

from __future__ import annotations

import re
from importlib.resources import files
from xml.etree import ElementTree

import pytest
import yaml
from test_report_samples import hostile_results, sample_results

from audit.model.profile import ReferenceKind
from audit.vocabulary import Lang, Role, Severity, Status, Verdict
from reports.charts import area_grid, grid_chart
from reports.html import render_html
from reports.i18n import catalogue, translator


def _keys(lang: Lang) -> set[str]:
    source = files("reports").joinpath("i18n", f"{lang.value}.yaml").read_text(encoding="utf-8")
    return set(yaml.safe_load(source))


def test_every_key_exists_in_every_language() -> None:
    english = _keys(Lang.EN)
    for lang in Lang:
        assert _keys(lang) == english, lang
        assert all(text.strip() for text in catalogue(lang).values()), lang


def test_every_vocabulary_member_has_a_text() -> None:
    for lang in Lang:
        t = translator(lang)
        for status in Status:
            assert t(f"status.{status.value}")
        for severity in Severity:
            assert t(f"severity.{severity.value}")
        for role in Role:
            assert t(f"role.{role.value}")
        for kind in ReferenceKind:
            assert t(f"ref.{kind.value}")
        for verdict in Verdict:
            assert t(f"verdict.{verdict.value}")


def test_format_placeholders_agree_across_languages() -> None:
    placeholders = re.compile(r"\{(\w+)\}")
    english = catalogue(Lang.EN)
    for lang in Lang:
        for key, text in catalogue(lang).items():
            assert set(placeholders.findall(text)) == set(placeholders.findall(english[key])), \
                (lang, key)


@pytest.mark.parametrize("lang", list(Lang))
def test_report_has_every_part_in_every_language(lang: Lang) -> None:
    html = render_html(sample_results(), lang)
    t = translator(lang)
    for key in ("report.title", "cover.organisation", "cover.profile", "signoff.title",
                "signoff.assessor", "signoff.licence", "signoff.signature", "summary.title",
                "summary.blockers", "summary.controls", "scope.title", "scope.unreachable",
                "scope.checks_run", "controls.title", "unverified.title", "waivers.title",
                "waivers.expired", "ref.law", "ref.proposal", "ref.verify", "ref.external",
                "run.complete"):
        assert t(key).replace("'", "&#39;") in html, (lang, key)
    assert "ab" * 32 in html                          # the profile's SHA-256 on the cover
    assert "kz-mis-baseline" in html and "2026.1" in html
    assert html.startswith("<!DOCTYPE html>") and f'<html lang="{lang.value}">' in html


def test_control_texts_come_from_the_profile_in_the_report_language() -> None:
    russian = render_html(sample_results(), Lang.RU)
    assert "База данных недоступна извне" in russian
    assert "Почему NET-01 важно." in russian
    assert "How to fix NET-01." in russian          # no Russian remediation: English fallback
    kazakh = render_html(sample_results(), Lang.KK)
    assert "Дерекқорға сырттан қол жетпейді" in kazakh


def test_only_law_is_called_a_legal_requirement() -> None:
    html = render_html(sample_results(), Lang.EN)
    assert html.count("Legal requirement") == 1        # NET-01 cites one law
    assert "Recommended practice</span>: Proposed 2FA requirement" in html
    assert "Reference not confirmed</span>: Health Code Art. 95" in html
    assert "External reference</span>: HIPAA" in html


def test_findings_show_evidence_waivers_and_what_was_not_verified() -> None:
    html = render_html(sample_results(), Lang.EN)
    assert "<dt>open_ports</dt><dd>5432</dd>" in html                  # observed ports
    assert "/etc/postgresql/15/main/pg_hba.conf" in html             # files
    assert "9001******12" in html                                    # masked sample
    assert "Legacy link until migration" in html and "Chief physician" in html
    assert "2027-01-31" in html
    assert 'class="flag">EXPIRED: ignored' in html                   # expired waiver flagged
    unverified = html[html.index('id="unverified"'):]
    assert "db-main did not answer on port 22" in unverified
    assert "no automated check" in unverified
    scope = html[html.index('id="scope"'):html.index('id="controls"')]
    assert "unreachable: connect to 10.20.0.20:22" in scope and "timeout: 30 s passed" in scope
    assert "ops-ssh" in scope                                       # credential by reference


def test_blockers_are_worded_in_the_report_language() -> None:
    russian = render_html(sample_results(), Lang.RU)
    assert ('<a href="#control-AUTH-01">Критическое требование AUTH-01 (Remote administration '
            'needs a second factor): не соответствует</a>') in russian
    assert "Оценка 41.2 ниже порогового значения 80" in russian
    assert "critical control AUTH-01 is fail" not in russian


def test_interrupted_run_says_so_on_the_cover() -> None:
    html = render_html(sample_results().model_copy(update={"complete": False}), Lang.EN)
    cover = html[:html.index('id="summary"')]
    assert "INTERRUPTED: the results are partial" in cover


def test_history_shows_what_changed_and_the_trend() -> None:
    html = render_html(hostile_results("plain text"), Lang.EN)
    assert "Since the previous run" in html and "Previous run #1" in html
    for heading in ("Regressions (1)", "Newly judged, not passing (1)", "Fixed (1)", "Trend"):
        assert heading in html
    assert "No earlier run" in render_html(sample_results().model_copy(update={
        "history": hostile_results("x").history.model_copy(update={"previous": None})}), Lang.EN)


def test_report_is_self_contained_and_deterministic() -> None:
    html = render_html(sample_results(), Lang.KK)
    assert "<script" not in html and "<link" not in html and "<img" not in html
    assert not re.search(r"(src|href)=\"(?!#)", html)
    # the charts' patterns are referenced inside the page only
    assert not re.search(r"url\((?!#)", html) and "@import" not in html
    assert render_html(sample_results(), Lang.KK) == html


def test_charts_are_inline_svg_with_their_numbers_in_tables() -> None:
    html = render_html(sample_results(), Lang.EN)
    charts = re.findall(r"<svg .*?</svg>", html, flags=re.DOTALL)
    assert len(charts) == 2 + bool(sample_results().history)
    for chart in charts:
        ElementTree.fromstring(chart)             # well-formed, no external reference
        assert 'aria-hidden="true"' in chart
    # the grid's numbers are in a table for screen readers: worst status per target and area
    grid = area_grid(sample_results())
    assert grid.areas == list(dict.fromkeys(c.id.split(".")[0]
                                            for c in sample_results().controls))
    cells = dict(grid.rows)
    assert cells["web-front"]["AUTH-02"] is Status.ERROR
    assert '<div class="sr-only"><table>' in html


def test_a_hostile_target_name_is_cut_and_escaped_in_the_charts() -> None:
    chart = str(grid_chart(area_grid(hostile_results("<script>" * 1000)), translator(Lang.EN)))
    assert "<script>" not in chart and "&lt;script&gt;" in chart and len(chart) < 20_000


def test_ids_wrap_only_after_their_dots_and_underscores() -> None:
    """In the register and the result tables a narrow column breaks an id into whole words
    (`authz.` / `admin_` / `levels`); `<wbr>` adds no character, so the id still reads and
    copies as one string."""
    html = render_html(sample_results(), Lang.EN)
    ids = re.findall(r'<span class="id">(.*?)</span>', html)
    assert ids and all("<wbr>" in found for found in ids if "." in found)
    assert {found.replace("<wbr>", "") for found in ids} >= {
        result.check for result in sample_results().results if result.status is Status.FAIL}
