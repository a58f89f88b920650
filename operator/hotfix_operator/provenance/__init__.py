"""Provenance verification core: bytes in, verdict out, no I/O (apart from `read_oci_layout`).

Entry points:
  verify_provenance(material, request, policy) -> VerificationResult   the operator's gate
  verify_bundle_signature(bundle, artifact_digest=…, policy=…) -> SignatureCheck
  read_oci_layout(directory) -> ProvenanceMaterial                     tests and tooling
  load_policy(spec) -> ProvenancePolicy (raises Rejected(PolicyInvalid))
"""

from __future__ import annotations

from .artifacts import verify_bundle_signature
from .evidence_bundle import EvidenceLimits
from .inputs import BundleArtifact, EvidenceFiles, OciLayer, ProvenanceMaterial, ReleaseRequest
from .ocilayout import read_oci_layout
from .policy import (
    KeylessIdentity,
    ProvenancePolicy,
    SignerPolicy,
    StringMatch,
    TrustedKey,
    VulnerabilityScanPolicy,
)
from .policy_loading import load_policy
from .reasons import Reason, Rejected
from .results import (
    EvidenceSummary,
    ProvenanceSummary,
    SignatureCheck,
    SignerSummary,
    VerificationResult,
    VulnerabilityScanSummary,
)
from .verifier import verify_provenance

__all__ = [
    "BundleArtifact",
    "EvidenceFiles",
    "EvidenceLimits",
    "EvidenceSummary",
    "KeylessIdentity",
    "OciLayer",
    "ProvenanceMaterial",
    "ProvenancePolicy",
    "ProvenanceSummary",
    "Reason",
    "Rejected",
    "ReleaseRequest",
    "SignatureCheck",
    "SignerPolicy",
    "SignerSummary",
    "StringMatch",
    "TrustedKey",
    "VerificationResult",
    "VulnerabilityScanPolicy",
    "VulnerabilityScanSummary",
    "load_policy",
    "read_oci_layout",
    "verify_bundle_signature",
    "verify_provenance",
]
