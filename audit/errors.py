"""The two kinds of trouble mis-audit expects: bad input, and facts it cannot gather."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audit.messages import Text, english
from audit.vocabulary import Reason


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, located as precisely as we can."""

    file: str
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


class InputError(Exception):
    """Invalid profile, inventory, waivers or usage: nothing runs, exit code 2."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems

    @classmethod
    def at(cls, file: str | Path, message: str, line: int | None = None,
           column: int | None = None) -> InputError:
        """An error about one place in one file."""
        return cls([Problem(str(file), line, column, message)])


@dataclass(frozen=True)
class Unavailable:
    """A fact that could not be gathered, as a value: why, and a one-line message.

    This is what caches hold and threads share; code that stops on it raises a fresh
    `FactUnavailable` from it (`error()`), never an exception object made elsewhere.
    """

    reason: Reason
    text: Text          # a plain string or a message a report can translate

    @property
    def message(self) -> str:
        """The English text."""
        return english(self.text)

    def error(self) -> FactUnavailable:
        """A new exception carrying this value, for the caller's own stack."""
        return FactUnavailable(self.reason, self.text)


class FactUnavailable(Exception):
    """A probe could not gather a fact; the engine records the reason as an `error` result."""

    def __init__(self, reason: Reason, message: Text) -> None:
        super().__init__(english(message))
        self.reason = reason
        self.text = message
        self.message = english(message)

    @property
    def unavailable(self) -> Unavailable:
        """The value behind the exception, to keep or hand to another thread."""
        return Unavailable(self.reason, self.text)
