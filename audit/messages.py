"""Messages a report can say in its own language: an English template with named fields and
the values to put in them, kept in results.json beside the English text.

The English template is the key of the translation catalogues (`reports/i18n/messages/`),
as a gettext msgid is: checks and probes stay readable, and a message without a translation
falls back to its English text. Values from a target go in as parameters and are never
translated; a parameter that is itself a phrase is a nested message.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field

# A value, a nested message, or a text the profile gives in each language ({"en": ..., "ru": ...}).
Param = Union[str, int, float, "Message", dict[str, str]]


class Message(BaseModel):
    """A template and its parameters; `str()` is the English text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template: str = Field(description="The English text with {named} fields: the key of the "
                          "translation catalogues.")
    params: dict[str, Param] = Field(default_factory=dict)

    def __str__(self) -> str:
        return render(self, {}, "en")

    def given(self, **params: Param) -> Message:
        """This template with (more) values: a template chosen ahead, filled where used."""
        return Message(template=self.template, params={**self.params, **params})


Text = str | Message


def says(template: str, **params: Param) -> Message:
    """A message: `template` must be a literal string (the catalogues are checked against the
    literals in the code), its fields named by `params`."""
    return Message(template=template, params=params)


def listed(parts: Sequence[Text], separator: Literal["; ", ", "] = "; ") -> Text:
    """`parts` one after another with `separator` between them, each said in the report's
    language (nested in halves, so that a long list stays shallow); "" for no parts."""
    if len(parts) <= 1:
        return parts[0] if parts else ""
    first = listed(parts[:len(parts) // 2], separator)
    rest = listed(parts[len(parts) // 2:], separator)
    if separator == ", ":
        return says("{first}, {rest}", first=first, rest=rest)
    return says("{first}; {rest}", first=first, rest=rest)


def fields(template: str) -> set[str]:
    """The field names a template uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _value(value: Param, catalogue: dict[str, str], lang: str) -> str:
    if isinstance(value, Message):
        return render(value, catalogue, lang)
    if isinstance(value, dict):
        return value.get(lang) or value.get("en") or next(iter(value.values()), "")
    return str(value)


def render(message: Message, catalogue: dict[str, str], lang: str) -> str:
    """The message in `lang` through its catalogue (English where it has no entry); nested
    messages and texts given in each language too, other parameters as they are."""
    template = catalogue.get(message.template, message.template)
    values = {name: _value(value, catalogue, lang) for name, value in message.params.items()}
    try:
        return template.format_map(values)
    except (KeyError, ValueError, IndexError):
        return message.template.format_map(_Lenient(values))


class _Lenient(dict[str, str]):
    """A missing field shows as itself rather than raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def english(text: Text) -> str:
    """The English text of a message or a plain string."""
    return str(text)


def message_of(text: Text) -> Message | None:
    """The message behind `text`, None for a plain string."""
    return text if isinstance(text, Message) else None
