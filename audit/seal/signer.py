"""The assessor's signing identity (PKCS#12, or PEM certificate and key) and the signature.

National CAs issue signing keys as PKCS#12 files (Kazakhstan's NCA: RSA keys as .p12); their
GOST keys cannot be read by any library on these machines and are refused by name. The
password comes from an environment variable or a prompt, never from the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

from audit.seal import SealError

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PasswordSource = Callable[[], bytes]
PKCS12_SUFFIXES = (".p12", ".pfx")
UNSUPPORTED_KEY = ("only RSA and ECDSA keys can sign (GOST keys, such as NCA's GOST "
                   "certificates, are not supported: use the NCA RSA signing key)")


@dataclass(frozen=True)
class SigningIdentity:
    """A certificate, its private key and the intermediate certificates that came with it."""

    certificate: x509.Certificate
    key: SigningKey
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def common_name(self) -> str:
        """The subject's CN, else the whole subject."""
        names = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else self.certificate.subject.rfc4514_string()

    def summary(self) -> dict[str, str]:
        """What the manifest says about the certificate."""
        cert = self.certificate
        return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
                "serial": format(cert.serial_number, "x"),
                "sha256": cert.fingerprint(hashes.SHA256()).hex(),
                "not_before": cert.not_valid_before_utc.isoformat(),
                "not_after": cert.not_valid_after_utc.isoformat()}


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise SealError(f"{path}: {error.strerror or error}") from None


def _signing_key(key: object, path: Path) -> SigningKey:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return key
    raise SealError(f"{path}: {UNSUPPORTED_KEY}")


def load_pkcs12(path: Path, password: PasswordSource) -> SigningIdentity:
    """Key, certificate and chain from a PKCS#12 file; an unprotected file asks nothing."""
    data = _read(path)
    try:
        loaded = pkcs12.load_pkcs12(data, None)
    except (ValueError, UnsupportedAlgorithm):
        try:
            loaded = pkcs12.load_pkcs12(data, password())
        except UnsupportedAlgorithm:
            raise SealError(f"{path}: {UNSUPPORTED_KEY}") from None
        except ValueError:
            raise SealError(f"{path}: wrong password, or not a PKCS#12 file") from None
    if loaded.key is None or loaded.cert is None:
        raise SealError(f"{path}: holds no private key with its certificate")
    return SigningIdentity(loaded.cert.certificate, _signing_key(loaded.key, path),
                           tuple(extra.certificate for extra in loaded.additional_certs))


def load_pem(cert_path: Path, key_path: Path, password: PasswordSource) -> SigningIdentity:
    """A PEM certificate (the signer's first, then any intermediates) and its PEM key."""
    try:
        certificates = x509.load_pem_x509_certificates(_read(cert_path))
    except ValueError:
        raise SealError(f"{cert_path}: not a PEM certificate") from None
    raw_key = _read(key_path)
    try:
        try:
            key = serialization.load_pem_private_key(raw_key, None)
        except TypeError:           # encrypted: only now is a password needed
            key = serialization.load_pem_private_key(raw_key, password())
    except UnsupportedAlgorithm:
        raise SealError(f"{key_path}: {UNSUPPORTED_KEY}") from None
    except ValueError:
        raise SealError(f"{key_path}: wrong password, or not a PEM private key") from None
    return SigningIdentity(certificates[0], _signing_key(key, key_path), tuple(certificates[1:]))


def _public(key: object) -> bytes:
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def check_usable(identity: SigningIdentity, now: datetime) -> None:
    """The certificate is valid now, may sign, and belongs to the key; SealError otherwise."""
    cert = identity.certificate
    if _public(cert.public_key()) != _public(identity.key.public_key()):
        raise SealError("the private key does not belong to the certificate")
    if now < cert.not_valid_before_utc:
        raise SealError(f"certificate of {identity.common_name} is not valid before "
                        f"{cert.not_valid_before_utc.isoformat()}: it cannot seal yet")
    if now > cert.not_valid_after_utc:
        raise SealError(f"certificate of {identity.common_name} expired on "
                        f"{cert.not_valid_after_utc.isoformat()}: it cannot seal")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (usage.digital_signature or usage.content_commitment):
        raise SealError(f"certificate of {identity.common_name} is not for signing "
                        "(its key usage allows neither digitalSignature nor nonRepudiation)")


def sign_detached(identity: SigningIdentity, data: bytes) -> bytes:
    """A detached CMS SignedData (DER) over `data`, SHA-256, with the signing time signed."""
    builder = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(
        identity.certificate, identity.key, hashes.SHA256())
    for certificate in identity.chain:
        builder = builder.add_certificate(certificate)
    # Binary: the manifest is signed byte for byte (no MIME line-ending canonicalisation);
    # the default attributes include signingTime, which `verify` checks the chain at.
    return builder.sign(serialization.Encoding.DER,
                        [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])


def load_identity(cert: Path, key: Path | None, password: PasswordSource) -> SigningIdentity:
    """PKCS#12 when no key file is given (or the file is .p12/.pfx), PEM otherwise."""
    if key is None:
        if cert.suffix.lower() not in PKCS12_SUFFIXES and b"-----BEGIN" in _read(cert)[:4096]:
            raise SealError(f"{cert}: a PEM certificate needs its key: give --key KEY.pem")
        return load_pkcs12(cert, password)
    return load_pem(cert, key, password)
