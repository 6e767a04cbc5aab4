"""Web facts: what a target's HTTP and HTTPS front ends answer, read with bounded requests.

Every request goes through the network layer's `HttpClient` (audit.facts.net): a byte cap
and a deadline for the whole exchange, redirects never followed (where they point is itself
the fact), no proxy. Certificates are verified against the inventory's trust anchors: when
that fails, the request is repeated unverified and the answer marked so (the TLS checks judge
the certificate; the web checks still see what the server says).
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pydantic import Field

from audit.errors import FactUnavailable, Unavailable
from audit.facts.context import TargetContext
from audit.facts.net import PAGE_BYTES, HttpAnswer, HttpClient, http_client, url_host
from audit.facts.services import known_services
from audit.messages import Message, listed, says
from audit.model.inventory import LoginProbe, Service, Target
from audit.registry import Params
from audit.vocabulary import Reason


@dataclass(frozen=True)
class PageFacts:
    """A URL and what it answered, or why it could not be read."""

    url: str
    answer: HttpAnswer | None = None
    unavailable: Unavailable | None = None


def web_base_urls(target: Target, services: list[Service]) -> list[str]:
    """The target's site roots: its URLs and its http/https services (declared or found by
    the scan), else http and https on its address. Not applicable when it has neither an
    address nor a URL."""
    found: dict[str, None] = {}
    for url in target.urls:         # the inventory model admits http(s) URLs with a host only
        parts = urlsplit(url)
        found[_root(parts.scheme.lower(), url_host(parts.hostname or ""), parts.port)] = None
    if target.address:
        host = url_host(target.address)
        for service in services:
            kind = service.kind.lower()
            scheme = "https" if service.tls or kind == "https" else "http" if kind == "http" \
                else None
            if scheme:
                found[_root(scheme, host, service.port)] = None
        if not found:
            found.update({f"http://{host}/": None, f"https://{host}/": None})
    if not found:
        raise FactUnavailable(Reason.UNSUPPORTED, says(
            "target {name} has no address or web URL", name=repr(target.name)))
    return list(found)


def _root(scheme: str, host: str, port: int | None) -> str:
    """`scheme://host[:port]/`, the port left out when it is the scheme's own."""
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}{'' if port in (None, default) else f':{port}'}/"


def site_roots(context: TargetContext) -> list[str]:
    """The site roots of the target being probed."""
    return web_base_urls(context.target, known_services(context))


def read_pages(client: HttpClient, urls: list[str], max_bytes: int = PAGE_BYTES) -> list[PageFacts]:
    """GET each URL; one that does not answer is a fact, not a lost probe."""
    pages = []
    for url in urls:
        try:
            pages.append(PageFacts(url, answer=client.get(url, max_bytes)))
        except FactUnavailable as unavailable:
            pages.append(PageFacts(url, unavailable=unavailable.unavailable))
    return pages


def require_an_answer(pages: list[PageFacts]) -> list[PageFacts]:
    """The pages, unless none answered: then the target could not be observed at all."""
    if all(page.answer is None for page in pages):
        failures = [page.unavailable for page in pages if page.unavailable]
        raise FactUnavailable(failures[0].reason if failures else Reason.UNREACHABLE,
                              listed([failure.text for failure in failures]))
    return pages


def front_pages(context: TargetContext) -> list[PageFacts]:
    """The answer of every site root of the target (HTTP and HTTPS)."""
    with http_client(context) as client:
        return require_an_answer(read_pages(client, site_roots(context)))


class RedirectParams(Params):
    """Which paths are asked over plain HTTP, and which answers count as a redirect."""

    paths: list[str] = Field(default_factory=lambda: ["/", "/login", "/index.html", "/api/",
                                                      "/exports/"], min_length=1, max_length=50)
    accepted_statuses: list[int] = Field(default_factory=lambda: [301, 308], min_length=1)


def plain_http_urls(target: Target, roots: list[str], paths: list[str]) -> list[str]:
    """Each path (and those of the target's URLs) on each plain-HTTP root: declared ones, and
    port 80 of every HTTPS host."""
    paths = list(dict.fromkeys([*paths, *(urlsplit(url).path or "/" for url in target.urls)]))
    plain: dict[str, None] = {}
    for base in roots:
        parts = urlsplit(base)
        host = parts.hostname or ""
        netloc = parts.netloc if parts.scheme == "http" else url_host(host)
        plain[f"http://{netloc}"] = None
    return [f"{root}/{path.lstrip('/')}" for root in plain for path in paths]


def plain_http_answers(context: TargetContext, params: RedirectParams) -> list[PageFacts]:
    """What each path answers over plain HTTP (a closed port is a fact: nothing in clear)."""
    with http_client(context) as client:
        return read_pages(client, plain_http_urls(context.target, site_roots(context),
                                                  params.paths))


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


def defence_seen(attempts: list[LoginAttempt], p: LoginParams) -> Message | None:
    """The first sign of brute-force protection in a series of attempts, None when none."""
    if not attempts:
        return None
    first = attempts[0]
    for attempt in attempts:
        if attempt.status in p.lockout_statuses or (attempt.status == 403 and first.status != 403):
            return says("HTTP {status} at attempt {number}", status=attempt.status,
                        number=attempt.number)
        if attempt.lockout_message:
            return says("lockout message {message} at attempt {number}",
                        message=repr(attempt.lockout_message), number=attempt.number)
        if attempt.status is None:
            return says("no answer within the timeout at attempt {number}",
                        number=attempt.number)
        if attempt.elapsed - first.elapsed >= p.delay_growth_seconds:
            return says("answer delayed from {first} s to {last} s",
                        first=f"{first.elapsed:.1f}", last=f"{attempt.elapsed:.1f}")
    return None


def login_attempts(context: TargetContext, params: LoginParams) -> LoginFacts:
    """Wrong passwords for the designated test account, until a defence shows or the bound."""
    login = context.target.login
    if login is None:
        raise FactUnavailable(Reason.UNSUPPORTED, says(
            "the brute-force probe is opt-in: the inventory gives this target no 'login' "
            "test account"))
    allowed = min(login.max_attempts, params.max_attempts)
    attempts: list[LoginAttempt] = []
    with http_client(context) as client:
        for number in range(1, allowed + 1):
            attempts.append(_attempt(client, login, number, params, first=not attempts))
            if defence_seen(attempts, params):
                break
    return LoginFacts(login.url, login.username, allowed, attempts)


def _attempt(client: HttpClient, login: LoginProbe, number: int, params: LoginParams,
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
