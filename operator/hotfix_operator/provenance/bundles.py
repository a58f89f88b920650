"""Sigstore bundles (v0.1–v0.3): certificate-signed ones through sigstore-python, key-signed by hand.

sigstore-python verifies keyless bundles fully offline given a TrustedRoot (chain at the
proven time, SCT, inclusion proof + checkpoint, SET or RFC 3161 time, log-body consistency),
but it refuses bundles signed with a managed key. Those we check with the same signer rules as
cosign's legacy layers: a trusted key, and a Rekor SET whose body names this very signature.
Before either, the bundle is parsed strictly here so a document with duplicate keys never
reaches a parser that would silently pick one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509

from .digests import check_content_digest, require_sha256_digest
from .dsse import Envelope, envelope_from_json
from .encoding import decode_base64
from .fulcio import CertificateIdentity, certificate_identity
from .inputs import BundleArtifact
from .intoto_bundles import bundle_tlog_entry, logs_intoto, require_kind_version, verify_intoto_keyless
from .limits import MAX_LAYER_BYTES
from .policy import SignerPolicy
from .reasons import Reason, Rejected, abbreviate_pair
from .rekor import TlogEntry
from .results import SignerSummary
from .signers import SignedContent, VerifiedSigner, verify_signer
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

BUNDLE_MEDIA_TYPES = frozenset(
    {
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
    }
)

# sigstore-python reports failures as VerificationError with a message; these prefixes map
# them onto our reasons. Tests pin each mapping against real bundles, so a library upgrade
# that rewords a message shows up as a failing test, not as a wrong reason in production.
_LIBRARY_MESSAGES: tuple[tuple[str, Reason], ...] = (
    ("failed to verify SCT", Reason.SCT_INVALID),
    ("invalid signing cert: expired", Reason.CERTIFICATE_EXPIRED),
    ("Key usage is not", Reason.CERTIFICATE_UNTRUSTED),
    ("Extended usage does not contain", Reason.CERTIFICATE_UNTRUSTED),
    ("DSSE: invalid signature", Reason.SIGNATURE_INVALID),
    ("DSSE: exactly 1 signature", Reason.SIGNATURE_INVALID),
    ("Signature is invalid for input", Reason.SIGNATURE_INVALID),
    ("Bundle message digest mismatch", Reason.DIGEST_MISMATCH),
    ("invalid log entry", Reason.TLOG_INVALID),
    ("SET:", Reason.TLOG_INVALID),
    ("transparency log entry is inconsistent", Reason.TLOG_INVALID),
    ("log entry payload hash does not match", Reason.TLOG_INVALID),
    ("log entry signatures do not match", Reason.TLOG_INVALID),
    ("Unsupported DSSE log entry", Reason.TLOG_INVALID),
    ("Expected entry type", Reason.TLOG_INVALID),
    ("Unsupported hashedrekord version", Reason.TLOG_INVALID),
    ("invalid DSSE log entry", Reason.TLOG_INVALID),
    ("not enough sources of verified time", Reason.TLOG_INVALID),
    ("Integrated time only supported", Reason.TLOG_INVALID),
    ("no Timestamp Authorities", Reason.TLOG_INVALID),
    ("too many signed timestamp", Reason.TLOG_INVALID),
    ("duplicate timestamp", Reason.TLOG_INVALID),
)


@dataclass(frozen=True)
class VerifiedBundle:
    signer: VerifiedSigner
    envelope: Envelope | None
    message_digest: str | None

    @property
    def payload(self) -> bytes | None:
        return None if self.envelope is None else self.envelope.payload


def _tlog_entries(material: JsonObject, what: str) -> list[JsonObject]:
    raw = material.get("tlogEntries")
    if raw is None:
        return []
    return [
        as_object(entry, f"{what} tlogEntries[{index}]")
        for index, entry in enumerate(get_list(material, "tlogEntries", what))
    ]


def verify_bundle(artifact: BundleArtifact, policy: SignerPolicy, *, artifact_digest: str) -> VerifiedBundle:
    """Verify a bundle's signature and signer. For message signatures, the signed digest must be
    `artifact_digest`; for DSSE, the caller checks the statement's subject."""
    what = f"Sigstore bundle {artifact.digest[:19]}…" if artifact.digest else "Sigstore bundle"
    if len(artifact.blob) > MAX_LAYER_BYTES:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} is {len(artifact.blob)} bytes, over the limit")
    if artifact.digest is not None:
        check_content_digest(artifact.blob, artifact.digest, what=what)
    document = parse_json_object(artifact.blob, what=what)
    media_type = get_str(document, "mediaType", what)
    if media_type not in BUNDLE_MEDIA_TYPES:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} has unsupported media type {media_type!r}")
    material = get_object(document, "verificationMaterial", what)
    has_envelope = "dsseEnvelope" in document
    if has_envelope == ("messageSignature" in document):
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} must hold exactly one of dsseEnvelope or messageSignature")

    envelope: Envelope | None = None
    message_digest: bytes | None = None
    if has_envelope:
        envelope = envelope_from_json(get_object(document, "dsseEnvelope", what), what=f"{what} DSSE envelope")
        envelope.require_in_toto()
        envelope.only_signature()
    else:
        message_digest = _message_digest(get_object(document, "messageSignature", what), artifact_digest, what)

    if "publicKey" in material:
        signer = _verify_managed_key(document, material, envelope, message_digest, policy, what)
    elif ("certificate" in material or "x509CertificateChain" in material) and (
        envelope is not None and logs_intoto(_tlog_entries(material, what), what)
    ):
        # sigstore-python refuses intoto entries; we verify them (see intoto_bundles).
        signer = verify_intoto_keyless(
            media_type=media_type,
            material=material,
            entries=_tlog_entries(material, what),
            envelope=envelope,
            policy=policy,
            what=what,
        )
    elif "certificate" in material or "x509CertificateChain" in material:
        signer, envelope = _verify_keyless(artifact.blob, material, envelope, message_digest, policy, what)
    else:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} names neither a public key nor a certificate")
    return VerifiedBundle(
        signer=signer,
        envelope=envelope,
        message_digest=None if message_digest is None else "sha256:" + message_digest.hex(),
    )


def _message_digest(signature: JsonObject, artifact_digest: str, what: str) -> bytes:
    require_sha256_digest(artifact_digest, what="artifact digest")
    expected = bytes.fromhex(artifact_digest.removeprefix("sha256:"))
    digest = optional_object(signature, "messageDigest", f"{what}.messageSignature")
    if digest is None:
        # The digest is optional in the bundle; the signature is then checked over ours.
        return expected
    algorithm = get_str(digest, "algorithm", f"{what}.messageSignature.messageDigest")
    if algorithm != "SHA2_256":
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} message digest uses {algorithm}, only SHA2_256 is supported")
    signed = decode_base64(get_str(digest, "digest", f"{what}.messageDigest"), what=f"{what} message digest")
    if signed != expected:
        shown_expected, shown_actual = abbreviate_pair(artifact_digest, "sha256:" + signed.hex(), keep=19)
        raise Rejected(Reason.DIGEST_MISMATCH, f"{what} signs {shown_actual} ≠ requested {shown_expected}")
    return signed


def _verify_managed_key(
    document: JsonObject,
    material: JsonObject,
    envelope: Envelope | None,
    message_digest: bytes | None,
    policy: SignerPolicy,
    what: str,
) -> VerifiedSigner:
    entries = _tlog_entries(material, what)
    if len(entries) > 1:
        raise Rejected(Reason.TLOG_INVALID, f"{what} carries {len(entries)} log entries, expected one")
    tlog: TlogEntry | None = None
    if entries:
        entry = entries[0]
        if "inclusionPromise" not in entry:
            # Rekor v2 entries prove inclusion only by checkpoint; we verify those for keyless
            # bundles through sigstore-python, which does not accept managed keys.
            raise Rejected(
                Reason.TLOG_INVALID,
                f"{what} log entry has no inclusion promise; key-signed Rekor v2 entries are not supported",
            )
        tlog = bundle_tlog_entry(entry, f"{what} tlogEntries[0]")
        kind_version = get_object(entry, "kindVersion", f"{what} tlogEntries[0]")
        require_kind_version(tlog, kind_version, what)
    if envelope is not None:
        content = SignedContent.envelope(envelope.pae(), envelope.payload, payload_type=envelope.payload_type)
        signature = envelope.only_signature().sig
    elif message_digest is not None:
        content = SignedContent.message_digest(message_digest)
        signature = decode_base64(
            get_str(get_object(document, "messageSignature", what), "signature", f"{what}.messageSignature"),
            what=f"{what} signature",
        )
    else:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} has no signed content")
    return verify_signer(content=content, signature=signature, certificate=None, tlog=tlog, policy=policy, what=what)


def _expired_at_logged_time(certificate: x509.Certificate, material: JsonObject, what: str) -> str | None:
    """Explain a failed chain: was the certificate simply outside its validity at the logged time?

    sigstore-python builds the chain at that time, so an expired leaf surfaces as a chain error.
    """
    entries = _tlog_entries(material, what)
    if len(entries) != 1 or "integratedTime" not in entries[0]:
        return None
    moment = datetime.fromtimestamp(get_int(entries[0], "integratedTime", what, allow_string=True), UTC)
    if certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc:
        return None
    return (
        f"{what}: logged time {moment.isoformat()} is outside the certificate's validity "
        f"{certificate.not_valid_before_utc.isoformat()} – {certificate.not_valid_after_utc.isoformat()}"
    )


class _IdentityPolicy:
    """sigstore's VerificationPolicy, answering with our identity rules (exact or full-match regex)."""

    def __init__(self, policy: SignerPolicy, what: str) -> None:
        self._policy = policy
        self._what = what

    def verify(self, cert: x509.Certificate) -> None:
        identity = certificate_identity(cert)
        if self._policy.matching_identity(identity.subject, identity.issuer) is None:
            trusted = "; ".join(entry.describe() for entry in self._policy.keyless_identities)
            raise Rejected(
                Reason.IDENTITY_MISMATCH,
                f"{self._what} signer {identity.subject!r} (issuer {identity.issuer!r}) "
                f"matches no trusted identity ({trusted})",
            )


def _classify(message: str) -> Reason:
    for prefix, reason in _LIBRARY_MESSAGES:
        if prefix in message:
            return reason
    return Reason.SIGNATURE_INVALID


def one_line(exc: Exception) -> str:
    """A parser's complaint in one line naming the field: pydantic's errors() when it has them, else the
    first line of its message (a multi-line dump helps nobody at a terminal or in a status message)."""
    errors = getattr(exc, "errors", None) or getattr(exc.__cause__, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            field = ".".join(str(part) for part in first.get("loc", ())) or "(document)"
            return f"{field}: {first.get('msg', 'invalid')}"
        except (IndexError, TypeError, AttributeError):
            pass
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) >= 3 and "validation error" in lines[0]:  # pydantic's text, wrapped: field, then complaint
        field, detail = (line.split(" [type=")[0] for line in lines[1:3])
        return field if detail.startswith("For further information") else f"{field}: {detail}"
    return lines[0] if lines else type(exc).__name__


def _verify_keyless(
    blob: bytes,
    material: JsonObject,
    envelope: Envelope | None,
    message_digest: bytes | None,
    policy: SignerPolicy,
    what: str,
) -> tuple[VerifiedSigner, Envelope | None]:
    from sigstore.errors import CertValidationError, Error
    from sigstore.hashes import Hashed
    from sigstore.models import Bundle, InvalidBundle
    from sigstore.verify import Verifier
    from sigstore_models.common.v1 import HashAlgorithm

    root = policy.root
    if not policy.keyless_identities or root is None:
        raise Rejected(
            Reason.IDENTITY_MISMATCH, f"{what} is signed keylessly, but the policy trusts no keyless identity"
        )
    try:
        bundle = Bundle.from_json(blob)
    except (InvalidBundle, ValueError) as exc:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} is not a valid Sigstore bundle: {one_line(exc)}") from None
    verifier = Verifier(trusted_root=root.sigstore_trusted_root())
    identity_policy = _IdentityPolicy(policy, what)
    try:
        if envelope is not None:
            payload_type, payload = verifier.verify_dsse(bundle, identity_policy)
            # Hand on the bytes the library verified, not our own parse of the envelope.
            envelope = Envelope(payload_type=payload_type, payload=payload, signatures=envelope.signatures)
        elif message_digest is not None:
            verifier.verify_artifact(
                Hashed(algorithm=HashAlgorithm.SHA2_256, digest=message_digest), bundle, identity_policy
            )
    except CertValidationError as exc:
        expired = _expired_at_logged_time(bundle.signing_certificate, material, what)
        if expired is not None:
            raise Rejected(Reason.CERTIFICATE_EXPIRED, expired) from None
        raise Rejected(Reason.CERTIFICATE_UNTRUSTED, f"{what}: {exc}") from None
    except Error as exc:
        raise Rejected(_classify(str(exc)), f"{what}: {exc}") from None

    identity: CertificateIdentity = certificate_identity(bundle.signing_certificate)
    entries = _tlog_entries(material, what)
    if len(entries) != 1:
        raise Rejected(Reason.TLOG_INVALID, f"{what} carries {len(entries)} log entries, expected one")
    entry = entries[0]
    integrated = (
        get_int(entry, "integratedTime", what, allow_string=True)
        if "integratedTime" in entry and "inclusionPromise" in entry
        else None
    )
    log_id = decode_base64(get_str(get_object(entry, "logId", what), "keyId", what), what=f"{what} log id")
    summary = SignerSummary(
        method="keyless",
        identity=identity.subject,
        issuer=identity.issuer,
        signing_time=None if integrated is None else datetime.fromtimestamp(integrated, UTC),
        tlog_index=get_int(entry, "logIndex", what, allow_string=True),
        tlog_id=log_id.hex(),
    )
    return VerifiedSigner(summary=summary, certificate=identity), envelope
