"""`mis-audit seal` and `verify` on a real run, with certificates from a throwaway CA; the
signature checked by Debian's openssl as a verifier without mis-audit would."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from sealing import P12_PASSWORD, Assessor, SealPki, make_pki, make_run, mis_audit

from audit.seal import MANIFEST_FILE, SEAL_FILES, SIGNATURE_FILE

PASSWORD_ENV = {"ASSESSOR_P12_PASSWORD": P12_PASSWORD}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SealPki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path)


def seal_p12(run_dir: Path, assessor: Assessor, password: str = P12_PASSWORD,
             ) -> subprocess.CompletedProcess[str]:
    return mis_audit("seal", str(run_dir), "--cert", str(assessor.p12), "--password-env",
                     "ASSESSOR_P12_PASSWORD", "--assessor", "Aigerim Nurlanova", "--licence",
                     "KZ-MED-0042", cwd=run_dir.parent,
                     env={"ASSESSOR_P12_PASSWORD": password})


def verify(run_dir: Path, ca: Path) -> subprocess.CompletedProcess[str]:
    return mis_audit("verify", str(run_dir), "--ca", str(ca), cwd=run_dir.parent)


def digests(directory: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.iterdir())}


def one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


def test_seal_adds_its_files_and_changes_none(run_dir: Path, pki: SealPki) -> None:
    before = digests(run_dir)
    done = seal_p12(run_dir, pki.rsa)
    assert done.returncode == 0, done.stderr
    after = digests(run_dir)
    assert {name: after[name] for name in before} == before
    assert set(after) - set(before) == SEAL_FILES
    assert all((run_dir / name).stat().st_mode & 0o777 == 0o600 for name in SEAL_FILES)
    statement = json.loads((run_dir / MANIFEST_FILE).read_text())
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    kinds = {subject["name"]: subject["annotations"]["kind"] for subject in statement["subject"]}
    assert kinds == {"report.html": "output", "results.json": "output",
                     "results.csv": "output", "inventory.yaml": "input",
                     "evidence/irp.txt": "evidence"}
    predicate = statement["predicate"]
    assert predicate["assessor"] == {"name": "Aigerim Nurlanova", "licence": "KZ-MED-0042"}
    assert {p["id"] for p in predicate["profiles"]} >= {"seal-test"}
    text = (run_dir / "seal.txt").read_text()
    manifest_digest = hashlib.sha256((run_dir / MANIFEST_FILE).read_bytes()).hexdigest()
    assert "KZ-MED-0042" in text and manifest_digest in text
    assert manifest_digest in (run_dir / "seal.html").read_text()
    # A second seal never replaces the first.
    again = seal_p12(run_dir, pki.rsa)
    assert again.returncode == 2
    one_line_error(again, "already sealed")
    assert digests(run_dir) == after


def test_sealed_run_verifies(run_dir: Path, pki: SealPki) -> None:
    assert seal_p12(run_dir, pki.rsa).returncode == 0
    done = verify(run_dir, pki.ca)
    assert done.returncode == 0, done.stderr
    assert "all 5 digests match" in done.stdout and "KZ-MED-0042" in done.stdout


def test_pem_ecdsa_certificate_seals(run_dir: Path, pki: SealPki) -> None:
    done = mis_audit("seal", str(run_dir), "--cert", str(pki.ecdsa.cert), "--key",
                     str(pki.ecdsa.key), "--licence", "KZ-MED-0042", "--ca", str(pki.ca),
                     cwd=run_dir.parent)
    assert done.returncode == 0, done.stderr
    assert "Aigerim Nurlanova" in done.stdout     # the certificate's name, when not given
    assert verify(run_dir, pki.ca).returncode == 0


def test_plain_openssl_and_sha256sum_accept_the_seal(run_dir: Path, pki: SealPki) -> None:
    """The README's check, with no mis-audit: the signature, then every digest."""
    assert seal_p12(run_dir, pki.rsa).returncode == 0
    openssl = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in",
                              SIGNATURE_FILE, "-content", MANIFEST_FILE, "-CAfile", str(pki.ca),
                              "-purpose", "any", "-out", "/dev/null"],
                             cwd=run_dir, capture_output=True, text=True, check=False)
    assert openssl.returncode == 0, openssl.stderr
    assert "Verification successful" in openssl.stderr
    statement = json.loads((run_dir / MANIFEST_FILE).read_text())
    sums = "".join(f"{s['digest']['sha256']}  {s['annotations'].get('path', s['name'])}\n"
                   for s in statement["subject"])
    check = subprocess.run(["sha256sum", "-c", "-"], input=sums, cwd=run_dir,
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("name", ["report.html", "results.json", "evidence/irp.txt"])
def test_one_changed_byte_fails_verify_naming_the_file(run_dir: Path, pki: SealPki,
                                                      name: str) -> None:
    assert seal_p12(run_dir, pki.rsa).returncode == 0
    path = run_dir / name if (run_dir / name).exists() else run_dir.parent / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    done = verify(run_dir, pki.ca)
    assert done.returncode == 1
    one_line_error(done, "FAILED", name, "differs")


def test_changed_manifest_fails_the_signature(run_dir: Path, pki: SealPki) -> None:
    assert seal_p12(run_dir, pki.rsa).returncode == 0
    manifest = run_dir / MANIFEST_FILE
    manifest.write_text(manifest.read_text().replace("KZ-MED-0042", "KZ-MED-0043"))
    done = verify(run_dir, pki.ca)
    assert done.returncode == 1
    one_line_error(done, "FAILED: signature", "does not match manifest.json")


def test_certificate_of_another_ca_does_not_verify(run_dir: Path, pki: SealPki) -> None:
    assert seal_p12(run_dir, pki.stranger).returncode == 0
    done = verify(run_dir, pki.ca)
    assert done.returncode == 1
    one_line_error(done, "FAILED: signature", "does not chain to the trust anchors")
    # Checked before sealing when the assessor names the anchors: nothing is written.
    other = make_run(run_dir.parent / "second")
    before = digests(other)
    done = mis_audit("seal", str(other), "--cert", str(pki.stranger.cert), "--key",
                     str(pki.stranger.key), "--licence", "1", "--ca", str(pki.ca), cwd=other)
    assert done.returncode == 2
    one_line_error(done, "does not chain")
    assert digests(other) == before


def test_expired_certificate_cannot_seal(run_dir: Path, pki: SealPki) -> None:
    before = digests(run_dir)
    done = seal_p12(run_dir, pki.expired)
    assert done.returncode == 2
    one_line_error(done, "expired on", "cannot seal")
    assert digests(run_dir) == before


def test_wrong_password_is_one_clear_line(run_dir: Path, pki: SealPki) -> None:
    done = seal_p12(run_dir, pki.rsa, password="wrong")
    assert done.returncode == 2
    one_line_error(done, "rsa.p12", "wrong password")
    unset = mis_audit("seal", str(run_dir), "--cert", str(pki.rsa.p12), "--licence", "1",
                      cwd=run_dir.parent)
    assert unset.returncode == 2
    one_line_error(unset, "needs a password", "--password-env")


def test_evidence_changed_since_the_run_cannot_be_sealed(run_dir: Path, pki: SealPki) -> None:
    (run_dir.parent / "evidence/irp.txt").write_text("another plan\n")
    done = seal_p12(run_dir, pki.rsa)
    assert done.returncode == 2
    one_line_error(done, "evidence/irp.txt", "changed since the run")
    assert not (run_dir / MANIFEST_FILE).exists()


def test_unsealed_run_and_added_files(run_dir: Path, pki: SealPki) -> None:
    done = verify(run_dir, pki.ca)
    assert done.returncode == 1
    one_line_error(done, "not sealed")
    assert seal_p12(run_dir, pki.rsa).returncode == 0
    (run_dir / "notes.txt").write_text("added later\n")
    done = verify(run_dir, pki.ca)
    assert done.returncode == 0
    assert "notes.txt was added after sealing" in done.stderr
