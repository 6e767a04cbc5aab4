"""Web facts: what a target's HTTP and HTTPS front ends answer, read with bounded requests.

Every request has a timeout, a size cap and a deadline for the whole exchange (a server that
drips its headers or its handshake is cut there, see `SocketDeadline`); redirects are never
followed (where they point is itself the fact); proxies and .netrc from the environment are
ignored. Certificates are verified against the inventory's trust anchors: when that fails,
the request is repeated unverified and the answer marked so (the TLS checks judge the
certificate; the web checks still see what the server says).
"""

from __future__ import annotations

import re
import secrets
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
from pydantic import Field
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InsecureRequestWarning

from audit.errors import FactUnavailable
from audit.facts.context import TargetContext
from audit.facts.fhir import SocketDeadline
from audit.model.inventory import LoginProbe, Target
from audit.registry import Params
from audit.vocabulary import Reason

USER_AGENT = "mis-audit (security posture audit; read-only)"
PAGE_BYTES = 64 * 1024
MAX_HEADERS = 64
MAX_HEADER_VALUE = 500
MAX_REQUEST_TIMEOUT = 10.0

# An unverified request is deliberate and recorded (`HttpAnswer.verified`); urllib3's warning
# about it would only repeat that on stderr, once per request. (A filter, not
# catch_warnings: that one is not thread-safe and probes run in parallel.)
warnings.filterwarnings("ignore", category=InsecureRequestWarning)


@dataclass(frozen=True)
class HttpAnswer:
    """One response, as far as it was read: status, headers (lower-case names), capped body."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool
    elapsed: float
    verified: bool

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class PageFacts:
    """A URL and what it answered, or why it could not be read."""

    url: str
    answer: HttpAnswer | None = None
    unavailable: FactUnavailable | None = None


# The deadline of the request the current thread is making (requests gives no other way to
# reach the sockets urllib3 opens for it).
_current = threading.local()


@contextmanager
def _deadline(seconds: float) -> Iterator[SocketDeadline]:
    with SocketDeadline(seconds) as deadline:
        _current.deadline = deadline
        try:
            yield deadline
        finally:
            _current.deadline = None


def _watch(sock: socket.socket | None) -> None:
    deadline: SocketDeadline | None = getattr(_current, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.watch(sock)


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    """A connection whose socket the current request's deadline cuts."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)     # a kept-alive connection, made for an earlier request
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(_WatchedHTTPConnection, urllib3.connection.HTTPSConnection):
    """The same over TLS (the raw socket is watched before the handshake)."""


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter with connections that a `SocketDeadline` can cut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool,
                                                   "https": _WatchedHTTPSPool}


class WebClient:
    """Bounded GET and POST for one target's probes."""

    def __init__(self, context: TargetContext) -> None:
        environment = context.environment
        self.timeout = max(1.0, min(MAX_REQUEST_TIMEOUT, environment.timeout / 4))
        self.verify: str | bool = str(environment.ca_file) if environment.ca_file else True
        self.session = requests.Session()
        self.session.trust_env = False          # no proxy or .netrc from the environment
        self.session.headers["User-Agent"] = USER_AGENT
        for scheme in ("http://", "https://"):
            self.session.mount(scheme, _DeadlineAdapter())
        # Origins that did not answer: asked again, they would cost a timeout each time
        self.silent: dict[str, FactUnavailable] = {}

    def get(self, url: str, max_bytes: int = PAGE_BYTES) -> HttpAnswer:
        """GET without following redirects; raises FactUnavailable when nothing answered."""
        return self.request("GET", url, max_bytes)

    def request(self, method: str, url: str, max_bytes: int = PAGE_BYTES,
                form: dict[str, str] | None = None) -> HttpAnswer:
        """One request, verified first and unverified when only the certificate failed."""
        origin = urlunsplit((*urlsplit(url)[:2], "", "", ""))
        if origin in self.silent:
            earlier = self.silent[origin]
            raise FactUnavailable(earlier.reason, f"{url}: skipped, {earlier.message}")
        try:
            try:
                return self._send(method, url, max_bytes, form, self.verify)
            except requests.exceptions.SSLError:
                return self._send(method, url, max_bytes, form, False)
        except FactUnavailable as unavailable:
            self.silent[origin] = unavailable
            raise

    def _send(self, method: str, url: str, max_bytes: int, form: dict[str, str] | None,
              verify: str | bool) -> HttpAnswer:
        started = time.monotonic()
        cut = FactUnavailable(Reason.TIMEOUT, f"{url}: no complete answer within "
                                              f"{self.timeout:g} s")
        with _deadline(self.timeout) as deadline:
            try:
                with self.session.request(method, url, data=form, allow_redirects=False,
                                          stream=True, timeout=self.timeout,
                                          verify=verify) as response:
                    body, truncated = _read_capped(response, max_bytes, started + self.timeout)
                    headers = {name.lower(): value[:MAX_HEADER_VALUE] for name, value
                               in list(response.headers.items())[:MAX_HEADERS]}
                    if deadline.expired:    # http.client takes a cut for the end of headers
                        raise cut
                    return HttpAnswer(url, response.status_code, headers, body, truncated,
                                      time.monotonic() - started, verify is not False)
            except requests.exceptions.SSLError:
                if deadline.expired:
                    raise cut from None
                if verify is False:
                    raise FactUnavailable(Reason.REFUSED,
                                          f"{url}: TLS handshake failed") from None
                raise
            except requests.exceptions.Timeout:
                raise FactUnavailable(Reason.TIMEOUT,
                                      f"{url}: no answer within {self.timeout:g} s") from None
            except requests.exceptions.RequestException as error:
                if deadline.expired:
                    raise cut from None
                raise FactUnavailable(Reason.UNREACHABLE,
                                      f"{url}: {type(error).__name__}") from None


def _read_capped(response: requests.Response, max_bytes: int,
                 deadline: float) -> tuple[bytes, bool]:
    """At most max_bytes of the body, and never past the deadline (a server may drip)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=16384):
        chunks.append(chunk)
        size += len(chunk)
        if size >= max_bytes or time.monotonic() > deadline:
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False


def web_base_urls(target: Target) -> list[str]:
    """The target's site roots: its URLs, its http/https services, else http and https on
    its address. Not applicable when it has neither an address nor a URL."""
    found: dict[str, None] = {}
    for url in target.urls:         # the inventory model admits http(s) URLs with a host only
        parts = urlsplit(url)
        found[urlunsplit((parts.scheme.lower(), parts.netloc, "/", "", ""))] = None
    if target.address:
        host = f"[{target.address}]" if ":" in target.address else target.address
        for service in target.services:
            kind = service.kind.lower()
            scheme = "https" if service.tls or kind == "https" else "http" if kind == "http" \
                else None
            if scheme:
                found[f"{scheme}://{host}:{service.port}/"] = None
        if not found:
            found.update({f"http://{host}/": None, f"https://{host}/": None})
    if not found:
        raise FactUnavailable(Reason.UNSUPPORTED,
                              f"target {target.name!r} has no address or web URL")
    return list(found)


def read_pages(client: WebClient, urls: list[str], max_bytes: int = PAGE_BYTES) -> list[PageFacts]:
    """GET each URL; one that does not answer is a fact, not a lost probe."""
    pages = []
    for url in urls:
        try:
            pages.append(PageFacts(url, answer=client.get(url, max_bytes)))
        except FactUnavailable as unavailable:
            pages.append(PageFacts(url, unavailable=unavailable))
    return pages


def require_an_answer(pages: list[PageFacts]) -> list[PageFacts]:
    """The pages, unless none answered: then the target could not be observed at all."""
    if all(page.answer is None for page in pages):
        failures = [page.unavailable for page in pages if page.unavailable]
        raise FactUnavailable(failures[0].reason if failures else Reason.UNREACHABLE,
                              "; ".join(failure.message for failure in failures))
    return pages


def front_pages(context: TargetContext) -> list[PageFacts]:
    """The answer of every site root of the target (HTTP and HTTPS)."""
    return require_an_answer(read_pages(WebClient(context), web_base_urls(context.target)))


class RedirectParams(Params):
    """Which paths are asked over plain HTTP, and which answers count as a redirect."""

    paths: list[str] = Field(default_factory=lambda: ["/", "/login", "/index.html", "/api/",
                                                      "/exports/"], min_length=1, max_length=50)
    accepted_statuses: list[int] = Field(default_factory=lambda: [301, 308], min_length=1)


def plain_http_urls(target: Target, paths: list[str]) -> list[str]:
    """Each path (and those of the target's URLs) on each plain-HTTP root: declared ones, and
    port 80 of every HTTPS host."""
    paths = list(dict.fromkeys([*paths, *(urlsplit(url).path or "/" for url in target.urls)]))
    roots: dict[str, None] = {}
    for base in web_base_urls(target):
        parts = urlsplit(base)
        host = parts.hostname or ""
        netloc = parts.netloc if parts.scheme == "http" else \
            (f"[{host}]" if ":" in host else host)
        roots[f"http://{netloc}"] = None
    return [f"{root}/{path.lstrip('/')}" for root in roots for path in paths]


def plain_http_answers(context: TargetContext, params: RedirectParams) -> list[PageFacts]:
    """What each path answers over plain HTTP (a closed port is a fact: nothing in clear)."""
    return read_pages(WebClient(context), plain_http_urls(context.target, params.paths))


HSTS_MAX_AGE = re.compile(r"max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


def hsts_max_age(header: str | None) -> int | None:
    """The max-age of a Strict-Transport-Security header, None when absent or malformed."""
    match = HSTS_MAX_AGE.search(header or "")
    return int(match.group(1)) if match else None


class LoginParams(Params):
    """Bounds of the brute-force probe and what counts as a defence."""

    max_attempts: int = Field(default=8, ge=1, le=50)
    lockout_statuses: list[int] = Field(default_factory=lambda: [423, 429])
    lockout_patterns: list[str] = Field(default_factory=lambda: [
        "locked", "too many", "try again later", "temporarily blocked", "captcha",
        "заблокирован", "слишком много", "бұғатталған"])
    delay_growth_seconds: float = Field(default=2.0, gt=0, le=60)


@dataclass(frozen=True)
class LoginAttempt:
    """One wrong-password attempt: the answer's status (None: no answer in time) and delay."""

    number: int
    status: int | None
    elapsed: float
    lockout_message: str | None = None


@dataclass(frozen=True)
class LoginFacts:
    """The attempts made against the designated test account (stopped at the first defence)."""

    url: str
    username: str
    allowed_attempts: int
    attempts: list[LoginAttempt] = field(default_factory=list)


def defence_seen(attempts: list[LoginAttempt], p: LoginParams) -> str | None:
    """The first sign of brute-force protection in a series of attempts, None when none."""
    if not attempts:
        return None
    first = attempts[0]
    for attempt in attempts:
        if attempt.status in p.lockout_statuses or (attempt.status == 403 and first.status != 403):
            return f"HTTP {attempt.status} at attempt {attempt.number}"
        if attempt.lockout_message:
            return f"lockout message {attempt.lockout_message!r} at attempt {attempt.number}"
        if attempt.status is None:
            return f"no answer within the timeout at attempt {attempt.number}"
        if attempt.elapsed - first.elapsed >= p.delay_growth_seconds:
            return f"answer delayed from {first.elapsed:.1f} s to {attempt.elapsed:.1f} s"
    return None


def login_attempts(context: TargetContext, params: LoginParams) -> LoginFacts:
    """Wrong passwords for the designated test account, until a defence shows or the bound."""
    login = context.target.login
    if login is None:
        raise FactUnavailable(Reason.UNSUPPORTED, "the brute-force probe is opt-in: the "
                              "inventory gives this target no 'login' test account")
    client = WebClient(context)
    allowed = min(login.max_attempts, params.max_attempts)
    attempts: list[LoginAttempt] = []
    for number in range(1, allowed + 1):
        attempts.append(_attempt(client, login, number, params, first=not attempts))
        if defence_seen(attempts, params):
            break
    return LoginFacts(login.url, login.username, allowed, attempts)


def _attempt(client: WebClient, login: LoginProbe, number: int, params: LoginParams,
             first: bool) -> LoginAttempt:
    # A fresh random wrong password each time: the account's real password is never needed.
    form = {login.username_field: login.username,
            login.password_field: f"mis-audit-wrong-{secrets.token_hex(8)}"}
    started = time.monotonic()
    try:
        answer = client.request("POST", login.url, PAGE_BYTES, form)
    except FactUnavailable as unavailable:
        if first or unavailable.reason is not Reason.TIMEOUT:
            raise
        return LoginAttempt(number, None, time.monotonic() - started)
    text = answer.body.decode("utf-8", errors="replace").lower()
    message = next((pattern for pattern in params.lockout_patterns
                    if pattern.lower() in text), None)
    return LoginAttempt(number, answer.status, answer.elapsed, message)
