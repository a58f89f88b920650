"""The fixed vocabulary of verdicts, and the exception that carries one through the verifier."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """CamelCase reasons, used verbatim as Kubernetes condition reasons."""

    VERIFIED = "Verified"
    NOT_DIGEST_PINNED = "NotDigestPinned"
    DIGEST_MISMATCH = "DigestMismatch"
    NO_SIGNATURE = "NoSignature"
    SIGNATURE_INVALID = "SignatureInvalid"
    UNTRUSTED_KEY = "UntrustedKey"
    IDENTITY_MISMATCH = "IdentityMismatch"
    CERTIFICATE_EXPIRED = "CertificateExpired"
    CERTIFICATE_UNTRUSTED = "CertificateUntrusted"
    SCT_INVALID = "SctInvalid"
    TLOG_INVALID = "TlogInvalid"
    # The transparency-log failures that need a different remedy each, so each has its own reason.
    TLOG_UNKNOWN_LOG = "TlogUnknownLog"
    TLOG_SET_INVALID = "TlogSetInvalid"
    TLOG_PROOF_MISSING = "TlogProofMissing"
    TLOG_INCLUSION_PROOF_INVALID = "TlogInclusionProofInvalid"
    TLOG_ENTRY_MISMATCH = "TlogEntryMismatch"
    PAYLOAD_TYPE_NOT_ALLOWED = "PayloadTypeNotAllowed"
    STATEMENT_TYPE_NOT_ALLOWED = "StatementTypeNotAllowed"
    PREDICATE_TYPE_MISSING = "PredicateTypeMissing"
    BUILDER_NOT_ALLOWED = "BuilderNotAllowed"
    SOURCE_MISMATCH = "SourceMismatch"
    COMMIT_MISMATCH = "CommitMismatch"
    EVIDENCE_MISMATCH = "EvidenceMismatch"
    VULNERABILITY_FOUND = "VulnerabilityFound"
    MALFORMED_INPUT = "MalformedInput"
    POLICY_INVALID = "PolicyInvalid"


class Rejected(Exception):
    """Raised anywhere inside the verifier; the public entry points turn it into a result.

    Carrying the reason in the exception keeps each check next to the reason it produces,
    instead of threading error values through every layer.
    """

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def abbreviate_pair(expected: str, actual: str, keep: int = 12) -> tuple[str, str]:
    """Shorten two long identifiers for a message, unless shortening would hide the difference."""
    if len(expected) <= keep + 1 and len(actual) <= keep + 1:
        return expected, actual
    if expected[:keep] == actual[:keep]:
        return expected, actual

    def cut(value: str) -> str:
        return value if len(value) <= keep + 1 else value[:keep] + "…"

    return cut(expected), cut(actual)
