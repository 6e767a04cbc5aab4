"""Evidence documents named by the inventory: existence, date, size and SHA-256."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Protocol

from audit.facts.context import TargetContext

HASH_CHUNK = 1024 * 1024


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

    @property
    def age_days(self) -> int | None:
        """Days since the document's date."""
        return (self.today - self.dated).days if self.dated else None


def evidence_document(context: TargetContext, params: NamesADocument) -> EvidenceFacts:
    """Find, date and hash the document the inventory names under `params.document`."""
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
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    dated, source = entry.date, "inventory"
    if dated is None:
        dated = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc).date()
        source = "file modification time"
    return EvidenceFacts(params.document, entry.file, True, dated, source, digest.hexdigest(),
                         path.stat().st_size, entry.issued_by, environment.today)
