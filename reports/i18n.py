"""The reports' fixed text in English, Russian and Kazakh, from packaged YAML files."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

import yaml

from audit.messages import Message, render
from audit.model.results import Result
from audit.vocabulary import Lang

# Translations of the checks' and probes' messages, keyed by the English template; one file
# per area (reports/i18n/messages/LANG/AREA.yaml).
MESSAGES = "messages"


@cache
def catalogue(lang: Lang) -> dict[str, str]:
    """Every fixed text of the reports in `lang`, by key."""
    source = files("reports").joinpath("i18n", f"{lang.value}.yaml").read_text(encoding="utf-8")
    loaded = yaml.safe_load(source)
    if not isinstance(loaded, dict):
        raise TypeError(f"reports/i18n/{lang.value}.yaml is not a mapping")
    return {str(key): str(value) for key, value in loaded.items()}


def translator(lang: Lang) -> Translator:
    """A function from a key (and format arguments) to the text in `lang`."""
    return Translator(catalogue(lang))


class Translator:
    """Looks a key up; an unknown key is a bug, so it raises rather than showing the key."""

    def __init__(self, texts: dict[str, str]) -> None:
        self._texts = texts

    def __call__(self, key: str, **arguments: Any) -> str:
        text = self._texts[key]
        return text.format(**arguments) if arguments else text


@cache
def message_catalogue(lang: Lang) -> dict[str, str]:
    """Every message translation into `lang`, by English template (empty for English)."""
    directory = files("reports").joinpath("i18n", MESSAGES, lang.value)
    merged: dict[str, str] = {}
    if not directory.is_dir():
        return merged
    for entry in sorted(directory.iterdir(), key=lambda item: item.name):
        if entry.name.endswith(".yaml"):
            loaded = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
            if not isinstance(loaded, dict):
                raise TypeError(f"reports/i18n/{MESSAGES}/{lang.value}/{entry.name} is not a "
                                "mapping")
            merged.update({str(key): str(value) for key, value in loaded.items()})
    return merged


def said(message: Message | None, english: str, lang: Lang) -> str:
    """A message in `lang`; the English text when there is no message."""
    return render(message, message_catalogue(lang), lang.value) if message else english


def summary_of(result: Result, lang: Lang) -> str:
    """A result's summary in `lang`."""
    return said(result.message, result.summary, lang)
