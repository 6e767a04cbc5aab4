"""Web checks as pure functions over hand-built facts; URL discovery and listing parsing."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from audit.errors import FactUnavailable, Unavailable
from audit.facts.net import HttpAnswer
from audit.facts.web import (
    LoginAttempt,
    LoginFacts,
    LoginParams,
    PageFacts,
    RedirectParams,
    hsts_max_age,
    plain_http_urls,
    web_base_urls,
)
from audit.facts.web_exports import (
    Download,
    ExportFacts,
    ExportParams,
    IdentifierSummary,
    is_data_file,
    is_listing,
    listing_links,
)
from audit.model.inventory import LoginProbe, Service, Target
from audit.vocabulary import Reason, Role, Status
from checks.web import (
    HstsParams,
    SecurityHeadersParams,
    VersionDisclosureParams,
    hsts,
    https_redirect,
    login_bruteforce,
    public_exports_check,
    security_headers,
    version_disclosure,
)


def page(url: str, status: int = 200, body: bytes = b"", **headers: str) -> PageFacts:
    answer = HttpAnswer(url, status, {k.replace("_", "-"): v for k, v in headers.items()}, body,
                        False, 0.01, True)
    return PageFacts(url, answer=answer)


def down(url: str, reason: Reason = Reason.UNREACHABLE) -> PageFacts:
    return PageFacts(url, unavailable=Unavailable(reason, f"{url}: {reason}"))


def test_permanent_redirects_to_https_pass() -> None:
    pages = [page("http://h/", 301, location="https://h/"),
             page("http://h/login", 308, location="https://h/login")]
    assert https_redirect(pages, RedirectParams()).status is Status.PASS


@pytest.mark.parametrize(("answer", "problem"), [
    (page("http://h/", 200), "http://h/ answers 200 in clear"),
    (page("http://h/", 302, location="https://h/"), "http://h/ answers 302 to https://h/"),
    (page("http://h/", 301, location="http://other/"),
     "http://h/ redirects with 301 to http://other/, not to https"),
])
def test_anything_else_fails(answer: PageFacts, problem: str) -> None:
    finding = https_redirect([answer], RedirectParams())
    assert finding.status is Status.FAIL and finding.summary == problem


def test_closed_plain_http_passes_but_silence_is_an_error() -> None:
    assert https_redirect([down("http://h/")], RedirectParams()).status is Status.PASS
    silent = https_redirect([down("http://h/", Reason.TIMEOUT)], RedirectParams())
    assert silent.status is Status.ERROR and silent.reason is Reason.TIMEOUT


PROTECTED = {"x_content_type_options": "nosniff", "x_frame_options": "DENY"}


@pytest.mark.parametrize("headers", [
    PROTECTED,
    {"x_content_type_options": "NoSniff", "x_frame_options": "sameorigin"},
    {"x_content_type_options": "nosniff",
     "content_security_policy": "default-src 'self'; frame-ancestors 'none'"},
    {"x_content_type_options": "nosniff", "content_security_policy": "frame-ancestors 'self'"},
])
def test_security_headers_pass(headers: dict[str, str]) -> None:
    pages = [page("https://h/", **headers), page("http://h/", 301, location="https://h/")]
    finding = security_headers(pages, SecurityHeadersParams())
    assert finding.status is Status.PASS, finding.summary
    assert [item["url"] for item in finding.observed] == ["https://h/"]   # a redirect: no page


@pytest.mark.parametrize(("headers", "problem"), [
    ({}, "https://h/: no MIME-sniffing protection; https://h/: no clickjacking protection"),
    ({"x_frame_options": "DENY"}, "https://h/: no MIME-sniffing protection"),
    ({"x_content_type_options": "nosniff"}, "https://h/: no clickjacking protection"),
    ({"x_content_type_options": "nosniff", "x_frame_options": "ALLOW-FROM https://a/"},
     "https://h/: no clickjacking protection"),
    ({"x_content_type_options": "nosniff", "content_security_policy": "frame-ancestors *"},
     "https://h/: no clickjacking protection"),
    ({"x_content_type_options": "nosniff", "content_security_policy": "default-src 'self'"},
     "https://h/: no clickjacking protection"),
])
def test_security_headers_fail(headers: dict[str, str], problem: str) -> None:
    finding = security_headers([page("https://h/", **headers)], SecurityHeadersParams())
    assert (finding.status, finding.summary) == (Status.FAIL, problem)


def test_security_headers_judge_every_page_and_never_pass_on_partial_coverage() -> None:
    plain = security_headers([page("https://h/", **PROTECTED), page("http://h/")],
                             SecurityHeadersParams())
    assert plain.status is Status.FAIL and plain.summary.startswith("http://h/: no MIME")
    partial = security_headers([page("https://h/", **PROTECTED),
                                down("http://h/", Reason.TIMEOUT)], SecurityHeadersParams())
    assert partial.status is Status.ERROR and partial.reason is Reason.TIMEOUT
    closed = security_headers([page("https://h/", **PROTECTED), down("http://h/")],
                              SecurityHeadersParams())
    assert closed.status is Status.PASS       # nothing listens there: nothing to protect
    nothing = security_headers([page("https://h/", 404)], SecurityHeadersParams())
    assert nothing.status is Status.ERROR and nothing.reason is Reason.NOT_FOUND


def test_security_headers_are_a_table_a_profile_may_change() -> None:
    frame_only = SecurityHeadersParams(requirements=[{
        "name": "frames", "any_of": [{"header": "X-Frame-Options", "accepted": ["deny"]}]}])
    assert security_headers([page("https://h/", x_frame_options="DENY")],
                            frame_only).status is Status.PASS
    with pytest.raises(ValidationError):
        SecurityHeadersParams(requirements=[{"name": "x", "any_of": [
            {"header": "x-frame-options", "accepted": ["(unclosed"]}]}])
    with pytest.raises(ValidationError):
        SecurityHeadersParams(requirements=[{"name": "x", "any_of": []}])


def test_hsts() -> None:
    good = page("https://h/", strict_transport_security="max-age=31536000; includeSubDomains")
    assert hsts([good], HstsParams(require_include_subdomains=True)).status is Status.PASS
    short = page("https://h/", strict_transport_security="max-age=300")
    assert hsts([short], HstsParams()).summary == "https://h/: HSTS max-age 300 < 31536000"
    assert hsts([page("https://h/")], HstsParams()).summary == "https://h/: no HSTS header"
    plain_only = hsts([page("http://h/"), down("https://h/")], HstsParams())
    assert plain_only.status is Status.FAIL
    assert plain_only.summary == "no HTTPS answer: HSTS cannot be sent"


@pytest.mark.parametrize(("header", "max_age"), [
    ("max-age=31536000", 31536000), ('max-age="600"; preload', 600), ("MAX-AGE = 5", 5),
    ("includeSubDomains", None), (None, None)])
def test_hsts_max_age(header: str | None, max_age: int | None) -> None:
    assert hsts_max_age(header) == max_age


def test_version_disclosure() -> None:
    quiet = [page("https://h/", server="nginx"), page("http://h/", server="Apache")]
    assert version_disclosure(quiet, VersionDisclosureParams()).status is Status.PASS
    loud = [page("https://h/", server="nginx/1.22.1", x_powered_by="PHP/8.2.7")]
    finding = version_disclosure(loud, VersionDisclosureParams())
    assert finding.status is Status.FAIL
    assert finding.summary == "versions announced: server: nginx/1.22.1; x-powered-by: PHP/8.2.7"


NONE = IdentifierSummary({}, 0, {})
CSV = Download("https://h/exports/p.csv", "text/csv", 200, False, True,
               IdentifierSummary({"kz_iin": 3}, 3, {"kz_iin": ["**********16"]}))
TEXT = Download("https://h/notes.txt", "text/plain", 20, False, False, NONE)


@pytest.mark.parametrize(("download", "status"), [
    (CSV, Status.FAIL),                                                   # national ids
    (Download(CSV.url, "text/csv", 200, False, True, NONE), Status.PASS),
    (Download(CSV.url, "text/csv", 200, False, True,                       # phones in data
              IdentifierSummary({"phone": 4}, 0, {"phone": ["*********01"]})), Status.FAIL),
    (Download(TEXT.url, "text/plain", 20, False, False,                    # a contact address
              IdentifierSummary({"email": 1}, 0, {"email": ["***@clinic.kz"]})), Status.PASS),
    (Download(TEXT.url, "text/plain", 20, False, False, CSV.identifiers), Status.FAIL),
])
def test_identifiers_decide(download: Download, status: Status) -> None:
    finding = public_exports_check(ExportFacts([], [download], 20), ExportParams())
    assert finding.status is status


def test_leak_evidence_is_masked() -> None:
    finding = public_exports_check(ExportFacts(["https://h/exports/"], [CSV, TEXT], 20),
                                   ExportParams())
    assert finding.summary == ("1 public download(s) with personal identifiers: "
                               "https://h/exports/p.csv")
    assert finding.observed[0]["masked_samples"] == {"kz_iin": ["**********16"]}
    assert finding.details["listings"] == ["https://h/exports/"]


def test_an_interrupted_search_cannot_pass() -> None:
    cut = public_exports_check(ExportFacts([], [TEXT], 90, complete=False), ExportParams())
    assert cut.status is Status.ERROR and cut.reason is Reason.TIMEOUT
    leaking = public_exports_check(ExportFacts([], [CSV], 90, complete=False), ExportParams())
    assert leaking.status is Status.FAIL


def attempts(*statuses: int | None, delays: list[float] | None = None,
             message: str | None = None) -> LoginFacts:
    delays = delays or [0.05] * len(statuses)
    made = [LoginAttempt(number, status, delay, message if number == len(statuses) else None)
            for number, (status, delay) in enumerate(zip(statuses, delays), start=1)]
    return LoginFacts("https://h/login", "audit.probe", 8, made)


@pytest.mark.parametrize(("facts", "defence"), [
    (attempts(401, 401, 429), "HTTP 429 at attempt 3"),
    (attempts(401, 423), "HTTP 423 at attempt 2"),
    (attempts(401, 401, 403), "HTTP 403 at attempt 3"),
    (attempts(200, 200, message="too many"), "lockout message 'too many' at attempt 2"),
    (attempts(401, 401, 401, delays=[0.1, 1.0, 2.5]), "answer delayed from 0.1 s to 2.5 s"),
    (attempts(401, 401, None), "no answer within the timeout at attempt 3"),
])
def test_each_defence_passes(facts: LoginFacts, defence: str) -> None:
    finding = login_bruteforce(facts, LoginParams())
    assert finding.status is Status.PASS
    assert finding.summary == f"brute-force defence seen: {defence}"


def test_no_defence_fails() -> None:
    finding = login_bruteforce(attempts(*[401] * 8), LoginParams())
    assert finding.status is Status.FAIL
    assert finding.summary == "8 wrong passwords in a row met no defence"
    # a 403 from the first attempt on is the ordinary answer to a wrong password
    assert login_bruteforce(attempts(403, 403, 403), LoginParams()).status is Status.FAIL


def test_base_urls() -> None:
    declared = Target(name="w", address="10.0.0.5", roles=[Role.WEB],
                      urls=["https://portal.clinic.kz/app?x=1"],
                      services=[Service(kind="http", port=8080), Service(kind="api", port=9443,
                                                                         tls=True)])
    assert web_base_urls(declared, declared.services) == ["https://portal.clinic.kz/", "http://10.0.0.5:8080/",
                                       "https://10.0.0.5:9443/"]
    bare = Target(name="w", address="10.0.0.5", roles=[Role.WEB])
    assert web_base_urls(bare, []) == ["http://10.0.0.5/", "https://10.0.0.5/"]
    assert plain_http_urls(declared, web_base_urls(declared, declared.services),
                           ["/", "login"]) == [
        "http://portal.clinic.kz/", "http://portal.clinic.kz/login", "http://portal.clinic.kz/app",
        "http://10.0.0.5:8080/", "http://10.0.0.5:8080/login", "http://10.0.0.5:8080/app",
        "http://10.0.0.5/", "http://10.0.0.5/login", "http://10.0.0.5/app"]


NGINX_LISTING = b"""<html><head><title>Index of /exports/</title></head><body>
<a href="../">../</a><a href="p.csv">p.csv</a><a href="sub/">sub/</a>
<a href="https://evil.example/x.csv">x</a><a href="/other/y.csv">y</a><a href="q?C=M">sort</a>
</body></html>"""


def test_listing_links_stay_below_the_listing() -> None:
    listing = page("https://h/exports/", body=NGINX_LISTING, content_type="text/html")
    assert listing.answer is not None and is_listing(listing.answer)
    assert listing_links("https://h/exports/", NGINX_LISTING) == [
        "https://h/exports/p.csv", "https://h/exports/sub/"]
    plain = page("https://h/", body=b"<title>Clinic</title>", content_type="text/html")
    assert plain.answer is not None and not is_listing(plain.answer)


@pytest.mark.parametrize(("url", "content_type", "data"), [
    ("https://h/a/patients.CSV", "text/plain", True),
    ("https://h/backup.tar.gz", "application/octet-stream", True),
    ("https://h/download?id=1", "application/vnd.ms-excel", True),
    ("https://h/readme.txt", "text/plain", False),
])
def test_data_files(url: str, content_type: str, data: bool) -> None:
    answer = page(url, content_type=content_type).answer
    assert answer is not None and is_data_file(answer, ExportParams().data_extensions) is data


@pytest.mark.parametrize("url", ["ftp://10.0.0.5/", "https://10.0.0.5:99999/", "https:///path",
                                 "https://[::1/", "10.0.0.5/login"])
def test_inventory_refuses_urls_the_web_probes_cannot_use(url: str) -> None:
    with pytest.raises(ValidationError):
        Target(name="w", address="10.0.0.5", roles=[Role.WEB], urls=[url])
    with pytest.raises(ValidationError):
        LoginProbe(url=url, username="audit.probe")


def test_a_target_without_address_or_url_has_no_site() -> None:
    with pytest.raises(FactUnavailable) as raised:
        web_base_urls(Target(name="share", roles=[Role.WEB]), [])
    assert raised.value.reason is Reason.UNSUPPORTED
