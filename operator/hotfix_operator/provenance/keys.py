"""Public keys that can verify a signature: trusted signing keys, certificate keys, log keys."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from ..formats import sha256_digest
from .reasons import Reason, Rejected

VerifyingKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

# The digest paired with each curve, as in Sigstore's key details (PKIX_ECDSA_P256_SHA_256, …).
_CURVE_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


@dataclass(frozen=True)
class PublicKey:
    """A loaded verification key with its SubjectPublicKeyInfo and a stable fingerprint."""

    key: VerifyingKey
    spki_der: bytes
    name: str = ""

    @property
    def fingerprint(self) -> str:
        """`sha256:<hex>` of the DER SubjectPublicKeyInfo (the Sigstore key id, in hex)."""
        return sha256_digest(self.spki_der)

    @property
    def algorithm(self) -> str:
        if isinstance(self.key, ed25519.Ed25519PublicKey):
            return "Ed25519"
        return f"ECDSA {self.key.curve.name}"

    def verifies(self, signature: bytes, data: bytes) -> bool:
        """True when `signature` is valid over `data`; never raises for bad signature bytes."""
        try:
            if isinstance(self.key, ed25519.Ed25519PublicKey):
                self.key.verify(signature, data)
            else:
                self.key.verify(signature, data, ec.ECDSA(_CURVE_HASHES[self.key.curve.name]()))
        except (InvalidSignature, ValueError):
            return False
        return True

    def verifies_sha256_digest(self, signature: bytes, digest: bytes) -> bool:
        """Verify a signature made over a precomputed SHA-256 digest (Sigstore message signatures)."""
        if isinstance(self.key, ed25519.Ed25519PublicKey) or len(digest) != 32:
            return False
        try:
            self.key.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        except (InvalidSignature, ValueError):
            return False
        return True


def _wrap(key: object, *, what: str, name: str) -> PublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVE_HASHES:
            raise ValueError(f"{what} uses unsupported curve {key.curve.name}")
    elif not isinstance(key, ed25519.Ed25519PublicKey):
        raise ValueError(f"{what} is a {type(key).__name__}; only ECDSA (P-256/P-384/P-521) and Ed25519 are supported")
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(key=key, spki_der=spki, name=name)


def load_pem_public_key(pem: str | bytes, *, what: str = "public key", name: str = "") -> PublicKey:
    """Load a PEM public key; raises ValueError naming `what` on bad PEM or key type."""
    data = pem.encode("utf-8") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"{what} is not a PEM public key: {exc}") from None
    return _wrap(key, what=what, name=name)


def load_der_public_key(der: bytes, *, what: str = "public key", name: str = "") -> PublicKey:
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"{what} is not a DER public key: {exc}") from None
    return _wrap(key, what=what, name=name)


def certificate_key(certificate: x509.Certificate, *, what: str) -> PublicKey:
    """The key of a signing certificate; unsupported key types reject the signature."""
    try:
        return _wrap(certificate.public_key(), what=what, name="")
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise Rejected(Reason.CERTIFICATE_UNTRUSTED, str(exc)) from None
