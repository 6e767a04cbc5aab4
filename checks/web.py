"""The web front end: HTTPS enforced, HSTS, security headers, no public exports, brute-force
defence, no versions."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from audit.errors import Unavailable
from audit.facts.web import (
    LoginFacts,
    LoginParams,
    PageFacts,
    RedirectParams,
    defence_seen,
    front_pages,
    hsts_max_age,
    login_attempts,
    plain_http_answers,
)
from audit.facts.web_exports import ExportFacts, ExportParams, public_exports
from audit.messages import Message, Text, listed, says
from audit.registry import Finding, Params, check, could_not_tell, failed, passed
from audit.vocabulary import Reason, Role

ONE_YEAR = 31536000


def _redirect_problem(page: PageFacts, p: RedirectParams) -> Message | None:
    answer = page.answer
    if answer is None:
        return None
    location = answer.headers.get("location", "")
    if answer.status not in p.accepted_statuses:
        return says("answers {status} to {location}", status=answer.status, location=location) \
            if location else says("answers {status} in clear", status=answer.status)
    if not location:
        return says("redirects with {status} to nowhere, not to https", status=answer.status)
    if not location.lower().startswith("https://"):
        return says("redirects with {status} to {location}, not to https", status=answer.status,
                    location=location)
    return None


@check(id="web.https_redirect", title="Plain HTTP only redirects to HTTPS",
       applies_to=Role.WEB, probe=plain_http_answers, params=RedirectParams)
def https_redirect(pages: list[PageFacts], p: RedirectParams) -> Finding:
    """A page served over plain HTTP can be read and changed by anyone on the path: logins,
    results, prescriptions. Answer every plain-HTTP request with a permanent redirect (301 or
    308) to the same path over https, or do not listen on port 80 at all."""
    observed = [{"url": page.url, "status": page.answer.status,
                 "location": page.answer.headers.get("location")} if page.answer else
                {"url": page.url, "error": page.unavailable.message if page.unavailable else ""}
                for page in pages]
    problems = [says("{url} {problem}", url=page.url, problem=problem) for page in pages
                if (problem := _redirect_problem(page, p))]
    expected = f"{' or '.join(map(str, p.accepted_statuses))} to https://, or no plain HTTP"
    if problems:
        return failed(listed(problems), observed=observed, expected=expected)
    silent = [page.unavailable for page in pages
              if page.unavailable and page.unavailable.reason is not Reason.UNREACHABLE]
    if silent:
        return could_not_tell(Unavailable(silent[0].reason, listed([item.text for item in silent])),
                              answers=observed)
    answered = sum(page.answer is not None for page in pages)
    summary = says("all {count} plain-HTTP requests redirected to https", count=answered) \
        if answered else says("nothing listens for plain HTTP")
    return passed(summary, observed=observed, expected=expected)


class HstsParams(Params):
    """The shortest HSTS max-age accepted (seconds), and whether subdomains must be covered."""

    min_max_age: int = Field(default=ONE_YEAR, ge=0)
    require_include_subdomains: bool = False


def _https_pages(pages: list[PageFacts]) -> list[PageFacts]:
    return [page for page in pages if page.url.lower().startswith("https://")]


@check(id="web.hsts", title="HTTPS sites send a long-lived HSTS header", applies_to=Role.WEB,
       probe=front_pages, params=HstsParams)
def hsts(pages: list[PageFacts], p: HstsParams) -> Finding:
    """Without Strict-Transport-Security a browser still tries plain HTTP first, and an
    attacker on the network keeps the session in clear (SSL stripping). Send
    `Strict-Transport-Security: max-age=31536000; includeSubDomains` on every HTTPS answer."""
    expected = {"max_age_at_least": p.min_max_age,
                "include_subdomains": p.require_include_subdomains}
    https = _https_pages(pages)
    answered = [(page.url, page.answer) for page in https if page.answer is not None]
    if not answered:
        return failed(says("no HTTPS answer: HSTS cannot be sent"), observed=[
            {"url": page.url, "error": page.unavailable.message if page.unavailable else ""}
            for page in https], expected=expected)
    observed: list[dict[str, Any]] = []
    problems: list[Text] = []
    for url, answer in answered:
        header = answer.headers.get("strict-transport-security")
        max_age = hsts_max_age(header)
        observed.append({"url": url, "header": header, "max_age": max_age,
                         "certificate_verified": answer.verified})
        if max_age is None:
            problems.append(says("{url}: no HSTS header", url=url) if header is None
                            else says("{url}: HSTS without a max-age", url=url))
        elif max_age < p.min_max_age:
            problems.append(says("{url}: HSTS max-age {max_age} < {minimum}", url=url,
                                 max_age=max_age, minimum=p.min_max_age))
        elif p.require_include_subdomains and "includesubdomains" not in (header or "").lower():
            problems.append(says("{url}: HSTS without includeSubDomains", url=url))
    if problems:
        return failed(listed(problems), observed=observed, expected=expected)
    return passed(says("HSTS max-age >= {minimum} on {count} HTTPS site(s)",
                       minimum=p.min_max_age, count=len(answered)),
                  observed=observed, expected=expected)


VERSION_IN_HEADER = re.compile(r"\d+\.\d+")


class VersionDisclosureParams(Params):
    """Response headers that must not name software versions."""

    headers: list[str] = Field(default_factory=lambda: [
        "server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version", "x-generator",
        "x-runtime-version"])


@check(id="web.version_disclosure", title="Web servers do not announce software versions",
       applies_to=Role.WEB, probe=front_pages, params=VersionDisclosureParams)
def version_disclosure(pages: list[PageFacts], p: VersionDisclosureParams) -> Finding:
    """A version number in a Server or X-Powered-By header tells an attacker which known
    vulnerabilities to try, without a single probe. Hide it (nginx `server_tokens off;`,
    Apache `ServerTokens Prod`, PHP `expose_php = Off`, remove X-Powered-By)."""
    disclosed = [{"url": page.url, "header": name, "value": page.answer.headers[name]}
                 for page in pages if page.answer for name in (h.lower() for h in p.headers)
                 if VERSION_IN_HEADER.search(page.answer.headers.get(name, ""))]
    if disclosed:
        values = sorted({f"{item['header']}: {item['value']}" for item in disclosed})
        return failed(says("versions announced: {values}", values="; ".join(values)),
                      observed=disclosed,
                      expected="no version in " + ", ".join(p.headers))
    return passed(says("no version announced in response headers"), observed=[],
                  expected="no version in " + ", ".join(p.headers))


class HeaderAlternative(Params):
    """One way to meet a requirement: a response header (or one directive of it, for a
    policy header such as Content-Security-Policy) whose value fully matches one of
    `accepted` (regular expressions, case-insensitive)."""

    header: str
    directive: str | None = None
    accepted: list[str] = Field(min_length=1)

    @field_validator("accepted")
    @classmethod
    def _patterns_compile(cls, accepted: list[str]) -> list[str]:
        for pattern in accepted:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"accepted value {pattern!r} is not a regular expression: "
                                 f"{error}") from None
        return accepted

    def value_in(self, headers: dict[str, str]) -> str | None:
        """The header's value (or the directive's source list) in an answer, None if absent."""
        value = headers.get(self.header.lower())
        if value is None or self.directive is None:
            return value
        for directive in value.split(";"):
            name, _, sources = directive.strip().partition(" ")
            if name.lower() == self.directive.lower():
                return sources.strip()
        return None

    def met_by(self, headers: dict[str, str]) -> bool:
        """Whether an answer's headers meet this alternative."""
        value = self.value_in(headers)
        return value is not None and any(re.fullmatch(pattern, value.strip(), re.IGNORECASE)
                                         for pattern in self.accepted)


class HeaderRequirement(Params):
    """A protection every page must have, met by any one of its alternatives."""

    name: str
    any_of: list[HeaderAlternative] = Field(min_length=1)


# The default protections' names in every language; a profile's own names show as given.
PROTECTION_NAMES: dict[str, Message] = {
    "MIME-sniffing protection": says("MIME-sniffing protection"),
    "clickjacking protection": says("clickjacking protection"),
}


def _protection(name: str) -> Text:
    return PROTECTION_NAMES.get(name, name)


def _default_header_requirements() -> list[HeaderRequirement]:
    return [
        HeaderRequirement(name="MIME-sniffing protection", any_of=[
            HeaderAlternative(header="x-content-type-options", accepted=["nosniff"])]),
        HeaderRequirement(name="clickjacking protection", any_of=[
            HeaderAlternative(header="x-frame-options", accepted=["deny", "sameorigin"]),
            # any source list but a wildcard, which lets every site frame the page
            HeaderAlternative(header="content-security-policy", directive="frame-ancestors",
                              accepted=[r"[^*]+"])]),
    ]


class SecurityHeadersParams(Params):
    """The protections every page the front end serves must carry, as a table: a profile may
    add a requirement or narrow the accepted values."""

    requirements: list[HeaderRequirement] = Field(
        default_factory=_default_header_requirements, min_length=1)


def _header_evidence(url: str, headers: dict[str, str],
                     p: SecurityHeadersParams) -> tuple[dict[str, Any], list[str]]:
    seen = {alternative.header.lower(): headers.get(alternative.header.lower())
            for requirement in p.requirements for alternative in requirement.any_of}
    missing = [requirement.name for requirement in p.requirements
               if not any(alternative.met_by(headers) for alternative in requirement.any_of)]
    return {"url": url, "headers": seen, "missing": missing}, missing


@check(id="web.security_headers", title="Pages forbid MIME sniffing and framing by other sites",
       applies_to=Role.WEB, probe=front_pages, params=SecurityHeadersParams)
def security_headers(pages: list[PageFacts], p: SecurityHeadersParams) -> Finding:
    """A page that another site may frame can be overlaid with a decoy, so that a clinician's
    clicks sign, prescribe or export for the attacker (clickjacking); a browser that guesses
    media types may run an uploaded document as a script. Send `X-Content-Type-Options:
    nosniff` and `X-Frame-Options: DENY` (or SAMEORIGIN), or a Content-Security-Policy with
    `frame-ancestors 'none'` (or 'self'), on every page (nginx: `add_header ... always;`)."""
    expected = {requirement.name: [
        f"{alternative.header}{' ' + alternative.directive if alternative.directive else ''}: "
        + " | ".join(alternative.accepted) for alternative in requirement.any_of]
        for requirement in p.requirements}
    served = [(page.url, page.answer) for page in pages
              if page.answer and 200 <= page.answer.status < 300]
    observed: list[dict[str, Any]] = []
    problems: list[Text] = []
    for url, answer in served:
        evidence, missing = _header_evidence(url, answer.headers, p)
        observed.append(evidence)
        problems.extend(says("{url}: no {protection}", url=url, protection=_protection(name))
                        for name in missing)
    if problems:
        return failed(listed(problems), observed=observed, expected=expected)
    unread = [page.unavailable for page in pages
              if page.unavailable and page.unavailable.reason is not Reason.UNREACHABLE]
    if unread:      # partial coverage never passes alone
        return could_not_tell(Unavailable(unread[0].reason, listed([item.text for item in unread])),
                              pages=observed)
    if not served:
        return could_not_tell(Unavailable(Reason.NOT_FOUND, says(
            "no site root answered with a page (2xx) whose headers could be judged")),
                              answers=[{"url": page.url, "status": page.answer.status}
                                       for page in pages if page.answer])
    return passed(says("{protections} on {count} page(s)", protections=listed(
        [_protection(r.name) for r in p.requirements], ", "), count=len(served)),
                  observed=observed, expected=expected)


def _download_evidence(facts: ExportFacts) -> list[dict[str, Any]]:
    return [{"url": item.url, "content_type": item.content_type, "bytes_read": item.size,
             "truncated": item.truncated, "data_file": item.data_file,
             "identifiers": item.identifiers.counts,
             "national_ids": item.identifiers.national_ids,
             "masked_samples": item.identifiers.samples}
            for item in facts.downloads]


@check(id="web.public_exports", title="No data files are downloadable without authentication",
       applies_to=Role.WEB, probe=public_exports, params=ExportParams)
def public_exports_check(facts: ExportFacts, p: ExportParams) -> Finding:
    """Patient lists exported to a web folder, database dumps and backups left in the web
    root, and directory listings that show them are downloaded by anyone who guesses the
    path: this is how lists with national ID numbers and diagnoses leak. Keep exports and
    backups outside the web root, turn directory listings off, and serve files only to
    authenticated, authorised users."""
    evidence = {"listings": facts.listings, "requests": facts.requests,
                "unanswered": facts.unanswered}
    # National ids anywhere, or any identifier (phones, e-mails) inside a data file
    leaking = [item for item in facts.downloads if item.identifiers.national_ids or (
        item.data_file and any(item.identifiers.counts.values()))]
    observed = _download_evidence(facts)
    expected = "no personal identifiers in files served without authentication"
    if leaking:
        return failed(says("{count} public download(s) with personal identifiers: {urls}",
                           count=len(leaking), urls=", ".join(item.url for item in leaking)),
                      observed=observed, expected=expected, **evidence)
    if not facts.complete:
        return could_not_tell(Unavailable(Reason.TIMEOUT, says(
            "the search stopped at its time budget after {count} URLs, none leaking so far",
            count=facts.requests)), **evidence)
    return passed(says("no public data file found ({count} URLs asked)", count=facts.requests),
                  observed=observed, expected=expected, **evidence)


@check(id="web.login_bruteforce", title="The login resists password guessing",
       applies_to=Role.WEB, probe=login_attempts, params=LoginParams)
def login_bruteforce(facts: LoginFacts, p: LoginParams) -> Finding:
    """A login that accepts unlimited wrong passwords falls to guessing: accounts were opened
    "by entering random numbers" in a known incident. Lock the account or throttle after a
    few failures (HTTP 429, a growing delay, a CAPTCHA). This probe is opt-in per target and
    uses only the designated test account, with at most the inventory's number of attempts."""
    attempts = [{"attempt": item.number, "status": item.status,
                 "elapsed_ms": int(item.elapsed * 1000), "lockout_message": item.lockout_message}
                for item in facts.attempts]
    details = {"url": facts.url, "test_account": facts.username,
               "allowed_attempts": facts.allowed_attempts}
    expected = "lockout (423/403 or a message), HTTP 429 or a growing delay"
    defence = defence_seen(facts.attempts, p)
    if defence:
        return passed(says("brute-force defence seen: {defence}", defence=defence),
                      observed=attempts, expected=expected, **details)
    return failed(says("{count} wrong passwords in a row met no defence",
                       count=len(facts.attempts)),
                  observed=attempts, expected=expected, **details)

