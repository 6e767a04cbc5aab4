"""YAML documents that remember where every value came from, so that any error, from the
YAML parser or from pydantic, names the file, the line and the column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from audit.errors import InputError, Problem

Location = tuple[int, int]          # 1-based line and column
Path_ = tuple[str | int, ...]       # keys and indexes from the document root
M = TypeVar("M", bound=BaseModel)

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Document:
    """A parsed YAML file: plain data plus the location of every node."""

    file: str
    data: Any
    locations: dict[Path_, Location]

    def locate(self, path: Sequence[str | int]) -> Location | None:
        """The location of the deepest node of `path` that exists in the document."""
        for end in range(len(path), -1, -1):
            found = self.locations.get(tuple(path[:end]))
            if found:
                return found
        return None

    def problem(self, path: Sequence[str | int], message: str) -> Problem:
        """A problem located at `path`."""
        location = self.locate(path)
        line, column = location if location else (None, None)
        return Problem(self.file, line, column, message)

    def validate(self, model: type[M]) -> M:
        """The document as `model`, or an InputError naming every problem and its line."""
        try:
            return model.model_validate(self.data)
        except ValidationError as error:
            raise InputError(self.problems_from(error)) from None

    def validate_adapter(self, adapter: TypeAdapter[Any]) -> Any:
        """Like `validate`, for a non-model type."""
        try:
            return adapter.validate_python(self.data)
        except ValidationError as error:
            raise InputError(self.problems_from(error)) from None

    def problems_from(self, error: ValidationError, prefix: Sequence[str | int] = ()) -> list[Problem]:
        """pydantic's errors, each placed on its line."""
        problems = []
        for detail in error.errors(include_url=False):
            path = [*prefix, *(part for part in detail["loc"] if isinstance(part, str | int))]
            path = [part for part in path if not _is_union_tag(part)]
            problems.append(self.problem(path, f"{_dotted(path)}: {_describe(detail)}"))
        return problems


def _is_union_tag(part: str | int) -> bool:
    # pydantic inserts the tag of a discriminated union ('ssh', 'basic') or a type name
    # into error locations; they are not keys of the document.
    return isinstance(part, str) and (part in ("ssh", "basic", "token") or "[" in part
                                      or part.startswith(("function-", "constrained-")))


def _dotted(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def _describe(detail: Any) -> str:
    kind = detail["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = str(detail["msg"])
    value = detail.get("input")
    if isinstance(value, str | int | float | bool) and kind not in ("value_error",):
        shown = repr(value)
        message += f" (got {shown[:60]}{'...' if len(shown) > 60 else ''})"
    return message


class _Loader(yaml.SafeLoader):
    """SafeLoader, kept only to construct scalars with YAML's own type rules."""


def load_document(path: Path | str, display_name: str | None = None) -> Document:
    """Parse a YAML file, keeping locations; InputError on any syntax problem."""
    file = display_name or str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError.at(file, "file not found") from None
    except IsADirectoryError:
        raise InputError.at(file, "is a directory, expected a YAML file") from None
    except OSError as error:
        raise InputError.at(file, f"cannot read: {error.strerror}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InputError.at(file, f"larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError.at(file, f"not UTF-8 text (byte {error.start})") from None
    return parse_document(text, file)


def parse_document(text: str, file: str) -> Document:
    """Parse YAML text, keeping locations."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError.at(file, "the file is empty", 1, 1)
        locations: dict[Path_, Location] = {}
        data = _build(loader, node, (), locations, file)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        message = " ".join(part for part in (error.context, error.problem) if part)
        raise InputError([Problem(file, line, column, f"YAML syntax: {message}")]) from None
    except yaml.YAMLError as error:
        raise InputError.at(file, f"YAML syntax: {error}") from None
    finally:
        loader.dispose()
    return Document(file=file, data=data, locations=locations)


def _build(loader: _Loader, node: yaml.Node, path: Path_, locations: dict[Path_, Location],
           file: str) -> Any:
    locations[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int) or isinstance(key, bool):
                raise InputError.at(file, f"mapping keys must be text, got {key!r}",
                                    key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in mapping:
                raise InputError.at(file, f"duplicate key {key!r}",
                                    key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            mapping[key] = _build(loader, value_node, (*path, key), locations, file)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, index), locations, file)
                for index, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as error:       # e.g. a date like 2026-13-45
        kind = "date" if node.tag.endswith(":timestamp") else "value"
        raise InputError.at(file, f"invalid {kind} {node.value!r}: {error}",
                            node.start_mark.line + 1, node.start_mark.column + 1) from None
