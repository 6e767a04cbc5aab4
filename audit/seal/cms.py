"""Verifying the detached CMS signature with Debian's `openssl cms -verify`.

cryptography builds CMS signatures but does not verify them, so the check is the one a
verifier without mis-audit runs: `openssl cms -verify -binary -attime SIGNING_TIME`. The signing
time is read from the signature's signed attributes (authenticated once the signature
verifies): the chain is judged as it stood when the run was sealed, so a certificate that has
expired since still verifies, and is reported.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from audit.seal import SealError

OPENSSL_TIMEOUT = 60
_TIME_LINE = re.compile(r"(?:UTCTIME|GENERALIZEDTIME):(?P<value>.+)")
# What openssl's reasons mean to someone who is not reading OpenSSL's source.
_REASONS = (
    ("unable to get local issuer certificate", ("the signer's certificate does not chain to "
                                               "the trust anchors")),
    ("self-signed certificate in certificate chain", ("the signer's certificate does not "
                                                      "chain to the trust anchors (its chain "
                                                      "ends at another, self-signed CA)")),
    ("self-signed certificate", ("the signer's certificate is self-signed: it does not "
                                "chain to the trust anchors")),
    ("certificate has expired", ("the signer's certificate had expired when the run was "
                                "sealed")),
    ("certificate is not yet valid", ("the signer's certificate was not yet valid when the "
                                     "run was sealed")),
    ("content verify error", "the signature does not match manifest.json (it was changed)"),
    ("digest failure", "the signature does not match manifest.json (it was changed)"),
    ("verification failure", "the signature does not match manifest.json (it was changed)"),
)


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature that verified: when it was made, and by whom."""

    signed_at: datetime
    signer: x509.Certificate


def openssl() -> str:
    """The openssl binary; SealError when it is not installed."""
    found = shutil.which("openssl")
    if found is None:
        raise SealError("openssl is not installed (Debian: apt-get install openssl); it "
                        "verifies the signature")
    return found


def _run(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([openssl(), *arguments], capture_output=True, text=True,
                              timeout=OPENSSL_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SealError(f"openssl could not run: {error}") from None


def signing_time(signature: Path) -> datetime:
    """The signingTime signed attribute of the (single) signer."""
    done = _run(["cms", "-cmsout", "-print", "-inform", "DER", "-in", str(signature)])
    if done.returncode != 0:
        raise SealError(f"{signature.name} is not a CMS signature")
    lines = done.stdout.splitlines()
    times = [index for index, line in enumerate(lines) if "signingTime" in line]
    if len(times) != 1:
        raise SealError(f"{signature.name} has {len(times)} signing times, expected one")
    for line in lines[times[0] + 1:times[0] + 4]:
        match = _TIME_LINE.search(line)
        if match:
            value = " ".join(match["value"].split())
            try:
                return datetime.strptime(value, "%b %d %H:%M:%S %Y GMT").replace(tzinfo=UTC)
            except ValueError:
                break
    raise SealError(f"{signature.name}: cannot read its signing time")


def _reason(stderr: str) -> str:
    lowered = stderr.lower()
    for needle, reason in _REASONS:
        if needle in lowered:
            return reason
    last = [line for line in stderr.splitlines() if line.strip()]
    return f"openssl: {last[-1].strip() if last else 'verification failed'}"


def verify_signature(signature: Path, content: Path, ca_file: Path | None) -> VerifiedSignature:
    """Check the signature over `content` and the signer's chain at the signing time.

    Trust anchors: `ca_file`, else openssl's default store. Raises SealError with the reason."""
    signed_at = signing_time(signature)
    with tempfile.TemporaryDirectory(prefix="mis-audit-verify-") as scratch:
        signer_file = Path(scratch) / "signer.pem"
        # -purpose any: national CAs' signing certificates carry no S/MIME purpose;
        # `seal` has checked the key usage allows signing.
        arguments = ["cms", "-verify", "-binary", "-inform", "DER", "-in", str(signature),
                     "-content", str(content), "-purpose", "any",
                     "-attime", str(int(signed_at.timestamp())),
                     "-signer", str(signer_file), "-out", str(Path(scratch) / "content")]
        if ca_file is not None:
            arguments += ["-CAfile", str(ca_file)]
        done = _run(arguments)
        if done.returncode != 0:
            raise SealError(f"signature: {_reason(done.stderr)}")
        signers = x509.load_pem_x509_certificates(signer_file.read_bytes())
    return VerifiedSignature(signed_at, signers[0])
