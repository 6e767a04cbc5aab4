"""A small real run (one offline host tree, one evidence document) and assessor certificates
issued by a throwaway CA, for the seal, verify and OSCAL tests."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from host_trees import WEAK, make_host

from tests.servers.pki import make_ca

P12_PASSWORD = "correct horse"
PROFILE = """id: seal-test
title: Seal test
version: "1"
controls:
  - id: T-ROOT
    title: Root may not log in over SSH
    severity: high
    checks: [{check: host.ssh_root_login}]
  - id: T-PASSWORD
    title: No password logins over SSH
    severity: medium
    checks: [{check: host.ssh_password_auth}]
  - id: T-IRP
    title: An incident response plan is on file
    severity: medium
    checks: [{check: evidence.document, with: {document: irp}}]
"""
INVENTORY = """organisation: Sealed Clinic
system: MedInfo 4.2
targets:
  - {name: image, roles: [host], root: host}
evidence:
  irp: {file: evidence/irp.txt, issued_by: CERT-KZ}
"""


def mis_audit(*args: str, cwd: Path, env: dict[str, str] | None = None,
              ) -> subprocess.CompletedProcess[str]:
    """The CLI as a real process, with no terminal to prompt on."""
    return subprocess.run([sys.executable, "-m", "audit.cli", *args], cwd=cwd, text=True,
                          check=False, capture_output=True, stdin=subprocess.DEVNULL, timeout=120,
                          env={**os.environ, "MIS_AUDIT_HISTORY": "off", **(env or {})})


def write_inputs(directory: Path, waivers: str | None = None) -> list[str]:
    """Profile, inventory, host tree and evidence under `directory`; the run's arguments."""
    make_host(directory / "host", WEAK)
    (directory / "evidence").mkdir()
    (directory / "evidence/irp.txt").write_text("Incident response plan: isolation, "
                                                "forensics, notification.\n")
    (directory / "profile.yaml").write_text(PROFILE)
    (directory / "inventory.yaml").write_text(INVENTORY)
    arguments = ["-p", "./profile.yaml", "-i", "inventory.yaml"]
    if waivers is not None:
        (directory / "waivers.yaml").write_text(waivers)
        arguments += ["-w", "waivers.yaml"]
    return arguments


def make_run(directory: Path, formats: str = "json,html,csv") -> Path:
    """A finished run directory (not ready: the weak host fails) at `directory/run`."""
    done = mis_audit("run", *write_inputs(directory), "-o", "run", "-q", "--format", formats,
                     cwd=directory)
    assert done.returncode == 1, done.stderr
    return directory / "run"


@dataclass(frozen=True)
class Assessor:
    """One assessor certificate in both forms the seal reads."""

    p12: Path
    cert: Path
    key: Path


def issue_assessor(directory: Path, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
                   stem: str, expired: bool = False, use_rsa: bool = True) -> Assessor:
    """An assessor signing certificate issued by `ca`: PKCS#12 (with the CA) and PEM."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048) if use_rsa
        else ec.generate_private_key(ec.SECP256R1()))
    ca_cert, ca_key = ca
    now = dt.datetime.now(dt.UTC)
    start, end = ((now - dt.timedelta(days=400), now - dt.timedelta(days=30)) if expired
                  else (now - dt.timedelta(days=1), now + dt.timedelta(days=90)))
    usage = x509.KeyUsage(digital_signature=True, content_commitment=True,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=False, crl_sign=False, encipher_only=False,
                          decipher_only=False)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Aigerim Nurlanova")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .add_extension(usage, critical=True)
            .sign(ca_key, hashes.SHA256()))
    files = Assessor(directory / f"{stem}.p12", directory / f"{stem}.pem",
                     directory / f"{stem}.key")
    files.p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"assessor", key, cert, [ca_cert],
        serialization.BestAvailableEncryption(P12_PASSWORD.encode())))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return files


@dataclass(frozen=True)
class SealPki:
    """Two CAs and the assessor certificates the tests use."""

    ca: Path
    other_ca: Path
    rsa: Assessor           # valid, RSA, issued by `ca`
    ecdsa: Assessor         # valid, ECDSA
    expired: Assessor
    stranger: Assessor      # valid, issued by `other_ca`


def make_pki(directory: Path) -> SealPki:
    """Every certificate under `directory`."""
    files, ca_cert, ca_key = make_ca(directory / "ca", "Test NCA")
    other, other_cert, other_key = make_ca(directory / "other", "Another CA")
    return SealPki(files.cert, other.cert,
                   issue_assessor(directory, (ca_cert, ca_key), "rsa"),
                   issue_assessor(directory, (ca_cert, ca_key), "ecdsa", use_rsa=False),
                   issue_assessor(directory, (ca_cert, ca_key), "expired", expired=True),
                   issue_assessor(directory, (other_cert, other_key), "stranger"))
