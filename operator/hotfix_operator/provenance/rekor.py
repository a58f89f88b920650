"""Rekor transparency-log entries: the inclusion promise (SET) and the entry's binding to what we verify.

The SET is Rekor's signature over the RFC 8785 canonical JSON of
{body, integratedTime, logID, logIndex}. Once it verifies with the pinned log key, the
integrated time is a trusted signing time, which is what lets us check a Fulcio certificate
that expired ten minutes after it was issued. A valid SET alone proves nothing about *this*
signature, though: the logged body must name the same signature, payload hash and signer,
or a genuine entry for something else could be replayed next to a forged signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .encoding import decode_base64, decode_hex
from .keys import PublicKey, load_pem_public_key
from .limits import MAX_ANNOTATION_BYTES
from .reasons import Reason, Rejected
from .strictjson import (
    JsonObject,
    as_object,
    get_int,
    get_list,
    get_object,
    get_str,
    optional_object,
    parse_json_object,
)
from .trustroot import LogInstance, PinnedTrustRoot


@dataclass(frozen=True)
class TlogEntry:
    """One Rekor entry as shipped next to a signature (cosign annotation or Sigstore bundle)."""

    body: bytes
    body_base64: str
    integrated_time: int | None
    log_index: int
    log_id: bytes
    signed_entry_timestamp: bytes | None

    @property
    def integrated_at(self) -> datetime | None:
        return None if self.integrated_time is None else datetime.fromtimestamp(self.integrated_time, UTC)


def parse_cosign_bundle_annotation(text: str) -> TlogEntry:
    """Read cosign's `dev.sigstore.cosign/bundle` annotation (a Rekor SET and its payload)."""
    if len(text) > MAX_ANNOTATION_BYTES:
        raise Rejected(Reason.MALFORMED_INPUT, "Rekor bundle annotation is too large")
    what = "Rekor bundle annotation"
    document = parse_json_object(text, what=what)
    payload = get_object(document, "Payload", what)
    unexpected = set(payload) - {"body", "integratedTime", "logIndex", "logID"}
    if unexpected:
        # The SET covers exactly these four fields; anything else would be unsigned.
        raise Rejected(Reason.TLOG_INVALID, f"{what} Payload has unsigned fields {sorted(unexpected)}")
    body_text = get_str(payload, "body", f"{what}.Payload")
    return TlogEntry(
        body=decode_base64(body_text, what=f"{what} body"),
        body_base64=body_text,
        integrated_time=get_int(payload, "integratedTime", f"{what}.Payload"),
        log_index=get_int(payload, "logIndex", f"{what}.Payload"),
        log_id=decode_hex(get_str(payload, "logID", f"{what}.Payload"), what=f"{what} logID", length=32),
        signed_entry_timestamp=decode_base64(get_str(document, "SignedEntryTimestamp", what), what=f"{what} SET"),
    )


def verify_inclusion_promise(entry: TlogEntry, trust: PinnedTrustRoot) -> LogInstance:
    """Verify the SET with the pinned log key named by the entry's log id."""
    log = trust.transparency_logs.get(entry.log_id)
    if log is None:
        raise Rejected(
            Reason.TLOG_UNKNOWN_LOG,
            f"transparency log {entry.log_id.hex()} is not in the pinned trusted root "
            f"(which has {trust.describe_logs()})",
        )
    if entry.signed_entry_timestamp is None or entry.integrated_time is None:
        raise Rejected(Reason.TLOG_PROOF_MISSING, "transparency log entry has no inclusion promise (SET)")
    moment = datetime.fromtimestamp(entry.integrated_time, UTC)
    if not log.validity.contains(moment):
        raise Rejected(
            Reason.TLOG_UNKNOWN_LOG,
            f"integrated time {moment.isoformat()} is outside log {log.base_url}'s key validity "
            f"{log.validity.describe()}",
        )
    canonical = rfc8785.dumps(
        {
            "body": entry.body_base64,
            "integratedTime": entry.integrated_time,
            "logID": entry.log_id.hex(),
            "logIndex": entry.log_index,
        }
    )
    if not log.key.verifies(entry.signed_entry_timestamp, canonical):
        raise Rejected(
            Reason.TLOG_SET_INVALID, f"inclusion promise (SET) of log entry {entry.log_index} does not verify"
        )
    return log


class VerifierKind(Enum):
    CERTIFICATE = "certificate"
    PUBLIC_KEY = "public key"


@dataclass(frozen=True)
class LoggedVerifier:
    """The signer a log entry names: a certificate (keyless) or a bare public key."""

    kind: VerifierKind
    der: bytes
    key: PublicKey | None

    @classmethod
    def from_certificate(cls, certificate: x509.Certificate) -> LoggedVerifier:
        return cls(VerifierKind.CERTIFICATE, certificate.public_bytes(serialization.Encoding.DER), None)

    @classmethod
    def from_key(cls, key: PublicKey) -> LoggedVerifier:
        return cls(VerifierKind.PUBLIC_KEY, key.spki_der, key)


def _logged_verifier(encoded_pem: str, what: str) -> LoggedVerifier:
    pem = decode_base64(encoded_pem, what=what)
    if b"-----BEGIN CERTIFICATE-----" in pem:
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise Rejected(Reason.TLOG_INVALID, f"{what} is not a PEM certificate: {exc}") from None
        return LoggedVerifier.from_certificate(certificate)
    try:
        key = load_pem_public_key(pem, what=what)
    except ValueError as exc:
        raise Rejected(Reason.TLOG_INVALID, str(exc)) from None
    return LoggedVerifier.from_key(key)


@dataclass(frozen=True)
class LoggedSignature:
    """What a log entry body commits to. Which fields an entry kind records differs:

    hashedrekord and dsse record the signature; intoto/0.0.1 records only the envelope's hash,
    the payload's hash and the signer; intoto/0.0.2 records the envelope hash, the payload hash,
    the payload type and the signature with its verifier. `None` means "this kind does not record it".
    """

    kind: str
    payload_sha256: bytes | None
    signature: bytes | None
    verifier: LoggedVerifier
    envelope_sha256: bytes | None = None
    payload_type: str | None = None


def read_entry_body(entry: TlogEntry) -> LoggedSignature:
    """Parse a Rekor v1 body: hashedrekord 0.0.1, dsse 0.0.1, intoto 0.0.1 or intoto 0.0.2."""
    what = f"transparency log entry {entry.log_index} body"
    body = parse_json_object(entry.body, what=what)
    kind = get_str(body, "kind", what)
    version = get_str(body, "apiVersion", what)
    spec = get_object(body, "spec", what)
    if (kind, version) == ("hashedrekord", "0.0.1"):
        return _hashedrekord(spec, what)
    if (kind, version) == ("dsse", "0.0.1"):
        return _dsse(spec, what)
    if (kind, version) == ("intoto", "0.0.1"):
        return _intoto_v001(spec, what)
    if (kind, version) == ("intoto", "0.0.2"):
        return _intoto_v002(spec, what)
    raise Rejected(Reason.TLOG_INVALID, f"{what}: unsupported entry type {kind}/{version}")


def _sha256_field(container: JsonObject, what: str) -> bytes:
    algorithm = get_str(container, "algorithm", what)
    if algorithm != "sha256":
        raise Rejected(Reason.TLOG_INVALID, f"{what} uses {algorithm!r}, expected sha256")
    return decode_hex(get_str(container, "value", what), what=what, length=32)


def _hashedrekord(spec: JsonObject, what: str) -> LoggedSignature:
    signature = get_object(spec, "signature", what)
    return LoggedSignature(
        kind="hashedrekord",
        payload_sha256=_sha256_field(get_object(get_object(spec, "data", what), "hash", what), f"{what} data hash"),
        signature=decode_base64(get_str(signature, "content", what), what=f"{what} signature"),
        verifier=_logged_verifier(get_str(get_object(signature, "publicKey", what), "content", what), f"{what} key"),
    )


def _dsse(spec: JsonObject, what: str) -> LoggedSignature:
    signatures = get_list(spec, "signatures", what)
    if len(signatures) != 1:
        raise Rejected(Reason.TLOG_INVALID, f"{what} records {len(signatures)} signatures, expected one")
    logged = as_object(signatures[0], f"{what} signature")
    return LoggedSignature(
        kind="dsse",
        payload_sha256=_sha256_field(get_object(spec, "payloadHash", what), f"{what} payload hash"),
        signature=decode_base64(get_str(logged, "signature", what), what=f"{what} signature"),
        verifier=_logged_verifier(get_str(logged, "verifier", what), f"{what} verifier"),
        envelope_sha256=_sha256_field(get_object(spec, "envelopeHash", what), f"{what} envelope hash"),
    )


def _intoto_v001(spec: JsonObject, what: str) -> LoggedSignature:
    """intoto/0.0.1 (cosign attest before dsse entries, slsa-github-generator before v2.0).

    The canonical body keeps no signature: it binds the envelope through the sha256 of the exact
    envelope bytes uploaded, the payload through its sha256 (absent in the oldest entries) and
    the signer through `publicKey` (a PEM certificate or key).
    """
    content = get_object(spec, "content", what)
    payload_hash = optional_object(content, "payloadHash", what)
    return LoggedSignature(
        kind="intoto",
        payload_sha256=None if payload_hash is None else _sha256_field(payload_hash, f"{what} payload hash"),
        signature=None,
        verifier=_logged_verifier(get_str(spec, "publicKey", what), f"{what} public key"),
        envelope_sha256=_sha256_field(get_object(content, "hash", what), f"{what} envelope hash"),
    )


def _intoto_v002(spec: JsonObject, what: str) -> LoggedSignature:
    content = get_object(spec, "content", what)
    envelope = get_object(content, "envelope", what)
    signatures = get_list(envelope, "signatures", what)
    if len(signatures) != 1:
        raise Rejected(Reason.TLOG_INVALID, f"{what} records {len(signatures)} signatures, expected one")
    logged = as_object(signatures[0], f"{what} signature")
    # intoto/0.0.2 stores the signature base64-encoded twice.
    inner = decode_base64(get_str(logged, "sig", what), what=f"{what} signature")
    try:
        inner_text = inner.decode("ascii")
    except UnicodeDecodeError:
        raise Rejected(Reason.TLOG_INVALID, f"{what} signature is not double base64") from None
    return LoggedSignature(
        kind="intoto",
        payload_sha256=_sha256_field(get_object(content, "payloadHash", what), f"{what} payload hash"),
        signature=decode_base64(inner_text, what=f"{what} signature"),
        verifier=_logged_verifier(get_str(logged, "publicKey", what), f"{what} public key"),
        envelope_sha256=_sha256_field(get_object(content, "hash", what), f"{what} envelope hash"),
        payload_type=get_str(envelope, "payloadType", what),
    )


@dataclass(frozen=True)
class VerifiedContent:
    """What was verified, as a log entry would record it.

    `envelope_sha256` is known only where the envelope's exact bytes are (a cosign `.att` layer
    is the uploaded envelope); a Sigstore bundle re-serializes the envelope, so there it is None.
    """

    payload_sha256: bytes
    signature: bytes
    verifier: LoggedVerifier
    dsse: bool
    envelope_sha256: bytes | None = None
    payload_type: str | None = None


def require_entry_matches(logged: LoggedSignature, verified: VerifiedContent) -> None:
    """The logged body must commit to this payload, this signature (or envelope) and this signer."""
    expected_kinds = ("dsse", "intoto") if verified.dsse else ("hashedrekord",)
    mismatch = Reason.TLOG_ENTRY_MISMATCH
    if logged.kind not in expected_kinds:
        raise Rejected(mismatch, f"log entry is a {logged.kind} entry, expected {' or '.join(expected_kinds)}")
    _require_hashes(logged, verified)
    if logged.payload_type is not None and logged.payload_type != verified.payload_type:
        raise Rejected(
            mismatch, f"log entry records payload type {logged.payload_type!r}, not {verified.payload_type!r}"
        )
    if logged.signature is not None and logged.signature != verified.signature:
        raise Rejected(mismatch, "log entry records a different signature than the one verified")
    if logged.verifier.kind != verified.verifier.kind or logged.verifier.der != verified.verifier.der:
        raise Rejected(mismatch, f"log entry names a different signer ({logged.verifier.kind.value})")


def _require_hashes(logged: LoggedSignature, verified: VerifiedContent) -> None:
    mismatch = Reason.TLOG_ENTRY_MISMATCH
    if logged.payload_sha256 is not None and logged.payload_sha256 != verified.payload_sha256:
        raise Rejected(
            mismatch,
            f"log entry records payload sha256:{logged.payload_sha256.hex()[:12]}…, "
            f"signed payload is sha256:{verified.payload_sha256.hex()[:12]}…",
        )
    # The uploaded envelope is the `.att` layer itself (cosign compares the same), and through it
    # the signature, which intoto/0.0.1 does not record on its own.
    logged_envelope, envelope = logged.envelope_sha256, verified.envelope_sha256
    if logged_envelope is not None and envelope is not None and logged_envelope != envelope:
        raise Rejected(
            mismatch,
            f"log entry records envelope sha256:{logged_envelope.hex()[:12]}…, "
            f"the envelope is sha256:{envelope.hex()[:12]}…",
        )
    if logged.payload_sha256 is None and (logged_envelope is None or envelope is None):
        # The oldest intoto/0.0.1 entries bind the payload only through the envelope's bytes.
        raise Rejected(mismatch, "log entry records no payload hash, and the envelope's own bytes are not at hand")
