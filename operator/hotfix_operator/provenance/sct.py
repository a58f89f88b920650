"""Embedded signed certificate timestamps (RFC 6962 §3.2) in Fulcio certificates.

A Fulcio certificate is only trustworthy if it was also logged to the CT log the pinned root
names: that is how a mis-issued certificate becomes visible. The SCT signs the precertificate,
i.e. the TBS certificate without the SCT extension, bound to the issuer's key hash.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.certificate_transparency import LogEntryType, SignatureAlgorithm, Version

from .reasons import Reason, Rejected
from .trustroot import PinnedTrustRoot

_EPOCH = datetime(1970, 1, 1)
_ONE_MS = timedelta(milliseconds=1)


def _milliseconds(moment: datetime) -> int:
    naive = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return (naive - _EPOCH) // _ONE_MS


def _signed_data(
    sct: x509.certificate_transparency.SignedCertificateTimestamp, tbs: bytes, issuer_key_hash: bytes
) -> bytes:
    if len(tbs) >= 1 << 24 or len(sct.extension_bytes) >= 1 << 16:
        raise Rejected(Reason.SCT_INVALID, "certificate too large for a CT entry")
    return b"".join(
        (
            b"\x00",  # sct_version v1
            b"\x00",  # signature_type certificate_timestamp
            struct.pack(">Q", _milliseconds(sct.timestamp)),
            struct.pack(">H", 1),  # entry_type precert_entry
            issuer_key_hash,
            len(tbs).to_bytes(3, "big"),
            tbs,
            struct.pack(">H", len(sct.extension_bytes)),
            sct.extension_bytes,
        )
    )


def verify_embedded_sct(certificate: x509.Certificate, issuer: x509.Certificate, trust: PinnedTrustRoot) -> str:
    """Require one valid SCT from a CT log of the pinned root; returns that log's URL (or id)."""
    try:
        timestamps = certificate.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps
        ).value
    except x509.ExtensionNotFound:
        raise Rejected(Reason.SCT_INVALID, "signing certificate carries no embedded SCT") from None
    issuer_key_hash = hashlib.sha256(
        issuer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).digest()
    tbs = certificate.tbs_precertificate_bytes
    unknown: list[str] = []
    for sct in timestamps:
        log = trust.ct_logs.get(sct.log_id)
        if log is None:
            unknown.append(sct.log_id.hex())
            continue
        if sct.version != Version.v1 or sct.entry_type != LogEntryType.PRE_CERTIFICATE:
            raise Rejected(Reason.SCT_INVALID, f"SCT from CT log {log.base_url} is not a v1 precertificate SCT")
        # RFC 6962 logs sign with ECDSA over SHA-256 (or RSA, which we do not pin).
        if sct.signature_algorithm != SignatureAlgorithm.ECDSA or not isinstance(
            sct.signature_hash_algorithm, hashes.SHA256
        ):
            raise Rejected(Reason.SCT_INVALID, f"SCT from CT log {log.base_url} is not ECDSA with SHA-256")
        moment = sct.timestamp.replace(tzinfo=UTC)
        if not log.validity.contains(moment):
            raise Rejected(
                Reason.SCT_INVALID,
                f"SCT time {moment.isoformat()} is outside CT log {log.base_url}'s key validity "
                f"{log.validity.describe()}",
            )
        if not log.key.verifies(sct.signature, _signed_data(sct, tbs, issuer_key_hash)):
            raise Rejected(Reason.SCT_INVALID, f"SCT signature from CT log {log.base_url} does not verify")
        return log.base_url or log.log_id.hex()
    detail = f" (SCTs from unknown logs {', '.join(unknown)})" if unknown else ""
    raise Rejected(Reason.SCT_INVALID, f"no SCT from a CT log of the pinned trusted root{detail}")
