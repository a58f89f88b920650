"""Establishing who signed something: a trusted key, or a keyless identity proven by Fulcio + Rekor.

Both cosign's legacy layers and managed-key Sigstore bundles come through here, so the same
rules hold whatever the packaging. Keyless order matters: the signing time must be proven (SET)
before the certificate can be judged at that time; identity is checked before the signature
so an untrusted signer is reported as such, not as a bad signature.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509

from .fulcio import CertificateIdentity, certificate_identity, verify_certificate_chain
from .keys import PublicKey, certificate_key
from .policy import SignerPolicy
from .reasons import Reason, Rejected
from .rekor import (
    LoggedSignature,
    LoggedVerifier,
    TlogEntry,
    VerifiedContent,
    read_entry_body,
    require_entry_matches,
    verify_inclusion_promise,
)
from .results import SignerSummary
from .sct import verify_embedded_sct


@dataclass(frozen=True)
class SignedContent:
    """The bytes a signature covers and what its log entry must record as the payload hash."""

    data: bytes
    logged_payload_sha256: bytes
    dsse: bool
    prehashed: bool = False
    # Known only where the envelope's exact bytes are at hand (a cosign `.att` layer).
    envelope_sha256: bytes | None = None
    payload_type: str | None = None

    @classmethod
    def simple(cls, payload: bytes) -> SignedContent:
        return cls(data=payload, logged_payload_sha256=hashlib.sha256(payload).digest(), dsse=False)

    @classmethod
    def envelope(
        cls, pae: bytes, payload: bytes, *, payload_type: str, envelope_bytes: bytes | None = None
    ) -> SignedContent:
        return cls(
            data=pae,
            logged_payload_sha256=hashlib.sha256(payload).digest(),
            dsse=True,
            envelope_sha256=None if envelope_bytes is None else hashlib.sha256(envelope_bytes).digest(),
            payload_type=payload_type,
        )

    @classmethod
    def message_digest(cls, sha256: bytes) -> SignedContent:
        return cls(data=sha256, logged_payload_sha256=sha256, dsse=False, prehashed=True)

    def as_logged(self, signature: bytes, verifier: LoggedVerifier) -> VerifiedContent:
        return VerifiedContent(
            payload_sha256=self.logged_payload_sha256,
            signature=signature,
            verifier=verifier,
            dsse=self.dsse,
            envelope_sha256=self.envelope_sha256,
            payload_type=self.payload_type,
        )

    def verified_by(self, key: PublicKey, signature: bytes) -> bool:
        if self.prehashed:
            return key.verifies_sha256_digest(signature, self.data)
        return key.verifies(signature, self.data)


@dataclass(frozen=True)
class VerifiedSigner:
    summary: SignerSummary
    certificate: CertificateIdentity | None


def verify_signer(
    *,
    content: SignedContent,
    signature: bytes,
    certificate: x509.Certificate | None,
    tlog: TlogEntry | None,
    policy: SignerPolicy,
    what: str,
) -> VerifiedSigner:
    if certificate is not None:
        return _keyless(content, signature, certificate, tlog, policy, what)
    return _trusted_key(content, signature, tlog, policy, what)


def _trusted_key(
    content: SignedContent, signature: bytes, tlog: TlogEntry | None, policy: SignerPolicy, what: str
) -> VerifiedSigner:
    if not policy.keys:
        raise Rejected(Reason.UNTRUSTED_KEY, f"{what} is signed with a key, but the policy trusts no keys")
    matched = next((key for key in policy.keys if content.verified_by(key, signature)), None)
    logged: LoggedSignature | None = read_entry_body(tlog) if tlog is not None else None
    if matched is None:
        # Tell "valid signature by a key we do not trust" apart from "not a valid signature":
        # the log entry names the key that claims to have signed.
        claimed = logged.verifier.key if logged is not None else None
        if claimed is not None and content.verified_by(claimed, signature):
            raise Rejected(
                Reason.UNTRUSTED_KEY,
                f"{what} is signed by key {claimed.fingerprint}, which is not a trusted key "
                f"(trusted: {', '.join(f'{key.name} {key.fingerprint}' for key in policy.keys)})",
            )
        raise Rejected(
            Reason.SIGNATURE_INVALID,
            f"{what} signature does not verify with any trusted key ({', '.join(key.name for key in policy.keys)})",
        )
    summary = SignerSummary(method="key", key_name=matched.name, key_fingerprint=matched.fingerprint)
    if tlog is None or logged is None:
        if policy.require_transparency_log:
            raise Rejected(
                Reason.TLOG_PROOF_MISSING, f"{what} has no transparency log entry, and the policy requires one"
            )
        return VerifiedSigner(summary=summary, certificate=None)
    if policy.root is None:
        # Without a pinned root the entry cannot be checked; the policy said it is not required.
        return VerifiedSigner(summary=summary, certificate=None)
    verify_inclusion_promise(tlog, policy.root)
    require_entry_matches(logged, content.as_logged(signature, LoggedVerifier.from_key(matched)))
    return VerifiedSigner(
        summary=SignerSummary(
            method="key",
            key_name=matched.name,
            key_fingerprint=matched.fingerprint,
            signing_time=tlog.integrated_at,
            tlog_index=tlog.log_index,
            tlog_id=tlog.log_id.hex(),
        ),
        certificate=None,
    )


def _keyless(
    content: SignedContent,
    signature: bytes,
    certificate: x509.Certificate,
    tlog: TlogEntry | None,
    policy: SignerPolicy,
    what: str,
) -> VerifiedSigner:
    root = policy.root
    if not policy.keyless_identities or root is None:
        raise Rejected(
            Reason.IDENTITY_MISMATCH, f"{what} is signed keylessly, but the policy trusts no keyless identity"
        )
    if tlog is None:
        raise Rejected(
            Reason.TLOG_PROOF_MISSING, f"{what} is signed keylessly but has no transparency log entry proving when"
        )
    verify_inclusion_promise(tlog, root)
    signing_time = tlog.integrated_at
    if signing_time is None:
        raise Rejected(Reason.TLOG_INVALID, f"{what} log entry has no integrated time")
    chain = verify_certificate_chain(certificate, root, signing_time)
    verify_embedded_sct(certificate, chain[1], root)
    identity = certificate_identity(certificate)
    if policy.matching_identity(identity.subject, identity.issuer) is None:
        trusted = "; ".join(entry.describe() for entry in policy.keyless_identities)
        raise Rejected(
            Reason.IDENTITY_MISMATCH,
            f"{what} signer {identity.subject!r} (issuer {identity.issuer!r}) matches no trusted identity ({trusted})",
        )
    key = certificate_key(certificate, what=f"{what} certificate key")
    if not content.verified_by(key, signature):
        raise Rejected(Reason.SIGNATURE_INVALID, f"{what} signature does not verify with its certificate's key")
    require_entry_matches(
        read_entry_body(tlog), content.as_logged(signature, LoggedVerifier.from_certificate(certificate))
    )
    return VerifiedSigner(
        summary=SignerSummary(
            method="keyless",
            identity=identity.subject,
            issuer=identity.issuer,
            signing_time=signing_time,
            tlog_index=tlog.log_index,
            tlog_id=tlog.log_id.hex(),
        ),
        certificate=identity,
    )
