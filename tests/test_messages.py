"""Messages in every language: each check summary and probe message is a template (`says`),
each template has a Russian and a Kazakh translation with the same fields, and a report in
ru/kk says the results in its language, target values untouched."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

import pytest
from runs import offline_host_run

from audit.messages import Message, fields, render, says
from audit.model.results import RunResults
from audit.vocabulary import Lang
from reports.html import render_html
from reports.i18n import message_catalogue, summary_of

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*(ROOT / "checks").glob("*.py"), *(ROOT / "audit").rglob("*.py")])
# The calls whose text a report shows: the summary of a finding, the message of a fact that
# could not be gathered.
SUMMARY_CALLS = {"passed": 0, "failed": 0, "manual": 0, "not_applicable": 0,
                 "FactUnavailable": 1, "Unavailable": 1}
TRANSLATED = (Lang.RU, Lang.KK)


def _name(call: ast.Call) -> str:
    function = call.func
    return function.id if isinstance(function, ast.Name) else \
        function.attr if isinstance(function, ast.Attribute) else ""


def _calls(path: Path) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(node, ast.Call)]


def _literal(node: ast.expr) -> str | None:
    """A string literal, or adjacent literals Python joins."""
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def templates_in_code() -> dict[str, str]:
    """Every template given to `says`, with where it is."""
    found: dict[str, str] = {}
    for path in SOURCES:
        for call in _calls(path):
            if _name(call) == "says":
                template = _literal(call.args[0]) if call.args else None
                assert template is not None, f"{path}:{call.lineno}: says() needs a literal"
                found.setdefault(template, f"{path.relative_to(ROOT)}:{call.lineno}")
    return found


def plain_summaries() -> list[str]:
    """Summaries and probe messages written as plain strings, not templates."""
    plain = []
    for path in SOURCES:
        for call in _calls(path):
            position = SUMMARY_CALLS.get(_name(call))
            if position is None or len(call.args) <= position:
                continue
            argument = call.args[position]
            if isinstance(argument, ast.Constant | ast.JoinedStr | ast.BinOp):
                plain.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    return plain


def test_every_summary_and_probe_message_is_a_template() -> None:
    assert plain_summaries() == []


@pytest.mark.parametrize("lang", TRANSLATED, ids=str)
def test_every_template_is_translated_with_the_same_fields(lang: Lang) -> None:
    catalogue = message_catalogue(lang)
    used = templates_in_code()
    missing = [f"{where}: {template!r}" for template, where in used.items()
               if template not in catalogue]
    assert missing == []
    wrong = [template for template in used if fields(catalogue[template]) != fields(template)]
    assert wrong == []
    assert sorted(set(catalogue) - set(used)) == [], "translations nothing uses"


def test_a_message_renders_nested_messages_and_keeps_target_values() -> None:
    inner = says("never")
    message = says("idle SSH sessions end after {limit}", limit=inner)
    catalogue = {"never": "никогда", "idle SSH sessions end after {limit}":
                 "простаивающие сеансы SSH завершаются через {limit}"}
    assert render(message, catalogue, "ru") == "простаивающие сеансы SSH завершаются через никогда"
    assert str(message) == "idle SSH sessions end after never"
    value = says("PermitRootLogin is {value}", value="{yes}")
    assert render(value, {"PermitRootLogin is {value}": "PermitRootLogin = {value}"}, "ru") == \
        "PermitRootLogin = {yes}"
    assert Message.model_validate_json(message.model_dump_json()) == message


def test_a_broken_translation_falls_back_to_english() -> None:
    message = says("{count} files", count=3)
    assert render(message, {"{count} files": "{число} файлов"}, "ru") == "3 files"


@pytest.fixture(scope="module")
def weak_host_run(tmp_path_factory: pytest.TempPathFactory) -> RunResults:
    """The weak host tree audited offline: every host check fails on it."""
    return offline_host_run(tmp_path_factory.mktemp("weak_host_run"))


OUTSIDE_RAW_EVIDENCE = re.compile(r"<details class=\"raw\">.*?</details>", re.DOTALL)


@pytest.mark.parametrize("lang", TRANSLATED, ids=str)
def test_a_report_says_every_result_in_its_language(weak_host_run: RunResults,
                                                    lang: Lang) -> None:
    page = html.unescape(OUTSIDE_RAW_EVIDENCE.sub("", render_html(weak_host_run, lang)))
    for result in weak_host_run.results:
        assert result.message is not None, result.check
        translated = summary_of(result, lang)
        assert translated != result.summary, (result.check, translated)
        assert translated[:60] in page, (result.check, translated)
        assert result.summary not in page, (result.check, result.summary)
