"""Web checks against real nginx sites, weak and hardened, with their login backends."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from tests.servers.base import start_server
from tests.servers.hostile import Mode, hostile_listener, silent_listener
from tests.servers.nginx import (
    LOGIN_BACKEND,
    WebServer,
    run_check,
    site_fixture,
)

from audit.facts.services import identify
from audit.model.inventory import LoginProbe, Service, Target
from audit.vocabulary import Role, Status

WEAK_ADDRESS = "127.61.2.10"
HARDENED_ADDRESS = "127.61.2.11"
TEST_ACCOUNT = "audit.probe"


weak_site = site_fixture("weak", WEAK_ADDRESS)
hardened_site = site_fixture("hardened", HARDENED_ADDRESS)


def site_target(site: WebServer, max_attempts: int = 5) -> Target:
    return Target(name=f"web-{site.variant}", address=site.address, roles=[Role.WEB],
                  urls=[site.https_url],
                  login=LoginProbe(url=site.login_url, username=TEST_ACCOUNT,
                                   max_attempts=max_attempts))


@pytest.mark.servers
def test_https_redirect(weak_site: WebServer, hardened_site: WebServer) -> None:
    good = run_check("web.https_redirect", site_target(hardened_site), hardened_site.ca_file)
    assert good.status is Status.PASS, good
    assert {item["status"] for item in good.evidence.observed} == {301}
    assert good.evidence.observed[1]["location"] == f"https://{HARDENED_ADDRESS}/login"
    bad = run_check("web.https_redirect", site_target(weak_site), weak_site.ca_file)
    assert bad.status is Status.FAIL
    assert f"http://{WEAK_ADDRESS}/ answers 200 in clear" in bad.summary


@pytest.mark.servers
def test_a_plain_http_login_backend_found_on_its_own_port(weak_site: WebServer) -> None:
    # Only an address: the scan finds nginx on 80 and 443 and the login backend on 8081
    bare = Target(name="web-bare", address=weak_site.address, roles=[Role.WEB])
    bad = run_check("web.https_redirect", bare, weak_site.ca_file)
    assert bad.status is Status.FAIL
    assert f"http://{WEAK_ADDRESS}:8081/login answers 200 in clear" in bad.summary


@pytest.mark.servers
def test_hsts(weak_site: WebServer, hardened_site: WebServer) -> None:
    good = run_check("web.hsts", site_target(hardened_site), hardened_site.ca_file)
    assert good.status is Status.PASS, good
    assert good.evidence.observed[0]["max_age"] == 31536000
    bad = run_check("web.hsts", site_target(weak_site), weak_site.ca_file)
    assert bad.status is Status.FAIL
    assert bad.summary == f"https://{WEAK_ADDRESS}/: no HSTS header"
    stricter = run_check("web.hsts", site_target(hardened_site), hardened_site.ca_file,
                         min_max_age=2 * 31536000)
    assert stricter.status is Status.FAIL


@pytest.mark.servers
def test_version_disclosure(weak_site: WebServer, hardened_site: WebServer) -> None:
    good = run_check("web.version_disclosure", site_target(hardened_site),
                     hardened_site.ca_file)
    assert good.status is Status.PASS, good
    bad = run_check("web.version_disclosure", site_target(weak_site), weak_site.ca_file)
    assert bad.status is Status.FAIL
    assert bad.evidence.observed[0]["header"] == "server"
    assert bad.evidence.observed[0]["value"].startswith("nginx/")


@pytest.mark.servers
def test_security_headers(weak_site: WebServer, hardened_site: WebServer) -> None:
    good = run_check("web.security_headers", site_target(hardened_site), hardened_site.ca_file)
    assert good.status is Status.PASS, good
    assert good.evidence.observed == [{
        "url": f"https://{HARDENED_ADDRESS}/",
        "headers": {"x-content-type-options": "nosniff", "x-frame-options": "DENY",
                    "content-security-policy": None},
        "missing": []}]
    bad = run_check("web.security_headers", site_target(weak_site), weak_site.ca_file)
    assert bad.status is Status.FAIL, bad
    # every site root is judged: the declared URL, plain HTTP on 80 and the login backend the
    # scan found listening in clear on 8081
    assert bad.summary == "; ".join(
        f"{root}: no {protection} protection"
        for root in (f"https://{WEAK_ADDRESS}/", f"http://{WEAK_ADDRESS}/",
                     f"http://{WEAK_ADDRESS}:8081/")
        for protection in ("MIME-sniffing", "clickjacking"))
    # A profile may ask for more: a CSP frame-ancestors the hardened site does not send
    stricter = run_check("web.security_headers", site_target(hardened_site),
                         hardened_site.ca_file, requirements=[
                             {"name": "CSP frame-ancestors", "any_of": [
                                 {"header": "content-security-policy",
                                  "directive": "frame-ancestors", "accepted": ["'none'"]}]}])
    assert stricter.status is Status.FAIL
    assert stricter.evidence.observed[0]["missing"] == ["CSP frame-ancestors"]


@pytest.mark.servers
def test_public_exports(weak_site: WebServer, hardened_site: WebServer) -> None:
    good = run_check("web.public_exports", site_target(hardened_site), hardened_site.ca_file)
    assert good.status is Status.PASS, good
    assert good.evidence.details["listings"] == []
    bad = run_check("web.public_exports", site_target(weak_site), weak_site.ca_file)
    assert bad.status is Status.FAIL, bad
    export = f"https://{WEAK_ADDRESS}/exports/patients-2026-01.csv"
    assert export in bad.summary
    assert f"https://{WEAK_ADDRESS}/exports/" in bad.evidence.details["listings"]
    leaked = next(item for item in bad.evidence.observed if item["url"] == export)
    assert leaked["data_file"] is True and leaked["identifiers"]["kz_iin"] == 3
    assert all(sample.startswith("*") for sample in leaked["masked_samples"]["kz_iin"])
    assert "850312" not in str(bad.model_dump())           # identifiers are masked


@pytest.mark.servers
def test_public_exports_respects_the_size_cap(weak_site: WebServer) -> None:
    result = run_check("web.public_exports", site_target(weak_site), weak_site.ca_file,
                       max_bytes=1024, paths=["/exports/"], max_links=1)
    downloads = result.evidence.observed
    assert len(downloads) <= 1 and all(item["bytes_read"] <= 1024 for item in downloads)


@pytest.mark.servers
def test_login_bruteforce(weak_site: WebServer, hardened_site: WebServer) -> None:
    good = run_check("web.login_bruteforce", site_target(hardened_site), hardened_site.ca_file)
    assert good.status is Status.PASS, good
    assert "HTTP 429" in good.summary
    assert len(good.evidence.observed) <= 3          # stops at the first defence
    bad = run_check("web.login_bruteforce", site_target(weak_site, max_attempts=4),
                    weak_site.ca_file)
    assert bad.status is Status.FAIL
    assert [item["status"] for item in bad.evidence.observed] == [401, 401, 401, 401]
    assert bad.evidence.details["test_account"] == TEST_ACCOUNT


def test_login_bruteforce_is_opt_in() -> None:
    target = Target(name="no-login", address="127.61.2.30", roles=[Role.WEB])
    assert run_check("web.login_bruteforce", target).status is Status.NOT_APPLICABLE


def test_site_that_is_down_is_an_error() -> None:
    target = Target(name="down", address="127.61.2.31", roles=[Role.WEB],
                    services=[Service(kind="https", port=9)])
    result = run_check("web.hsts", target)
    assert result.status is Status.ERROR and result.error and result.error.type == "unreachable"


def test_no_plain_http_listener_passes_the_redirect_check() -> None:
    target = Target(name="closed", address="127.61.2.32", roles=[Role.WEB],
                    services=[Service(kind="http", port=9)])
    result = run_check("web.https_redirect", target, paths=["/"])
    assert result.status is Status.PASS and result.summary == "nothing listens for plain HTTP"


def test_silent_site_costs_no_more_than_the_timeout() -> None:
    with silent_listener("127.61.2.33") as port:
        target = Target(name="silent", address="127.61.2.33", roles=[Role.WEB],
                        services=[Service(kind="https", port=port)])
        started = time.monotonic()
        result = run_check("web.hsts", target, timeout=4)          # 1 s per request
    assert time.monotonic() - started < 3
    assert result.status is Status.ERROR and result.error and result.error.type == "timeout"


@pytest.mark.servers
def test_growing_delay_counts_as_a_defence(tmp_path: Path) -> None:
    address, port = "127.61.2.34", 8082
    backend = start_server("login-delay", [sys.executable, str(LOGIN_BACKEND), "--bind", address,
                                           "--port", str(port), "--delay", "0.6"],
                           address, port, tmp_path)
    try:
        target = Target(name="delay", address=address, roles=[Role.WEB], login=LoginProbe(
            url=f"http://{address}:{port}/login", username=TEST_ACCOUNT, max_attempts=6))
        result = run_check("web.login_bruteforce", target, delay_growth_seconds=1.0)
    finally:
        backend.stop()
    assert result.status is Status.PASS, result
    assert result.summary.startswith("brute-force defence seen: answer delayed from 0.0 s to 1.")
    assert len(result.evidence.observed) == 3


def test_silent_plain_http_costs_one_timeout_for_all_paths() -> None:
    with silent_listener("127.61.2.35") as port:
        target = Target(name="silent", address="127.61.2.35", roles=[Role.WEB],
                        services=[Service(kind="http", port=port)])
        started = time.monotonic()
        result = run_check("web.https_redirect", target, timeout=4)   # five paths, 1 s each
    assert time.monotonic() - started < 3
    assert result.status is Status.ERROR and result.error and result.error.type == "timeout"


def test_web_ports_are_named_without_waiting_out_a_silent_plain_server(
        weak_site: WebServer) -> None:
    # nginx answers a ClientHello on its plain port at once; a server that answers only a
    # whole request head (Apache, asyncio) stays silent to one, which is not waited out
    with hostile_listener(weak_site.address, Mode.WHOLE_REQUEST_HTTP) as patient:
        started = time.monotonic()
        found = {port: identify(weak_site.address, port, hint, 10.0) for port, hint in
                 ((weak_site.http_port, "http"), (weak_site.https_port, "https"),
                  (patient.port, "http"))}
        took = time.monotonic() - started
    assert {port: (s.kind, s.tls, s.confirmed) for port, s in found.items()} == {
        weak_site.http_port: ("http", False, True), weak_site.https_port: ("https", True, False),
        patient.port: ("http", False, True)}
    assert took < 1.5, f"the silent ClientHello was waited out: {took:.1f} s"
