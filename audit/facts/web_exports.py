"""Files a web site hands to anyone: common export and backup paths, and what directory
listings (autoindex) link to. Every download is size-capped; links are followed only within
the site and below the listing that shows them, up to a bounded number. Each download is
handed to the personal-data detector (`audit.facts.pii`); only counts and masked samples of
what it finds are kept.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from posixpath import splitext
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from pydantic import Field

from audit.errors import FactUnavailable
from audit.facts.context import TargetContext
from audit.facts.net import HttpAnswer, HttpClient, http_client, origin_of
from audit.facts.pii import redact_name, scan_bytes
from audit.facts.web import site_roots
from audit.messages import says
from audit.registry import Params
from audit.vocabulary import Reason

DEFAULT_EXPORT_PATHS = [
    "/exports/", "/export/", "/backup/", "/backups/", "/dump/", "/data/", "/files/", "/uploads/",
    "/reports/", "/tmp/", "/backup.sql", "/dump.sql", "/db.sql", "/database.sql",
    "/backup.zip", "/backup.tar.gz", "/export.csv", "/patients.csv", "/patients.xlsx",
]
DATA_EXTENSIONS = [
    ".csv", ".tsv", ".xls", ".xlsx", ".ods", ".sql", ".dump", ".bak", ".zip", ".7z", ".rar",
    ".tar", ".gz", ".tgz", ".json", ".xml", ".mdb", ".accdb", ".dbf", ".db", ".sqlite", ".hl7",
    ".dcm", ".docx", ".doc", ".pdf",
]
DATA_CONTENT_TYPES = frozenset({
    "text/csv", "application/csv", "application/sql", "application/zip",
    "application/x-7z-compressed", "application/gzip", "application/x-tar", "application/vnd.ms-excel", "application/dicom",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.oasis.opendocument.spreadsheet", "application/x-sqlite3",
})
# How directory listings announce themselves: nginx and Apache, IIS, Python's http.server.
LISTING_MARKERS = (b"<title>index of ", b"[to parent directory]", b"<title>directory listing for")
# The share of the check's time the search may take
SEARCH_SHARE = 0.7


@dataclass(frozen=True)
class IdentifierSummary:
    """Personal identifiers in a download: distinct values by kind, masked samples only."""

    counts: dict[str, int]
    national_ids: int
    samples: dict[str, list[str]]


def identifiers_in(name: str, data: bytes) -> IdentifierSummary:
    """What the personal-data detector finds in a download: counts and masked samples only."""
    found = scan_bytes(name, data)
    return IdentifierSummary(counts=dict(found.identifiers), national_ids=found.personal_count(),
                             samples={kind: list(values) for kind, values in found.samples.items()})


class ExportParams(Params):
    """Where to look, what counts as a data file, and the bounds of the search."""

    paths: list[str] = Field(default_factory=lambda: list(DEFAULT_EXPORT_PATHS), max_length=100)
    data_extensions: list[str] = Field(default_factory=lambda: list(DATA_EXTENSIONS))
    max_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_links: int = Field(default=50, ge=0, le=500)


@dataclass(frozen=True)
class Download:
    """A file the site served without authentication (the first `max_bytes` of it), its URL
    with long digit runs masked (a file name can carry an identifier)."""

    url: str
    content_type: str
    size: int
    truncated: bool
    data_file: bool
    identifiers: IdentifierSummary


@dataclass(frozen=True)
class ExportFacts:
    """What the search found: listings, downloads, and how much it asked."""

    listings: list[str] = field(default_factory=list)
    downloads: list[Download] = field(default_factory=list)
    requests: int = 0
    unanswered: int = 0
    complete: bool = True


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(value for name, value in attrs if name == "href" and value)


def is_listing(answer: HttpAnswer) -> bool:
    """Whether a page is a generated directory listing."""
    return answer.content_type == "text/html" and any(
        marker in answer.body[:4096].lower() for marker in LISTING_MARKERS)


def listing_links(listing_url: str, body: bytes) -> list[str]:
    """Links of a listing that stay on the site and below the listed directory."""
    parser = _Links()
    parser.feed(body.decode("utf-8", errors="replace"))
    base = urlsplit(listing_url)
    found = []
    for href in parser.hrefs:
        link = urlsplit(urljoin(listing_url, href))
        if (link.scheme, link.netloc) != (base.scheme, base.netloc) or link.query:
            continue
        if link.path.startswith(base.path) and link.path != base.path and ".." not in link.path:
            found.append(urlunsplit((link.scheme, link.netloc, link.path, "", "")))
    return list(dict.fromkeys(found))


def is_data_file(answer: HttpAnswer, extensions: list[str]) -> bool:
    """Whether a download looks like data: by its extension or its media type."""
    path = unquote(urlsplit(answer.url).path).lower()
    suffix = splitext(path)[1]
    double = splitext(splitext(path)[0])[1] + suffix          # .tar.gz
    wanted = {extension.lower() for extension in extensions}
    return suffix in wanted or double in wanted or answer.content_type in DATA_CONTENT_TYPES


def public_exports(context: TargetContext, params: ExportParams) -> ExportFacts:
    """Ask every site root for the export paths, walk the listings found, keep the files."""
    origins = list(dict.fromkeys(origin_of(base) for base in site_roots(context)))
    queue = deque(f"{origin}/{path.lstrip('/')}" for origin in origins
                  for path in ["/", *params.paths])
    seen = set(queue)
    links_left = params.max_links
    facts = _Search()
    # Leave the check's time some room to judge what was found
    deadline = context.budget.phase_deadline(SEARCH_SHARE)
    # One client: one kept-alive connection per origin for every path and link asked
    with http_client(context) as client:
        while queue:
            if time.monotonic() > deadline:
                facts.complete = False
                break
            url = queue.popleft()
            answer = facts.fetch(client, url, params.max_bytes)
            if answer is None or answer.status != 200:
                continue
            if is_listing(answer):
                facts.listings.append(redact_name(url))
                for link in listing_links(url, answer.body)[:links_left]:
                    if link not in seen:
                        seen.add(link)
                        queue.append(link)
                        links_left -= 1
            elif answer.content_type != "text/html" and not url.endswith("/"):
                facts.keep(answer, params)
    return facts.result()


@dataclass
class _Search:
    listings: list[str] = field(default_factory=list)
    downloads: list[Download] = field(default_factory=list)
    requests: int = 0
    unanswered: int = 0
    complete: bool = True

    def fetch(self, client: HttpClient, url: str, max_bytes: int) -> HttpAnswer | None:
        self.requests += 1
        try:
            return client.get(url, max_bytes)
        except FactUnavailable:
            self.unanswered += 1
            return None

    def keep(self, answer: HttpAnswer, params: ExportParams) -> None:
        name = unquote(urlsplit(answer.url).path).rsplit("/", 1)[-1]
        self.downloads.append(Download(redact_name(answer.url), answer.content_type,
                                       len(answer.body), answer.truncated,
                                       is_data_file(answer, params.data_extensions),
                                       identifiers_in(name, answer.body)))

    def result(self) -> ExportFacts:
        if self.requests and self.unanswered == self.requests:
            raise FactUnavailable(Reason.UNREACHABLE, says(
                "none of the {count} export URLs answered", count=self.requests))
        return ExportFacts(self.listings, self.downloads, self.requests, self.unanswered,
                           self.complete)
