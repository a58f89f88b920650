"""The two real container vectors (slsa-github-generator, cosign OCI layouts) and their expected facts."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hotfix_operator.provenance import ProvenanceMaterial, ProvenancePolicy, ReleaseRequest, read_oci_layout

REPOSITORY = "github.com/slsa-framework/example-package"
GENERATOR = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
OTHER_COMMIT = "a8b1963f0a9d5d8c6a8b7c0e5f2d1e3c4b5a6978"


@dataclasses.dataclass(frozen=True)
class Vector:
    name: str
    digest: str
    commit: str
    builder: str
    signed_at: datetime
    log_index: int


V1 = Vector(
    "container-v1.10.0",
    "sha256:e0a0a765d690a5104331cfbac88ebbbf01736c1f87aaa3cd455c516a5ea586a5",
    "d37a7f740ee7404914456f24dcd90e865a0509e8",
    GENERATOR + "@refs/tags/v1.10.0",
    datetime(2024, 3, 21, 10, 34, 4, tzinfo=UTC),
    80008005,
)
V2 = Vector(
    "container-v2.0.0",
    "sha256:55aee984fd6b1d0e0a19a55265d10d40063a2212bdbabd75b202b1728236548d",
    "693130cb6cb840a7bc9cb18c6510d536a95dc7e6",
    GENERATOR + "@refs/tags/v2.0.0",
    datetime(2024, 4, 22, 21, 35, 15, tzinfo=UTC),
    87850616,
)
VECTORS = [V1, V2]


def policy_for(vector: Vector, root: str, **changes: Any) -> ProvenancePolicy:
    spec: dict[str, Any] = {
        "keylessIdentities": [{"issuer": {"exact": GITHUB_ISSUER}, "subject": {"exact": vector.builder}}],
        "trustedRoot": root,
        "allowedBuilders": [vector.builder],
        "allowedSourceRepositories": [REPOSITORY],
    }
    spec.update(changes)
    return ProvenancePolicy.model_validate(spec)


def any_release_policy(root: str) -> ProvenancePolicy:
    """Trusts the generator at any release tag: both vectors' signers."""
    return policy_for(
        V1,
        root,
        allowedBuilders=[GENERATOR],
        keylessIdentities=[
            {
                "issuer": {"exact": GITHUB_ISSUER},
                "subject": {"regex": GENERATOR.replace(".", r"\.") + r"@refs/tags/v[0-9.]+"},
            }
        ],
    )


def request_for(vector: Vector, **changes: str) -> ReleaseRequest:
    fields = {
        "image": f"ghcr.io/slsa-framework/example-package@{vector.digest}",
        "commit_sha": vector.commit,
        "source_repository": f"https://{REPOSITORY}",
    }
    fields.update(changes)
    return ReleaseRequest(**fields)


def material_for(vectors: Path, vector: Vector) -> ProvenanceMaterial:
    return read_oci_layout(vectors / "slsa-github-generator" / vector.name / "oci-layout")
