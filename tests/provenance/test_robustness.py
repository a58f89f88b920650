"""Arbitrary damage to real material never raises and never changes what is verified."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotfix_operator.provenance import (
    BundleArtifact,
    OciLayer,
    ProvenanceMaterial,
    ProvenancePolicy,
    Reason,
    ReleaseRequest,
    read_oci_layout,
    verify_provenance,
)
from tests.provenance.container_vectors import V1, policy_for, request_for
from tests.provenance.private_sigstore import Signer, public_pem, sha256_hex

KEY_POLICY = ProvenancePolicy.model_validate(
    {
        "trustedKeys": [{"name": "ci", "publicKey": public_pem(Signer().key)}],
        "requireTransparencyLog": False,
        "allowedBuilders": ["https://github.com/acme/ci/.github/workflows/build.yml"],
        "allowedSourceRepositories": ["github.com/acme/checkout"],
    }
)
ANNOTATIONS = ["dev.sigstore.cosign/bundle", "dev.sigstore.cosign/certificate", "dev.cosignproject.cosign/signature"]


def mutate(data: bytes, position: int, action: int, value: int) -> bytes:
    if not data:
        return bytes([value])
    index = position % len(data)
    if action == 0:
        return data[:index] + bytes([value]) + data[index + 1 :]
    if action == 1:
        return data[:index] + data[index + 1 :]
    if action == 2:
        return data[:index] + bytes([value]) + data[index:]
    return data[:index]


@pytest.fixture(scope="module")
def genuine(vectors: Path) -> ProvenanceMaterial:
    return read_oci_layout(vectors / "slsa-github-generator" / V1.name / "oci-layout")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    target=st.sampled_from(["blob", *ANNOTATIONS]),
    position=st.integers(min_value=0, max_value=20_000),
    action=st.integers(min_value=0, max_value=3),
    value=st.integers(min_value=0, max_value=255),
)
def test_damaged_attestation_never_raises_nor_verifies_other_facts(
    genuine: ProvenanceMaterial, production_root: str, target: str, position: int, action: int, value: int
) -> None:
    original = genuine.attestation_layers[0]
    if target == "blob":
        blob = mutate(original.blob, position, action, value)
        annotations = dict(original.annotations)
    else:
        blob = original.blob
        text = original.annotations.get(target, "").encode()
        annotations = {**original.annotations, target: mutate(text, position, action, value).decode("utf-8", "replace")}
    damaged = OciLayer(original.media_type, "sha256:" + sha256_hex(blob), blob, annotations)
    result = verify_provenance(
        dataclasses.replace(genuine, attestation_layers=(damaged,)), request_for(V1), policy_for(V1, production_root)
    )
    assert isinstance(result.reason, Reason)
    assert result.message
    if result.ok:
        # Only damage that changes nothing signed (JSON whitespace, an unused annotation) may pass.
        assert result.summary is not None
        assert (result.summary.commit_sha, result.summary.builder_id) == (V1.commit, V1.builder)
    else:
        assert result.reason != Reason.VERIFIED


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bundle_bytes_are_refused_without_raising(blob: bytes) -> None:
    material = ProvenanceMaterial(image_digest="sha256:" + "1" * 64, bundles=(BundleArtifact(blob=blob),))
    request = ReleaseRequest(
        image="sha256:" + "1" * 64, commit_sha="a" * 40, source_repository="github.com/acme/checkout"
    )
    result = verify_provenance(material, request, KEY_POLICY)
    assert not result.ok
    assert result.reason == Reason.MALFORMED_INPUT


@settings(max_examples=200, deadline=None)
@given(image=st.text(max_size=120), commit=st.text(max_size=60), repository=st.text(max_size=120))
def test_arbitrary_request_fields_never_raise(image: str, commit: str, repository: str) -> None:
    material = ProvenanceMaterial(image_digest="sha256:" + "1" * 64)
    result = verify_provenance(
        material, ReleaseRequest(image=image, commit_sha=commit, source_repository=repository), KEY_POLICY
    )
    assert not result.ok
    assert result.reason in {
        Reason.NOT_DIGEST_PINNED,
        Reason.MALFORMED_INPUT,
        Reason.SOURCE_MISMATCH,
        Reason.DIGEST_MISMATCH,
    }
