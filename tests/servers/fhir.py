"""A FHIR R4 stand-in for the tests (Debian packages no FHIR server): stdlib HTTP(S).

`/metadata` is public in both variants. The weak variant answers searches of Patient and the
clinical resource types to anyone and advertises no authorisation; the hardened one demands
`Authorization: Bearer <token>` and answers 401 otherwise, and advertises SMART on FHIR (in
its CapabilityStatement and at /.well-known/smart-configuration). The patients and their
observations are synthetic; a `_summary=count` search answers the total only. Run as a module (`python -m tests.servers.fhir ADDRESS PORT
[--token-file F] [--cert C --key K]`) by `start_fhir`, so the fixture stops it by PID.
"""

from __future__ import annotations

import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from tests.servers.base import ServerProcess, start_server
from tests.servers.mllp import listener_arguments, server_tls_context

REPOSITORY = Path(__file__).resolve().parents[2]
FHIR_JSON = "application/fhir+json"
SYNTHETIC_PATIENTS = [
    {"resourceType": "Patient", "id": "fake-1", "name": [{"family": "Test", "given": ["Alpha"]}]},
    {"resourceType": "Patient", "id": "fake-2", "name": [{"family": "Test", "given": ["Bravo"]}]},
]
CAPABILITY = {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
              "fhirVersion": "4.0.1", "format": ["json"]}
SMART = {"authorization_endpoint": "https://idp.invalid/authorize",
         "token_endpoint": "https://idp.invalid/token", "capabilities": ["launch-standalone"]}
HARDENED_CAPABILITY = CAPABILITY | {"rest": [{"mode": "server", "security": {
    "cors": False,
    "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                             "restful-security-service", "code": "SMART-on-FHIR"}]}],
    "extension": [{"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/"
                          "oauth-uris"}]}}]}
# Synthetic resources per type: the Patient search's and two observations.
RESOURCES = {"Patient": SYNTHETIC_PATIENTS,
             "Observation": [{"resourceType": "Observation", "id": f"fake-obs-{n}",
                              "status": "final"} for n in (1, 2)],
             "Encounter": [{"resourceType": "Encounter", "id": "fake-enc-1",
                            "status": "finished"}]}
CLINICAL_TYPES = ("Patient", "Observation", "Encounter", "DiagnosticReport", "Condition",
                  "MedicationRequest", "DocumentReference", "Immunization")


class FhirHandler(BaseHTTPRequestHandler):
    """Answers /metadata, the SMART configuration (hardened) and searches of the clinical
    resource types; everything else is 404."""

    server_version = "fhir-test-stand-in"

    def do_GET(self) -> None:
        """Serve one GET."""
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/")
        hardened = getattr(self.server, "token", None) is not None
        if path == "/metadata":
            self._send(200, HARDENED_CAPABILITY if hardened else CAPABILITY)
        elif path == "/.well-known/smart-configuration" and hardened:
            self._send(200, SMART)
        elif path.lstrip("/") in CLINICAL_TYPES:
            self._search(path.lstrip("/"), "_summary=count" in parts.query)
        else:
            self._send(404, _outcome("not-found", "no such resource"))

    def _search(self, resource: str, count_only: bool) -> None:
        token: str | None = getattr(self.server, "token", None)
        if token is not None and self.headers.get("Authorization") != f"Bearer {token}":
            self._send(401, _outcome("login", "a bearer token is required"),
                       {"WWW-Authenticate": 'Bearer realm="fhir"'})
            return
        found = RESOURCES.get(resource, [])
        bundle: dict[str, object] = {"resourceType": "Bundle", "type": "searchset",
                                     "total": len(found)}
        if found and not count_only:
            bundle["entry"] = [{"resource": found[0]}]
        self._send(200, bundle)

    def _send(self, status: int, document: dict[str, object],
              headers: dict[str, str] | None = None) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", FHIR_JSON)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the fixture's log is for start-up failures."""


def _outcome(code: str, text: str) -> dict[str, object]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": text}]}


class FhirServer(ThreadingHTTPServer):
    """The stand-in server; `token` set means Patient searches need it."""

    daemon_threads = True
    token: str | None = None
    tls_context: ssl.SSLContext | None = None

    def get_request(self) -> tuple[object, object]:  # type: ignore[override]
        """Accept; the TLS handshake then runs in the handler's thread, not the accept loop."""
        connection, peer = super().get_request()
        if self.tls_context is not None:
            connection = self.tls_context.wrap_socket(connection, server_side=True,
                                                      do_handshake_on_connect=False)
        return connection, peer


def start_fhir(name: str, address: str, port: int, workdir: Path, token_file: Path | None = None,
               cert: Path | None = None, key: Path | None = None) -> ServerProcess:
    """Start the stand-in as its own process (hardened when a token file is given)."""
    argv = [sys.executable, "-m", "tests.servers.fhir", address, str(port)]
    if token_file is not None:
        argv += ["--token-file", str(token_file)]
    if cert is not None and key is not None:
        argv += ["--cert", str(cert), "--key", str(key)]
    workdir.mkdir(parents=True, exist_ok=True)
    return start_server(name, argv, address, port, workdir, env={"PYTHONPATH": str(REPOSITORY)})


def main() -> None:
    """Serve until killed."""
    parser = listener_arguments(__doc__)
    parser.add_argument("--token-file")
    arguments = parser.parse_args()
    server = FhirServer((arguments.address, arguments.port), FhirHandler)
    if arguments.token_file:
        server.token = Path(arguments.token_file).read_text().strip()
    server.tls_context = server_tls_context(arguments)
    server.serve_forever()


if __name__ == "__main__":
    main()
