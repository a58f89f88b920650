"""The verdict: ok, a reason from the fixed set, a message naming expected and actual, a summary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from .reasons import Reason


@dataclass(frozen=True)
class SignerSummary:
    """Who signed one verified item, and where it was logged."""

    method: Literal["key", "keyless"]
    key_name: str | None = None
    key_fingerprint: str | None = None
    identity: str | None = None
    issuer: str | None = None
    signing_time: datetime | None = None
    tlog_index: int | None = None
    tlog_id: str | None = None

    def describe(self) -> str:
        if self.method == "key":
            return f"key {self.key_name or '?'} ({self.key_fingerprint})"
        return f"{self.identity} (issuer {self.issuer})"


@dataclass(frozen=True)
class VulnerabilityScanSummary:
    scanner: str
    findings_by_severity: Mapping[str, int]
    ignored_findings: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvidenceSummary:
    file_digests: Mapping[str, str]
    archive_members: int
    archive_bytes: int


@dataclass(frozen=True)
class ProvenanceSummary:
    image_digest: str
    builder_id: str
    source_repository: str
    source_ref: str | None
    commit_sha: str
    predicate_types: tuple[str, ...]
    signers: tuple[SignerSummary, ...]
    image_signature_verified: bool
    vulnerability_scan: VulnerabilityScanSummary | None = None
    evidence: EvidenceSummary | None = None
    # Material that did not verify but was not needed (e.g. an attestation by an untrusted
    # third party); recorded so an operator can surface it, never silently dropped.
    ignored: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class VerificationResult:
    ok: bool
    reason: Reason
    message: str
    summary: ProvenanceSummary | None = None

    @classmethod
    def failure(cls, reason: Reason, message: str) -> VerificationResult:
        return cls(ok=False, reason=reason, message=message)


@dataclass(frozen=True)
class SignatureCheck:
    """Verdict on one Sigstore bundle for one artifact, below the provenance rules."""

    ok: bool
    reason: Reason
    message: str
    signer: SignerSummary | None = None
    payload_type: str | None = None
    payload: bytes | None = None
