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
from audit.messages import Text, english, says
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
    # The same, as a message a report can translate (None: only the English is known).
    text_unavailable_message: Text | None = None

    @property
    def age_days(self) -> int | None:
        """Days since the document's date."""
        return (self.today - self.dated).days if self.dated else None


@dataclass(frozen=True)
class DocumentText:
    """The extracted text of a document, or why there is none."""

    text: str | None
    unavailable: Text | None = None


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
        raise FactUnavailable(Reason.PERMISSION_DENIED, says(
            "cannot read evidence document {file}", file=entry.file)) from None
    dated, source = entry.date, "inventory"
    if dated is None:
        dated = datetime.fromtimestamp(mtime, tz=UTC).date()
        source = "file modification time"
    content = document_text(path, size)
    why = content.unavailable
    return EvidenceFacts(params.document, entry.file, True, dated, source, digest, size,
                         entry.issued_by, environment.today, content.text,
                         None if why is None else english(why), why)


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
        return DocumentText(None, says("larger than {size} MiB, not read",
                                       size=MAX_PARSE_BYTES // (1024 * 1024)))
    readers = {".pdf": _pdf_text, ".docx": _docx_text}
    reader = readers.get(suffix, _plain_text if suffix in TEXT_SUFFIXES else None)
    if reader is None:
        return DocumentText(None, says(
            "cannot read text from {suffix} files (PDF, DOCX, TXT and MD are read)",
            suffix=suffix) if suffix else says(
            "cannot read text from this files (PDF, DOCX, TXT and MD are read)"))
    try:
        raw = reader(path)
    except documents.DocumentUnreadable as unreadable:
        if unreadable.reason is documents.Unreadable.MALFORMED:
            return DocumentText(None, says("{format} could not be parsed ({error})",
                                           format=suffix[1:].upper(),
                                           error=str(unreadable.parser_error)))
        return DocumentText(None, unreadable.text)
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
