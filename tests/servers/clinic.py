"""A whole small clinic of real servers, weak and hardened side by side: databases, web,
PACS, HL7, FHIR and two SSH hosts, with the inventory an assessor would write for them.

Used by the end-to-end test (`tests/test_clinic.py`) and the benchmark (`bench/clinic_run.py`).
Every server is on an address of 127.69.0.0/24 (this module's own range), but for the two
PACS, each in a network namespace of its own on a /30 of 198.18.69.0/24 (Orthanc binds
every address).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tests.servers.base import ServerProcess
from tests.servers.fhir import start_fhir
from tests.servers.mariadb import start_mariadb
from tests.servers.memcached import start_memcached
from tests.servers.mllp import start_mllp
from tests.servers.netns import create_namespace
from tests.servers.nginx import start_web_server
from tests.servers.orthanc import HARDENED as ORTHANC_HARDENED
from tests.servers.orthanc import WEAK as ORTHANC_WEAK
from tests.servers.orthanc import inventory_target_yaml, start_orthanc
from tests.servers.pki import make_ca, make_server_cert
from tests.servers.postgres import DatabaseCA, start_postgres
from tests.servers.redis_server import start_redis
from tests.servers.sshd import start_ssh_host

NETWORK = "127.69.0.0/24"
# The PACS network namespaces' pairs (tests/servers/netns.py), one /30 each, and this
# machine's ends. Nothing else of 198.18.69.0/24 exists: no test addresses it.
PACS_NETWORKS = ("198.18.69.0/30", "198.18.69.4/30")
PACS_HOST_SIDE = {"weak": "198.18.69.1", "hardened": "198.18.69.5"}
ADDRESSES = {
    "db-weak": "127.69.0.10", "db-hardened": "127.69.0.11",
    "web-weak": "127.69.0.20", "web-hardened": "127.69.0.21",
    "pacs-weak": "198.18.69.2", "pacs-hardened": "198.18.69.6",
    "hl7-weak": "127.69.0.40", "hl7-hardened": "127.69.0.41",
    "fhir-weak": "127.69.0.42", "fhir-hardened": "127.69.0.43",
    "host-weak": "127.69.0.50", "host-hardened": "127.69.0.51",
}
MARIADB_PASSWORD_ENV = "MIS_AUDIT_CLINIC_MARIADB_PASSWORD"
HL7_PORT, FHIR_PORT, SSH_PORT = 2575, 8443, 2222
FHIR_TOKEN = "clinic-test-only-token"
# Evidence an assessor is handed; the text holds the sections the controls look for.
EVIDENCE_TEXT = ("Incident response plan. Breach handling, isolation of systems, digital "
                 "forensics, notification within 72 hours, penetration test findings.\n")


@dataclass
class Clinic:
    """The running servers and the inventory that describes them."""

    work: Path
    inventory: Path
    stoppers: list[Callable[[], None]] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def targets(self) -> list[str]:
        """The inventory's target names."""
        return list(ADDRESSES)


def _stop_all(stoppers: list[Callable[[], None]]) -> None:
    for stop in reversed(stoppers):
        with contextlib.suppress(Exception):
            stop()


def _ca_for(work: Path, name: str, addresses: list[str]) -> tuple[Path, dict[str, Any]]:
    ca_files, ca_cert, ca_key = make_ca(work / name, f"clinic {name} CA")
    certs = {address: make_server_cert(work / name, address, [address], ca=(ca_cert, ca_key))
             for address in addresses}
    return ca_files.cert, certs


def _databases(work: Path, stoppers: list[Callable[[], None]]) -> tuple[Path, str | None]:
    weak, hardened = ADDRESSES["db-weak"], ADDRESSES["db-hardened"]
    ca_file, certs = _ca_for(work, "db-pki", [hardened])
    ca = DatabaseCA(ca_file, certs)
    for start in (start_postgres, start_redis):
        stoppers.append(start("weak", weak).stop)
        stoppers.append(start("hardened", hardened, ca).stop)
    stoppers.append(start_mariadb("weak", weak).stop)
    mariadb = start_mariadb("hardened", hardened, ca)
    stoppers.append(mariadb.stop)
    stoppers.append(start_memcached("weak", weak).stop)
    stoppers.append(start_memcached("hardened", hardened).stop)
    return ca_file, mariadb.password


def _web(work: Path, stoppers: list[Callable[[], None]]) -> tuple[Path, dict[str, Any]]:
    sites = {}
    for variant in ("weak", "hardened"):
        site = start_web_server(work / f"web-{variant}", variant, ADDRESSES[f"web-{variant}"])
        stoppers.append(site.stop)
        sites[variant] = site
    return sites["hardened"].ca_file, sites


def _pacs(work: Path, stoppers: list[Callable[[], None]]) -> dict[str, ServerProcess]:
    """Each Orthanc in a network namespace of its own, on the standard ports (DICOM 4242,
    HTTP 8042; the hardened one's HTTP API behind an HTTPS proxy on 8042), so that a scan
    of one target never sees another's PACS."""
    servers = {}
    variants = (("weak", replace(ORTHANC_WEAK, http_port=8042, dicom_port=4242)),
                ("hardened", replace(ORTHANC_HARDENED, dicom_port=4242, proxy_port=8042)))
    for variant, config in variants:
        namespace = create_namespace(f"mispacs{variant[0]}", PACS_HOST_SIDE[variant],
                                     ADDRESSES[f"pacs-{variant}"])
        stoppers.append(namespace.remove)
        server = start_orthanc(config, namespace.address, work / f"pacs-{variant}",
                               namespace=namespace)
        stoppers.append(server.stop)
        servers[variant] = server
    return servers


def _interfaces(work: Path, stoppers: list[Callable[[], None]]) -> Path:
    hardened = [ADDRESSES["hl7-hardened"], ADDRESSES["fhir-hardened"]]
    ca_file, certs = _ca_for(work, "interface-pki", hardened)
    token = work / "fhir-token"
    token.write_text(FHIR_TOKEN + "\n")
    hl7, fhir = certs[ADDRESSES["hl7-hardened"]], certs[ADDRESSES["fhir-hardened"]]
    stoppers.extend([
        start_mllp("hl7-weak", ADDRESSES["hl7-weak"], HL7_PORT, work / "hl7-weak").stop,
        start_mllp("hl7-hardened", ADDRESSES["hl7-hardened"], HL7_PORT, work / "hl7-hardened",
                   hl7.cert, hl7.key).stop,
        start_fhir("fhir-weak", ADDRESSES["fhir-weak"], FHIR_PORT, work / "fhir-weak").stop,
        start_fhir("fhir-hardened", ADDRESSES["fhir-hardened"], FHIR_PORT, work / "fhir-hardened",
                   token, fhir.cert, fhir.key).stop,
    ])
    return ca_file


def _ssh_hosts(work: Path, stoppers: list[Callable[[], None]]) -> dict[str, Any]:
    hosts = {}
    for variant in ("weak", "hardened"):
        host = start_ssh_host(variant, work / f"host-{variant}", ADDRESSES[f"host-{variant}"],
                              SSH_PORT)
        stoppers.append(host.stop)
        hosts[variant] = host
    return hosts


def _evidence(work: Path) -> str:
    recent = date.today() - timedelta(days=30)
    lines = []
    for name in ("pentest_report", "incident_response_plan", "training_records"):
        path = work / "evidence" / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(EVIDENCE_TEXT)
        lines.append(f"  {name}: {{file: {path}, date: {recent.isoformat()}, "
                     f"issued_by: Test Auditors LLP}}")
    return "\n".join(lines)


def _inventory(trust: Path, sites: dict[str, Any], pacs: dict[str, ServerProcess],
               hosts: dict[str, Any], evidence: str) -> str:
    web = "".join(
        f"  - name: web-{variant}\n    address: {site.address}\n    roles: [web]\n"
        f"    urls: [\"{site.https_url}\"]\n"
        f"    login: {{url: \"{site.login_url}\", username: audit.probe, max_attempts: 5}}\n"
        for variant, site in sites.items())
    ssh = "".join(
        f"  host-{variant}: {{type: ssh, user: auditor, key_file: {host.key_file}, "
        f"known_hosts: {host.known_hosts}, port: {SSH_PORT}, sudo: true}}\n"
        for variant, host in hosts.items())
    return f"""organisation: City Clinic No. 5 (test servers)
system: MedInfo MIS 4.2
scope: {{networks: [{", ".join((NETWORK, *PACS_NETWORKS))}]}}
credentials:
  mariadb-root: {{type: basic, user: root, password_env: {MARIADB_PASSWORD_ENV}}}
{ssh}trust: {{ca_file: {trust}}}
targets:
  - {{name: db-weak, address: {ADDRESSES['db-weak']}, roles: [db]}}
  - name: db-hardened
    address: {ADDRESSES['db-hardened']}
    roles: [db]
    services:
      - {{kind: postgresql, port: 5432}}
      - {{kind: mariadb, port: 3306, credential: mariadb-root}}
      - {{kind: redis, port: 6379, tls: true}}
{web}{inventory_target_yaml("pacs-weak", pacs["weak"])}{inventory_target_yaml("pacs-hardened", pacs["hardened"])}\
  - {{name: hl7-weak, address: {ADDRESSES['hl7-weak']}, roles: [hl7], services: [{{kind: hl7, port: {HL7_PORT}}}]}}
  - {{name: hl7-hardened, address: {ADDRESSES['hl7-hardened']}, roles: [hl7], services: [{{kind: hl7, port: {HL7_PORT}, tls: true}}]}}
  - {{name: fhir-weak, address: {ADDRESSES['fhir-weak']}, roles: [fhir], urls: ["http://{ADDRESSES['fhir-weak']}:{FHIR_PORT}/"]}}
  - {{name: fhir-hardened, address: {ADDRESSES['fhir-hardened']}, roles: [fhir], urls: ["https://{ADDRESSES['fhir-hardened']}:{FHIR_PORT}/"]}}
  - {{name: host-weak, address: {ADDRESSES['host-weak']}, roles: [host], ssh: host-weak}}
  - {{name: host-hardened, address: {ADDRESSES['host-hardened']}, roles: [host], ssh: host-hardened}}
evidence:
{evidence}
"""


@contextlib.contextmanager
def running_clinic(work: Path) -> Iterator[Clinic]:
    """Start every server, write the inventory, stop everything by PID afterwards."""
    work.mkdir(parents=True, exist_ok=True)
    stoppers: list[Callable[[], None]] = []
    try:
        db_ca, mariadb_password = _databases(work, stoppers)
        web_ca, sites = _web(work, stoppers)
        pacs = _pacs(work, stoppers)
        interface_ca = _interfaces(work, stoppers)
        hosts = _ssh_hosts(work, stoppers)
        trust = work / "trust.pem"
        anchors = [db_ca, web_ca, interface_ca, pacs["hardened"].extra["ca_file"]]
        trust.write_text("".join(Path(str(path)).read_text() for path in anchors))
        inventory = work / "inventory.yaml"
        inventory.write_text(_inventory(trust, sites, pacs, hosts, _evidence(work)))
        yield Clinic(work, inventory, stoppers, {MARIADB_PASSWORD_ENV: mariadb_password or ""})
    finally:
        _stop_all(stoppers)
