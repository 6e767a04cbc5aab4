"""nginx in front of the login backend, in a weak and a hardened variant, for TLS and web tests.

weak:     plain HTTP served as is (no redirect), TLS 1.0-1.2 with an expired self-signed
          certificate, no HSTS, `server_tokens on`, autoindex with a public `exports/` directory
          holding a CSV of fake patients, a login backend without lockout.
hardened: HTTP answers 301 to https, TLS 1.2-1.3 with a certificate from the test CA, HSTS for a
          year, `X-Content-Type-Options: nosniff` and `X-Frame-Options: DENY`, `server_tokens
          off`, no exports, a login backend answering 429 after N failures.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from audit.engine import evaluate
from audit.facts.context import Environment, TargetContext
from audit.model.inventory import Scope, Target
from audit.model.results import Result
from audit.plan import PlanItem
from audit.profiles import PlannedCheck
from audit.registry import default_registry

from .base import ServerProcess, require_binary, start_server
from .pki import CertFiles, make_ca, make_server_cert

Variant = Literal["weak", "hardened"]
HTTP_PORT = 80
HTTPS_PORT = 443
BACKEND_PORT = 8081
LOCKOUT_AFTER = 3
LOGIN_BACKEND = Path(__file__).with_name("login_backend.py")

COMMON = """
worker_processes 1;
user root;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path {work}/tmp/body;
    proxy_temp_path {work}/tmp/proxy;
    fastcgi_temp_path {work}/tmp/fastcgi;
    uwsgi_temp_path {work}/tmp/uwsgi;
    scgi_temp_path {work}/tmp/scgi;
    ssl_certificate {cert};
    ssl_certificate_key {key};
{servers}
}}
"""

WEAK_SERVERS = """
    server_tokens on;
    server {{
        listen {address}:{http_port};
        listen {address}:{https_port} ssl;
        ssl_protocols TLSv1 TLSv1.1 TLSv1.2;
        ssl_ciphers 'ALL:!aNULL:!eNULL:@SECLEVEL=0';
        root {work}/www;
        location / {{ autoindex on; }}
        location = /login {{ proxy_pass http://{backend_address}:{backend_port}; }}
    }}
"""

HARDENED_SERVERS = """
    server_tokens off;
    server {{
        listen {address}:{http_port};
        return 301 https://$host$request_uri;
    }}
    server {{
        listen {address}:{https_port} ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;
        add_header X-Content-Type-Options "nosniff" always;
        add_header X-Frame-Options "DENY" always;
        root {work}/www;
        location = /login {{ proxy_pass http://{backend_address}:{backend_port}; }}
    }}
"""

# Fake patients; the IINs are made up but carry valid check digits, as a real leak would.
FAKE_PATIENTS = [("Aigerim Testova", "850312", "4"), ("Nurlan Primerov", "910704", "3"),
                 ("Dana Sample", "780101", "4")]


@dataclass
class WebServer:
    """A running nginx (and its login backend), and how to reach and trust it."""

    variant: Variant
    address: str
    http_port: int
    https_port: int
    ca_file: Path          # the anchor an auditor would be given (weak: none verifies it)
    nginx: ServerProcess
    backend: ServerProcess

    @property
    def https_url(self) -> str:
        """The site's HTTPS base URL."""
        return f"https://{self.address}:{self.https_port}/"

    @property
    def http_url(self) -> str:
        """The site's plain HTTP base URL."""
        return f"http://{self.address}:{self.http_port}/"

    @property
    def login_url(self) -> str:
        """The login form's URL."""
        return f"{self.https_url}login"

    def stop(self) -> None:
        """Stop nginx and the backend by PID."""
        self.nginx.stop()
        self.backend.stop()


def iin_check_digit(first_eleven: str) -> int | None:
    """The Kazakh IIN check digit of 11 digits (None when no valid one exists)."""
    digits = [int(char) for char in first_eleven]
    for weights in (range(1, 12), [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2]):
        remainder = sum(d * w for d, w in zip(digits, weights)) % 11
        if remainder != 10:
            return remainder
    return None


def fake_patients_csv() -> str:
    """A CSV of made-up patients with checksum-valid IINs, the weak site's leaked export."""
    rows = ["name,iin,phone,diagnosis"]
    serial = 1000
    for name, birth, century in FAKE_PATIENTS:
        check = None
        while check is None:
            serial += 1
            check = iin_check_digit(f"{birth}{century}{serial}")
        rows.append(f"{name},{birth}{century}{serial}{check},+7701555{serial},J18.9")
    return "\n".join(rows) + "\n"


def _site_files(work: Path, variant: Variant) -> None:
    www = work / "www"
    www.mkdir(parents=True)
    (www / "index.html").write_text("<!doctype html><title>Clinic</title><p>Clinic portal</p>")
    if variant == "weak":
        (www / "exports").mkdir()
        (www / "exports" / "patients-2026-01.csv").write_text(fake_patients_csv())
        (www / "exports" / "readme.txt").write_text("monthly exports\n")
    _temp_directories(work)


def _temp_directories(work: Path) -> None:
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / "tmp" / name).mkdir(parents=True)


TLS_PROXY = """
    server {{
        listen {address}:{port} ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{ proxy_pass http://{upstream}; proxy_set_header Host $host; {extra}}}
    }}
"""
# The classic CORS mistake of a web viewer's front: any Origin echoed, with credentials.
REFLECTED_CORS = ("add_header Access-Control-Allow-Origin $http_origin always; "
                  "add_header Access-Control-Allow-Credentials true always; ")


def start_tls_proxy(work: Path, address: str, port: int, upstream: str, cert: CertFiles,
                    prefix: list[str] | None = None, reflect_cors: bool = False) -> ServerProcess:
    """nginx terminating TLS (1.2 and 1.3) on address:port in front of `upstream` (host:port),
    started behind `prefix` (a network namespace's `ip netns exec`) if given; with
    `reflect_cors`, echoing any Origin with credentials allowed."""
    work.mkdir(parents=True, exist_ok=True)
    _temp_directories(work)
    servers = TLS_PROXY.format(address=address, port=port, upstream=upstream,
                               extra=REFLECTED_CORS if reflect_cors else "")
    return _start_nginx("tls-proxy", work, cert, servers, address, port, prefix or [])


def _start_nginx(name: str, work: Path, cert: CertFiles, servers: str, address: str, port: int,
                 prefix: list[str]) -> ServerProcess:
    """Write work/nginx.conf around `servers` and start nginx in the foreground, waiting for
    address:port; behind `prefix`, in a network of its own."""
    config = work / "nginx.conf"
    config.write_text(COMMON.format(work=work, cert=cert.cert, key=cert.key, servers=servers))
    argv = [*prefix, require_binary("/usr/sbin/nginx"), "-c", str(config), "-e",
            str(work / "error.log"), "-g", "daemon off;"]
    return start_server(name, argv, address, port, work, own_network=bool(prefix))


def _certificate(work: Path, variant: Variant, address: str) -> tuple[CertFiles, Path]:
    """The site's certificate (weak: expired and self-signed) and the test CA's file."""
    ca_files, ca_cert, ca_key = make_ca(work / "ca")
    if variant == "weak":
        return make_server_cert(work / "certs", "server", [address], expired=True), ca_files.cert
    issued = make_server_cert(work / "certs", "server", [address], ca=(ca_cert, ca_key))
    return issued, ca_files.cert


def start_web_server(work: Path, variant: Variant, address: str,
                     http_port: int = HTTP_PORT, https_port: int = HTTPS_PORT,
                     backend_port: int = BACKEND_PORT) -> WebServer:
    """Write the site, certificates and config under `work`, start backend and nginx. The
    weak site's login backend listens on the site's own address, in plain HTTP, as an
    exposed application server does; the hardened one's only where nginx reaches it."""
    require_binary("/usr/sbin/nginx")
    backend_address = address if variant == "weak" else private_address(address)
    work.mkdir(parents=True, exist_ok=True)
    _site_files(work, variant)
    cert, ca_file = _certificate(work, variant, address)
    lockout = [] if variant == "weak" else ["--lockout-after", str(LOCKOUT_AFTER)]
    backend = start_server(f"login-{variant}", [sys.executable, str(LOGIN_BACKEND), "--bind",
                                                backend_address, "--port", str(backend_port),
                                                *lockout],
                           backend_address, backend_port, work)
    servers = WEAK_SERVERS if variant == "weak" else HARDENED_SERVERS
    values = {"work": work, "address": address, "http_port": http_port,
              "https_port": https_port, "backend_port": backend_port,
              "backend_address": backend_address}
    try:
        nginx = _start_nginx(f"nginx-{variant}", work, cert, servers.format(**values), address,
                             https_port, [])
    except Exception:
        backend.stop()
        raise
    return WebServer(variant, address, http_port, https_port, ca_file, nginx, backend)


def private_address(address: str) -> str:
    """The loopback address standing for a site's private network: 100 above its own last
    byte (127.61.2.11 -> 127.61.2.111), an address no test target has."""
    network, _, last = address.rpartition(".")
    return f"{network}.{int(last) + 100}"


def run_check(check_id: str, target: Target, ca_file: Path | None = None,
              timeout: float = 10.0, **params: object) -> Result:
    """One registered check on one target through the engine, as a run would do it."""
    spec = default_registry().get(check_id)
    environment = Environment(base_dir=Path.cwd(), today=dt.date.today(), scope=Scope(),
                              ca_file=ca_file, timeout=timeout)
    item = PlanItem(control="TEST", check=PlannedCheck(spec, spec.params(**params)),
                    target=target.name)
    result = evaluate(item, TargetContext(target, environment))
    json.dumps(result.model_dump(mode="json"))      # evidence must serialise as it is
    return result


def site_fixture(variant: Variant, address: str) -> Any:
    """A module-scoped pytest fixture running one site on `address` for a test module."""

    @pytest.fixture(scope="module")
    def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
        server = start_web_server(tmp_path_factory.mktemp(f"{variant}-site"), variant, address)
        yield server
        server.stop()

    return site
