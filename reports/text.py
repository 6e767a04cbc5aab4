"""Untrusted text made safe to show: control characters removed, length capped.

Everything a target sends back (banners, headers, file names, error messages) reaches the
reports through results.json, which a user may also have edited by hand; so every renderer
passes every string through `clean` whatever the engine already bounded.
"""

from __future__ import annotations

import json
import re
from typing import Any

from audit.model.results import Result

# Long enough for a certificate chain or a config excerpt, short enough for a report.
MAX_CELL = 4000

# C0 controls except tab and newline, DEL, C1 controls, and the bidirectional overrides
# that make text read differently from how it is stored ("trojan source").
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffe\uffff]")
_SURROGATES = re.compile("[\ud800-\udfff]")


def clean(value: str, limit: int = MAX_CELL) -> str:
    """`value` without unsafe characters, cut to `limit` characters with a visible marker."""
    # Cut first: a 10 MB banner is never scanned whole. Replacement keeps lengths, so the
    # count of characters cut stays exact.
    kept = _SURROGATES.sub("\ufffd", _UNSAFE.sub("\ufffd", value[:limit]))
    if len(value) <= limit:
        return kept
    return f"{kept}… [{len(value) - limit} more characters cut]"


def _cut_strings(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return clean(value, limit)
    if isinstance(value, dict):
        return {clean(str(key), limit): _cut_strings(item, limit) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_cut_strings(item, limit) for item in value]
    return value


def as_text(value: Any, limit: int = MAX_CELL) -> str:
    """Evidence of any JSON shape as one cleaned string ("" for None)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return clean(value, limit)
    text = json.dumps(_cut_strings(value, limit), indent=2, ensure_ascii=False, sort_keys=True,
                      default=str)
    return clean(text, limit)


def attestation_note(result: Result) -> str:
    """One line saying an attestation decided the result, or had expired for it; "" if none."""
    attested = result.attestation
    if attested is None:
        return ""
    evidence = f"; evidence {attested.evidence.file} (SHA-256 {attested.evidence.sha256})" \
        if attested.evidence else ""
    if attested.expired:
        return clean(f"attestation by {attested.attested_by} of {attested.date.isoformat()} "
                     f"expired on {attested.valid_until.isoformat()}{evidence}")
    return clean(f"attested {attested.status.value} by {attested.attested_by} on "
                 f"{attested.date.isoformat()}, valid until "
                 f"{attested.valid_until.isoformat()}{evidence}")
