"""YAML documents that remember where every value came from, so that any error, from the
YAML parser or from pydantic, names the file, the line and the column.
"""

from __future__ import annotations

import codecs
import re
import stat
import unicodedata
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
# What a hostile file may not make the loader do: a real profile nests about 8 deep and holds a
# few thousand values, an inventory of thousands of targets some tens of thousands.
MAX_DEPTH = 64            # collections inside one another, aliases expanded
MAX_NODES = 100_000       # keys and values, each alias counted as all that it stands for
MAX_ALIASES = 1_000

# Bidirectional overrides and isolates make text display in another order than it is parsed
# ("Trojan Source", CVE-2021-42574): a reviewer would approve a file that says something else.
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
# What YAML forbids in a file (PyYAML's own set), and bidi controls.
_FORBIDDEN_IN_TEXT = re.compile(
    r"[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
    r"|[\u202a-\u202e\u2066-\u2069]")
# What an escape can put in a value: controls other than tab and line breaks, lone surrogates,
# non-characters, bidi controls.
_FORBIDDEN_IN_VALUE = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u202a-\u202e\u2066-\u2069]")
_PLAIN_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


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
            path = list(prefix)
            for part in detail["loc"]:
                # a key of the document that looks like a union tag ('[', 'ssh') stays
                if isinstance(part, str | int) and not (
                        _is_union_tag(part) and (*path, part) not in self.locations):
                    path.append(part)
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
        key = part if len(str(part)) <= 60 else f"{str(part)[:57]}..."    # a key of a megabyte
        text += f"[{key}]" if isinstance(part, int) else (f".{key}" if text else str(key))
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


def _shown(value: object) -> str:
    shown = repr(value)
    return shown[:60] + ("..." if len(shown) > 60 else "")


def _character_problem(char: str) -> str:
    """Why `char` is refused, for the user."""
    code = f"U+{ord(char):04X}"
    if _BIDI.fullmatch(char):
        return (f"bidirectional control character {code} ({unicodedata.name(char)}) is not "
                f"allowed: it makes text display in another order than it is read")
    if unicodedata.category(char) == "Cs":
        return f"lone surrogate {code} is not a character and cannot be written out"
    if unicodedata.category(char) == "Cc":
        return f"control character {code} is not allowed"
    return f"character {code} is not allowed in YAML"


def _text_position(text: str, index: int) -> Location:
    """The line and column of text[index], with line breaks counted as PyYAML counts them."""
    line, line_start = 1, 0
    for found in _LINE_BREAK.finditer(text, 0, index):
        line, line_start = line + 1, found.end()
    column = index - line_start + 1
    if line == 1 and text.startswith("\ufeff"):
        column -= 1        # PyYAML does not count a byte order mark as a column
    return line, max(column, 1)


def _byte_position(raw: bytes, offset: int) -> Location:
    """The line and column (in characters) of raw[offset]."""
    line_start = raw.rfind(b"\n", 0, offset) + 1
    column = len(raw[line_start:offset].decode("utf-8", errors="replace")) + 1
    return raw.count(b"\n", 0, offset) + 1, column


def _mark(item: yaml.Node | yaml.Event) -> tuple[int | None, int | None]:
    mark = item.start_mark
    return (mark.line + 1, mark.column + 1) if mark else (None, None)


class _Loader(yaml.SafeLoader):
    """SafeLoader (YAML's own type rules) that refuses, while it composes, what would later
    exhaust the stack, the memory or the clock: collections nested too deep, too many nodes,
    too many aliases, and an alias inside the collection it names. An alias counts as the
    nodes and the depth it stands for, so a "billion laughs" file stops at its first levels.
    """

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self.depth = 0              # collections open around the next node
        self.deepest = 0            # the greatest depth reached, aliases expanded
        self.nodes = 0              # nodes composed so far, aliases expanded
        self.aliases = 0
        self.open_anchors: set[str] = set()
        self.extent: dict[str, tuple[int, int]] = {}   # anchor -> (nodes, levels) it stands for

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        """One node, within the limits; the composer calls this for every node."""
        event: yaml.NodeEvent = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            return self._compose_alias(event, parent, index)
        first, outer_deepest = self.nodes, self.deepest
        opens = 1 if isinstance(event, yaml.CollectionStartEvent) else 0
        self._grow(1, self.depth + opens, event)
        if event.anchor is not None and opens:
            self.open_anchors.add(event.anchor)
        self.depth += opens
        self.deepest = self.depth         # from here: how deep this node reaches
        node = super().compose_node(parent, index)
        self.depth -= opens
        if event.anchor is not None:
            self.open_anchors.discard(event.anchor)
            self.extent[event.anchor] = (self.nodes - first, self.deepest - self.depth)
        self.deepest = max(outer_deepest, self.deepest)
        return node

    def _compose_alias(self, event: yaml.AliasEvent, parent: yaml.Node | None,
                       index: int) -> yaml.Node | None:
        if event.anchor in self.open_anchors:
            raise self._refuse(f"alias *{event.anchor} is inside the collection it names "
                               f"(a structure that contains itself)", event)
        self.aliases += 1
        if self.aliases > MAX_ALIASES:
            raise self._refuse(f"more than {MAX_ALIASES} aliases", event)
        node = super().compose_node(parent, index)      # refuses an undefined alias
        nodes, levels = self.extent.get(event.anchor or "", (1, 0))
        self._grow(nodes, self.depth + levels, event)
        return node

    def _grow(self, nodes: int, depth: int, event: yaml.Event) -> None:
        self.nodes += nodes
        self.deepest = max(self.deepest, depth)
        if depth > MAX_DEPTH:
            raise self._refuse(f"collections nested more than {MAX_DEPTH} deep "
                               f"(aliases expanded)", event)
        if self.nodes > MAX_NODES:
            raise self._refuse(f"more than {MAX_NODES} keys and values (aliases expanded)", event)

    def _refuse(self, message: str, event: yaml.Event) -> InputError:
        return InputError.at(self.file, message, *_mark(event))


def read_input(path: Path | str, file: str) -> bytes:
    """The bytes of an input file; InputError unless it is a regular file of at most
    MAX_DOCUMENT_BYTES."""
    try:
        status = Path(path).stat()
        if stat.S_ISDIR(status.st_mode):
            raise InputError.at(file, "is a directory, expected a YAML file")
        if not stat.S_ISREG(status.st_mode):
            # a FIFO or a device (/dev/zero, a terminal) would block or never end
            raise InputError.at(file, "not a regular file, expected a YAML file")
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise InputError.at(file, "file not found") from None
    except OSError as error:
        raise InputError.at(file, f"cannot read: {error.strerror or error}") from None
    except ValueError:              # a NUL in the path
        raise InputError.at(file, "not a valid file name") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InputError.at(file, f"larger than {MAX_DOCUMENT_BYTES} bytes; reading stopped here",
                            *_byte_position(raw, MAX_DOCUMENT_BYTES))
    return raw


def parse_bytes(raw: bytes, file: str) -> Document:
    """Parse the bytes of a YAML file, which must be UTF-8 text."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise InputError.at(file, "UTF-16 text: save the file as UTF-8", 1, 1) from None
        raise InputError.at(file, f"not UTF-8 text (byte 0x{raw[error.start]:02x})",
                            *_byte_position(raw, error.start)) from None
    return parse_document(text, file)


def load_document(path: Path | str, display_name: str | None = None) -> Document:
    """Parse a YAML file, keeping locations; InputError on any problem."""
    file = display_name or str(path)
    return parse_bytes(read_input(path, file), file)


def parse_document(text: str, file: str) -> Document:
    """Parse YAML text, keeping locations."""
    found = _FORBIDDEN_IN_TEXT.search(text)
    if found:
        raise InputError.at(file, _character_problem(found.group()),
                            *_text_position(text, found.start()))
    loader = _Loader(text, file)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError.at(file, "the file is empty", 1, 1)
        locations: dict[Path_, Location] = {}
        data = _build(loader, node, (), locations, file)
    except yaml.reader.ReaderError as error:     # not a MarkedYAMLError: it has a position
        char = error.character if isinstance(error.character, str) else chr(error.character)
        raise InputError.at(file, f"YAML syntax: {_character_problem(char)}",
                            *_text_position(text, error.position)) from None
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
    if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_COLLECTION_TAGS:
        # Built here, not by the constructor, so its refusal of unknown tags is ours to make.
        raise InputError.at(file, f"tag {node.tag} is not accepted on a collection",
                            *_mark(node))
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(loader, key_node, file, "key") \
                if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str | int) or isinstance(key, bool):
                shown = _shown(key) if isinstance(key_node, yaml.ScalarNode) else "a collection"
                raise InputError.at(file, f"mapping keys must be text, got {shown}",
                                    *_mark(key_node))
            if key in mapping:
                raise InputError.at(file, f"duplicate key {_shown(key)}", *_mark(key_node))
            mapping[key] = _build(loader, value_node, (*path, key), locations, file)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*path, index), locations, file)
                for index, item in enumerate(node.value)]
    return _scalar(loader, node, file)


def _scalar(loader: _Loader, node: yaml.Node, file: str, role: str = "value") -> Any:
    """A scalar's value by YAML's type rules, refused if no input of mis-audit can hold it."""
    try:
        value = loader.construct_object(node, deep=True)
    except ValueError as error:       # e.g. a date like 2026-13-45
        kind = "date" if node.tag.endswith(":timestamp") else "value"
        raise InputError.at(file, f"invalid {kind} {_shown(node.value)}: {error}",
                            *_mark(node)) from None
    except (ArithmeticError, LookupError, TypeError, AttributeError):
        # PyYAML's constructors fail unmarked on values an explicit tag cannot hold:
        # `!!bool maybe`, `!!int ''`, `!!timestamp soon`.
        raise InputError.at(file, f"invalid value {_shown(node.value)} for tag {node.tag}",
                            *_mark(node)) from None
    if isinstance(value, bytes):
        raise InputError.at(file, "binary values (!!binary) are not accepted", *_mark(node))
    if isinstance(value, str):
        # An escape ("\0", "\e", "\ud800", "\u202e") can put in a value what the text may
        # not hold; a lone surrogate would fail only later, when results are written.
        found = _FORBIDDEN_IN_VALUE.search(value)
        if found:
            raise InputError.at(file, f"{_character_problem(found.group())} (in a {role})",
                                *_mark(node))
    return value
