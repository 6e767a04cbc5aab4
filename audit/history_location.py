"""Where the history store is, and how to name it in a message without its secrets."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

HISTORY_ENV = "MIS_AUDIT_HISTORY"
DISABLED = "off"
_REASON_LIMIT = 300
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A password given as a URI query parameter (libpq takes `password` and `sslpassword`).
_PASSWORD_PARAMETER = re.compile(r"(?i)([?&][^=&#]*password=)([^&#]*)")


class HistoryUnavailable(Exception):
    """The store cannot be opened, read or written.

    `location` is redacted and `reason` is one line scrubbed of the location's secrets, so
    both (and the message) are fit to print and to keep in results.json.
    """

    def __init__(self, location: str, reason: str) -> None:
        # A path may hold a newline: replaced, not cut, so the location stays recognisable.
        self.location = _CONTROL_CHARACTERS.sub("\ufffd", redact(location))
        self.reason = first_line(scrub(reason, location), _REASON_LIMIT)
        super().__init__(f"history store {self.location}: {self.reason}")


def default_location() -> str:
    """The store named by the environment, else a per-user SQLite file."""
    configured = os.environ.get(HISTORY_ENV)
    if configured:
        return configured
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(data_home) / "mis-audit" / "history.sqlite")


def is_database_url(location: str) -> bool:
    """Whether `location` names a PostgreSQL database rather than a file."""
    return location.startswith(("postgresql://", "postgres://"))


def redact(location: str) -> str:
    """The location fit to print: a URL's passwords (user info, query) replaced by ***; a
    path as it is. (A task queue's broker URL is redacted the same way.)

    Parsed by hand, not by urlsplit: a malformed URL (an unclosed "[", a "/" in the password)
    must still come out redacted, never raise.
    """
    if "://" not in location:
        return location
    scheme, rest = location.split("://", 1)
    credentials, at, host = rest.rpartition("@")
    if at and ":" in credentials:
        rest = f"{credentials.split(':', 1)[0]}:***@{host}"
    return f"{scheme}://" + _PASSWORD_PARAMETER.sub(r"\1***", rest)


def _secrets(location: str) -> list[str]:
    """The passwords in a database URL, as written and percent-decoded."""
    if "://" not in location:
        return []
    rest = location.split("://", 1)[1]
    credentials, at, _ = rest.rpartition("@")
    found = [credentials.split(":", 1)[1]] if at and ":" in credentials else []
    found += [match.group(2) for match in _PASSWORD_PARAMETER.finditer(rest)]
    return [secret for raw in found for secret in {raw, unquote(raw)} if secret]


def scrub(reason: str, location: str) -> str:
    """`reason` without the location's secrets."""
    # libpq quotes what it could not parse, and that may be the whole URL or the password.
    reason = reason.replace(location, redact(location))
    for secret in sorted(_secrets(location), key=len, reverse=True):
        reason = reason.replace(secret, "***")
    return reason


def first_line(text: str, limit: int) -> str:
    """The first non-blank line of `text` (libpq adds hints below it), control characters
    replaced, cut to `limit`."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "unknown error")
    line = _CONTROL_CHARACTERS.sub("\ufffd", line)
    return line if len(line) <= limit else line[:limit] + "…"
