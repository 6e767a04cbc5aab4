"""Evidence documents named by the inventory: existence, date, size, SHA-256 and text.

The text of PDF, DOCX and plain-text documents is read (by `audit.facts.documents`, the
reader the personal-data scanner uses too) so that a check can confirm the sections a control
expects (an incident response plan that mentions isolation). Documents are untrusted input:
parsing is bounded in size, pages and characters, and a document that cannot be parsed
yields no text and a reason, never an exception.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Protocol

from audit.errors import FactUnavailable
from audit.facts import documents
from audit.facts.context import TargetContext
from audit.vocabulary import Reason

HASH_CHUNK = 1024 * 1024
MAX_PARSE_BYTES = 64 * 1024 * 1024           # larger documents are hashed, not parsed
MAX_UNPACKED_BYTES = 256 * 1024 * 1024       # a DOCX is a zip: refuse zip bombs
MAX_PDF_PAGES = 500
MAX_TEXT_CHARS = 2_000_000
TEXT_SUFFIXES = (".txt", ".md")
LIMITS = documents.DocumentLimits(max_pages=MAX_PDF_PAGES, max_chars=MAX_TEXT_CHARS,
                                  max_unpacked_bytes=MAX_UNPACKED_BYTES)


class NamesADocument(Protocol):
    """Parameters that name an inventory evidence entry."""

    @property
    def document(self) -> str: ...


@dataclass(frozen=True)
class EvidenceFacts:
    """What is known about one evidence document. `file` is None when it was not named."""

    name: str
    file: str | None
    exists: bool
    dated: date | None
    date_source: str | None          # "inventory" or "file modification time"
    sha256: str | None
    size: int | None
    issued_by: str | None
    today: date
    # The document's text, case-folded with whitespace collapsed; None when unreadable.
    text: str | None = None
    text_unavailable: str | None = None   # why there is no text

    @property
    def age_days(self) -> int | None:
        """Days since the document's date."""
        return (self.today - self.dated).days if self.dated else None


@dataclass(frozen=True)
class DocumentText:
    """The extracted text of a document, or why there is none."""

    text: str | None
    unavailable: str | None = None


def evidence_document(context: TargetContext, params: NamesADocument) -> EvidenceFacts:
    """Find, date, hash and read the document the inventory names under `params.document`."""
    environment = context.environment
    entry = environment.evidence.get(params.document)
    if entry is None:
        return EvidenceFacts(params.document, None, False, None, None, None, None, None,
                             environment.today)
    path = environment.resolve(entry.file)
    if not path.is_file():
        return EvidenceFacts(params.document, entry.file, False, entry.date,
                             "inventory" if entry.date else None, None, None, entry.issued_by,
                             environment.today)
    try:
        digest, size = _sha256_and_size(path)
        mtime = path.stat().st_mtime
    except PermissionError:
        raise FactUnavailable(Reason.PERMISSION_DENIED,
                              f"cannot read evidence document {entry.file}") from None
    dated, source = entry.date, "inventory"
    if dated is None:
        dated = datetime.fromtimestamp(mtime, tz=UTC).date()
        source = "file modification time"
    content = document_text(path, size)
    return EvidenceFacts(params.document, entry.file, True, dated, source, digest, size,
                         entry.issued_by, environment.today, content.text, content.unavailable)


def _sha256_and_size(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def document_text(path: Path, size: int) -> DocumentText:
    """The normalised text of a PDF, DOCX or plain-text file, bounded."""
    suffix = path.suffix.lower()
    if size > MAX_PARSE_BYTES:
        return DocumentText(None, f"larger than {MAX_PARSE_BYTES // (1024 * 1024)} MiB, "
                                  f"not read")
    readers = {".pdf": _pdf_text, ".docx": _docx_text}
    reader = readers.get(suffix, _plain_text if suffix in TEXT_SUFFIXES else None)
    if reader is None:
        return DocumentText(None, f"cannot read text from {suffix or 'this'} files "
                                  f"(PDF, DOCX, TXT and MD are read)")
    try:
        raw = reader(path)
    except documents.DocumentUnreadable as unreadable:
        if unreadable.reason is documents.Unreadable.MALFORMED:
            return DocumentText(None, f"{suffix[1:].upper()} could not be parsed "
                                      f"({unreadable.parser_error})")
        return DocumentText(None, str(unreadable))
    return DocumentText(normalise_text(raw))


def normalise_text(text: str) -> str:
    """Case-folded, whitespace collapsed, capped: what section terms are matched against."""
    return re.sub(r"\s+", " ", text[:MAX_TEXT_CHARS]).casefold().strip()


def _pdf_text(path: Path) -> str:
    return "\n".join(documents.pdf_pages(path, LIMITS))


def _docx_text(path: Path) -> str:
    return "\n".join(documents.docx_paragraphs(path, LIMITS))


def _plain_text(path: Path) -> str:
    return b"".join(documents.text_chunks(path, LIMITS)).decode("utf-8", errors="replace")
