"""What the verifier is given: plain bytes and strings, fetched by someone else.

The operator's registry client fills these from `sha256-<hex>.sig` / `.att` tags and OCI
referrers; `ocilayout.read_oci_layout` fills them from a directory. The verifier trusts none of
it: every blob is re-hashed against its declared digest before use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class OciLayer:
    """One layer of a cosign signature (`.sig`) or attestation (`.att`) manifest."""

    media_type: str
    digest: str
    blob: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)
    size: int | None = None


@dataclass(frozen=True)
class BundleArtifact:
    """A Sigstore bundle (v0.1–v0.3 JSON), e.g. the layer of an OCI 1.1 referrer."""

    blob: bytes
    media_type: str = "application/vnd.dev.sigstore.bundle.v0.3+json"
    digest: str | None = None


@dataclass(frozen=True)
class EvidenceFiles:
    """The optional evidence bundle: file name → bytes (evidence.tar.gz, provenance.json, SHA256SUMS)."""

    files: Mapping[str, bytes]


@dataclass(frozen=True)
class ProvenanceMaterial:
    """Everything found for one image digest."""

    image_digest: str
    image_manifest: bytes | None = None
    signature_layers: Sequence[OciLayer] = ()
    attestation_layers: Sequence[OciLayer] = ()
    bundles: Sequence[BundleArtifact] = ()
    evidence: EvidenceFiles | None = None


@dataclass(frozen=True)
class ReleaseRequest:
    """The facts a HotfixRelease asserts and the provenance must confirm."""

    image: str
    commit_sha: str
    source_repository: str
