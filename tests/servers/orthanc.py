"""Orthanc PACS for the tests, weak and hardened, with synthetic studies (fake names only).

Orthanc has no bind-address option and listens on every interface, so each variant gets its
own unusual HTTP and DICOM ports (checked free on the wildcard address before starting);
tests reach it through an address of this helper's loopback range.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from dataclasses import dataclass, replace
from io import BytesIO
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from audit.model.inventory import Service, Target
from audit.vocabulary import Role
from tests.servers.base import (
    ServerProcess,
    port_is_free,
    require_binary,
    start_server,
    wait_for_port,
)
from tests.servers.mllp import ca_signed_cert
from tests.servers.netns import Namespace
from tests.servers.nginx import start_tls_proxy
from tests.servers.pki import CertFiles

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
ADMIN_USER, ADMIN_PASSWORD = "pacsadmin", "test-only-orthanc-secret"
KNOWN_MODALITY_AE = "KNOWN-CT"


@dataclass(frozen=True)
class OrthancVariant:
    """The ports and AE title of one test instance, and whether it is hardened."""

    name: str
    http_port: int
    dicom_port: int
    ae_title: str
    hardened: bool
    # Hardened but for C-ECHO, which Orthanc then answers for any calling AE.
    echo_for_anyone: bool = False
    dicom_tls: bool = False
    # The HTTP API (REST, DICOMweb) over TLS, through nginx on the HTTP port + 100: Debian's
    # Orthanc 1.10 crashes on its own HTTPS requests. Its plain port stays open (Orthanc
    # binds every address), on a port no scan of common ports covers.
    https: bool = False
    proxy_port: int | None = None   # where the HTTPS proxy listens (default: HTTP port + 100)
    # Orthanc's sample user `orthanc`/`orthanc` left beside the administrator.
    sample_users: bool = False


WEAK = OrthancVariant("orthanc-weak", 18642, 14642, "ORTHANC", hardened=False)
HARDENED = OrthancVariant("orthanc-hardened", 18643, 14643, "HARDPACS", hardened=True,
                          dicom_tls=True, https=True)
ECHO_ONLY = OrthancVariant("orthanc-echo-only", 18644, 14644, "ECHOPACS", hardened=True,
                           echo_for_anyone=True, sample_users=True)

# Fake patients only: these names exist nowhere but in the tests.
SYNTHETIC_PATIENTS = (("TEST^ALPHA", "FAKE-0001"), ("TEST^BRAVO", "FAKE-0002"))


def https_port(variant: OrthancVariant) -> int:
    """Where the HTTPS proxy of a variant listens."""
    return variant.proxy_port or variant.http_port + 100


def pacs_cert(workdir: Path, address: str) -> CertFiles:
    """The PACS's certificate (DICOM TLS and the HTTPS proxy), from its own CA in pki/."""
    cert_dir = workdir / "pki"
    if not (cert_dir / "pacs.pem").exists():
        ca_signed_cert(cert_dir, "pacs", address)
    return CertFiles(cert_dir / "pacs.pem", cert_dir / "pacs.key")


def orthanc_config(variant: OrthancVariant, workdir: Path, dicomweb: bool,
                   address: str) -> dict[str, object]:
    """The Orthanc JSON configuration of a variant."""
    config: dict[str, object] = {
        "Name": variant.name,
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "HttpPort": variant.http_port,
        "DicomPort": variant.dicom_port,
        "DicomAet": variant.ae_title,
        "RemoteAccessAllowed": True,
        "HttpsCACertificates": "",
        "Plugins": [DICOMWEB_PLUGIN] if dicomweb else [],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    if variant.dicom_tls:
        cert = pacs_cert(workdir, address)
        # Any client may handshake (certificates are the TLS checks' business); the AE rules
        # below still decide who may query.
        config |= {"DicomTlsEnabled": True, "DicomTlsCertificate": str(cert.cert),
                   "DicomTlsPrivateKey": str(cert.key),
                   "DicomTlsTrustedCertificates": str(workdir / "pki" / "ca.pem"),
                   "DicomTlsRemoteCertificateRequired": False}
    if variant.hardened:
        config |= {
            "AuthenticationEnabled": True,
            "RegisteredUsers": {ADMIN_USER: ADMIN_PASSWORD}
            | ({"orthanc": "orthanc"} if variant.sample_users else {}),
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowEcho": variant.echo_for_anyone,
            "DicomAlwaysAllowFind": False,
            "DicomAlwaysAllowStore": False,
            "DicomCheckModalityHost": True,
            "DicomModalities": {"known-ct": [KNOWN_MODALITY_AE, "127.62.0.250", 11112]},
        }
    else:
        config |= {
            "AuthenticationEnabled": False,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowFind": True,
        }
    return config


def synthetic_instance(patient_name: str, patient_id: str) -> bytes:
    """A tiny Secondary Capture image of a fake patient, as a DICOM Part 10 file."""
    dataset = Dataset()
    dataset.PatientName = patient_name
    dataset.PatientID = patient_id
    dataset.StudyInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.SOPInstanceUID = generate_uid()
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.Modality = "OT"
    dataset.StudyDate = "20260101"
    dataset.Rows = dataset.Columns = 4
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = bytes(16)
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def upload_synthetic_studies(server: ServerProcess, variant: OrthancVariant) -> int:
    """POST one study per synthetic patient to /instances; the number of studies stored."""
    headers = {"Content-Type": "application/dicom"}
    if variant.hardened:
        token = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    for name, patient_id in SYNTHETIC_PATIENTS:
        request = urllib.request.Request(
            f"http://{server.address}:{variant.http_port}/instances",
            data=synthetic_instance(name, patient_id), headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            json.load(answer)
    return len(SYNTHETIC_PATIENTS)


def _free_ports(variant: OrthancVariant) -> OrthancVariant:
    """The variant on its own ports if free on every interface, else on the next free pair.

    Orthanc binds the wildcard address, so two test runs at once (a developer's and the
    whole suite) would collide on fixed ports; failing loudly only when all are taken.
    """
    for offset in range(0, 200, 10):
        ports = (variant.http_port + offset, variant.dicom_port + offset)
        wanted = [*ports, ports[0] + 100] if variant.https else list(ports)
        if all(port_is_free("0.0.0.0", port) for port in wanted):
            return replace(variant, http_port=ports[0], dicom_port=ports[1])
    raise RuntimeError(f"{variant.name}: ports {variant.http_port}/{variant.dicom_port} and "
                       "the next 19 pairs are all taken on this machine")


def start_orthanc(variant: OrthancVariant, address: str, workdir: Path,
                  dicomweb: bool = True, namespace: Namespace | None = None) -> ServerProcess:
    """Start a variant with its studies loaded; `extra` holds the ports, AE title, studies.
    In a network namespace of its own the variant keeps its ports and is reached at the
    namespace's address; otherwise it moves to free ports, at `address`."""
    binary = require_binary(ORTHANC)
    prefix = namespace.exec_prefix if namespace else []
    address = namespace.address if namespace else address
    variant = variant if namespace else _free_ports(variant)
    dicomweb = dicomweb and Path(DICOMWEB_PLUGIN).exists()
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "orthanc.json"
    config = orthanc_config(variant, workdir, dicomweb, address)
    config_file.write_text(json.dumps(config, indent=2))
    server = start_server(variant.name, [*prefix, binary, str(config_file)], address,
                          variant.http_port, workdir, own_network=namespace is not None)
    try:
        wait_for_port(address, variant.dicom_port, 30, server.process, server.log)
        studies = upload_synthetic_studies(server, variant)
        if variant.https:
            server.companions.append(start_tls_proxy(
                workdir / "proxy", address, https_port(variant), f"{address}:{variant.http_port}",
                pacs_cert(workdir, address), prefix))  # in the same namespace
    except Exception:
        server.stop()
        raise
    server.extra.update(http_port=variant.http_port, dicom_port=variant.dicom_port,
                        ae_title=variant.ae_title, dicom_tls=variant.dicom_tls,
                        https=variant.https, api_port=https_port(variant) if variant.https
                        else variant.http_port,
                        studies=studies, dicomweb=dicomweb, ca_file=workdir / "pki" / "ca.pem",
                        user=ADMIN_USER, password=ADMIN_PASSWORD)
    return server


def pacs_target(name: str, server: ServerProcess, ae_title: str | None = None) -> Target:
    """A started Orthanc as an inventory target: its DICOM and HTTP ports as services."""
    return Target(name=name, address=server.address, roles=[Role.PACS], services=[
        Service(kind="dicom", port=int(str(server.extra["dicom_port"])),
                ae_title=ae_title or str(server.extra["ae_title"]),
                tls=bool(server.extra["dicom_tls"])),
        Service(kind="pacs-http", port=int(str(server.extra["api_port"])),
                tls=bool(server.extra["https"]) or None)])


def inventory_target_yaml(name: str, server: ServerProcess) -> str:
    """The inventory entry (YAML) an assessor would write for a running instance."""
    extra = server.extra
    return (f"  - name: {name}\n    address: {server.address}\n    roles: [pacs]\n"
            f"    services:\n"
            f"      - {{kind: dicom, port: {extra['dicom_port']}, ae_title: {extra['ae_title']}, "
            f"tls: {str(extra['dicom_tls']).lower()}}}\n"
            f"      - {{kind: pacs-http, port: {extra['api_port']}"
            f"{', tls: true' if extra['https'] else ''}}}\n")
