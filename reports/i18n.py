"""The reports' fixed text in English, Russian and Kazakh, from packaged YAML files."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

import yaml

from audit.vocabulary import Lang


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
