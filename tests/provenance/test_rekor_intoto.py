"""intoto/0.0.1 log entries on cosign `.att` layers (provenance/rekor.py): slsa-github-generator v1.4.0
and v1.9.0 as published, then each way the entry can fail to prove the envelope."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from hotfix_operator.provenance import (
    OciLayer,
    ProvenanceMaterial,
    ProvenancePolicy,
    Reason,
    ReleaseRequest,
    verify_provenance,
)
from hotfix_operator.provenance.rekor import parse_cosign_bundle_annotation, read_entry_body
from tests.provenance.container_vectors import GITHUB_ISSUER
from tests.provenance.intoto_vectors import LEGACY, REPOSITORY, LegacyVector, intoto_v001_body
from tests.provenance.private_sigstore import PrivateSigstore, Signer, sha256_hex, slsa_v02
from tests.provenance.test_cosign_layers import (
    CI_CLAIMS,
    COMMIT,
    IMAGE,
    custom_attestation,
    keyless,
    keyless_policy,
    material,
    request,
)
from tests.support.provenance import refused

BUNDLE = "dev.sigstore.cosign/bundle"


def legacy_material(vectors: Path, vector: LegacyVector) -> ProvenanceMaterial:
    from hotfix_operator.provenance import read_oci_layout

    return read_oci_layout(vectors / "slsa-github-generator" / vector.name / "oci-layout")


def legacy_policy(vector: LegacyVector, root: str) -> ProvenancePolicy:
    return ProvenancePolicy.model_validate(
        {
            "keylessIdentities": [{"issuer": {"exact": GITHUB_ISSUER}, "subject": {"exact": vector.builder}}],
            "trustedRoot": root,
            "allowedBuilders": [vector.builder],
            "allowedSourceRepositories": [REPOSITORY],
        }
    )


def legacy_request(vector: LegacyVector) -> ReleaseRequest:
    return ReleaseRequest(
        image=f"ghcr.io/slsa-framework/example-package@{vector.digest}",
        commit_sha=vector.commit,
        source_repository=f"https://{REPOSITORY}",
    )


def republished(layer: OciLayer, blob: bytes | None = None, **annotations: str | None) -> OciLayer:
    """The layer as someone with push access could republish it (new blob, digest to match)."""
    blob = layer.blob if blob is None else blob
    changed = dict(layer.annotations)
    for name, value in annotations.items():
        key = {"bundle": BUNDLE, "certificate": "dev.sigstore.cosign/certificate"}[name]
        if value is None:
            changed.pop(key, None)
        else:
            changed[key] = value
    return OciLayer(media_type=layer.media_type, digest="sha256:" + sha256_hex(blob), blob=blob, annotations=changed)


def verdict(vectors: Path, root: str, vector: LegacyVector, layer: OciLayer) -> Any:
    release = dataclasses.replace(legacy_material(vectors, vector), attestation_layers=(layer,))
    return verify_provenance(release, legacy_request(vector), legacy_policy(vector, root))


def only_layer(vectors: Path, vector: LegacyVector) -> OciLayer:
    (layer,) = legacy_material(vectors, vector).attestation_layers
    return layer


@pytest.mark.parametrize("vector", LEGACY, ids=lambda v: v.name)
def test_published_intoto_v001_attestation_verifies(vectors: Path, production_root: str, vector: LegacyVector) -> None:
    layer = only_layer(vectors, vector)
    logged = read_entry_body(parse_cosign_bundle_annotation(layer.annotations[BUNDLE]))
    assert (logged.kind, logged.signature) == ("intoto", None)  # 0.0.1 records no signature

    result = verdict(vectors, production_root, vector, layer)

    assert result.ok, result.message
    assert result.summary is not None
    (signer,) = result.summary.signers
    assert (signer.method, signer.identity, signer.tlog_index) == ("keyless", vector.builder, vector.log_index)
    assert signer.signing_time == vector.signed_at


@pytest.mark.parametrize("vector", LEGACY, ids=lambda v: v.name)
def test_flipped_signature_byte_is_refused(vectors: Path, production_root: str, vector: LegacyVector) -> None:
    layer = only_layer(vectors, vector)
    envelope = json.loads(layer.blob)
    signature = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    signature[10] ^= 0x01
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(signature)).decode()
    tampered = republished(layer, json.dumps(envelope).encode())
    refused(verdict(vectors, production_root, vector, tampered), Reason.SIGNATURE_INVALID, "does not verify")


@pytest.mark.parametrize("vector", LEGACY, ids=lambda v: v.name)
def test_envelope_other_than_the_logged_one_is_refused(
    vectors: Path, production_root: str, vector: LegacyVector
) -> None:
    """Same payload and signature, different bytes: 0.0.1 binds the envelope by its hash only."""
    layer = only_layer(vectors, vector)
    reserialized = json.dumps(json.loads(layer.blob), indent=2).encode()
    refused(
        verdict(vectors, production_root, vector, republished(layer, reserialized)),
        Reason.TLOG_ENTRY_MISMATCH,
        "records envelope sha256:",
    )


@pytest.mark.parametrize("vector", LEGACY, ids=lambda v: v.name)
def test_changed_integrated_time_breaks_the_set(vectors: Path, production_root: str, vector: LegacyVector) -> None:
    layer = only_layer(vectors, vector)
    annotation = json.loads(layer.annotations[BUNDLE])
    annotation["Payload"]["integratedTime"] += 60
    tampered = republished(layer, bundle=json.dumps(annotation))
    refused(verdict(vectors, production_root, vector, tampered), Reason.TLOG_SET_INVALID, "does not verify")


def test_swapped_entry_from_another_release_is_judged_at_its_time(vectors: Path, production_root: str) -> None:
    """v1.9.0's genuine entry next to v1.4.0's envelope: the SET holds, but it dates the signature
    to August 2023, long after v1.4.0's ten-minute certificate expired."""
    older, newer = LEGACY
    swapped = republished(only_layer(vectors, older), bundle=only_layer(vectors, newer).annotations[BUNDLE])
    refused(verdict(vectors, production_root, older, swapped), Reason.CERTIFICATE_EXPIRED, "outside the certificate")


@pytest.mark.parametrize("vector", LEGACY, ids=lambda v: v.name)
def test_missing_set_is_refused(vectors: Path, production_root: str, vector: LegacyVector) -> None:
    stripped = republished(only_layer(vectors, vector), bundle=None)
    refused(verdict(vectors, production_root, vector, stripped), Reason.TLOG_PROOF_MISSING, "no transparency log")


@pytest.mark.parametrize("vector", LEGACY, ids=lambda v: v.name)
def test_entry_of_an_unpinned_log_is_refused(vectors: Path, staging_root: str, vector: LegacyVector) -> None:
    refused(
        verdict(vectors, staging_root, vector, only_layer(vectors, vector)),
        Reason.TLOG_UNKNOWN_LOG,
        "not in the pinned trusted root",
    )


# -- synthetic intoto/0.0.1 entries: genuine SETs over bodies that name something else ----------


@pytest.fixture
def sigstore() -> PrivateSigstore:
    return PrivateSigstore()


def v001(payload: str = "own", verifier: str = "own") -> Any:
    other = slsa_v02(IMAGE, commit="b" * 40)

    def body(envelope: bytes, statement: bytes, signature: bytes, pem: str) -> dict[str, Any]:
        logged_payload = {"own": statement, "other": other, "none": None}[payload]
        logged_pem = pem if verifier == "own" else Signer(sigstore=PrivateSigstore(), claims=CI_CLAIMS).verifier_pem
        return intoto_v001_body(envelope, logged_payload, logged_pem)

    return body


@pytest.mark.parametrize("payload", ["own", "none"])
def test_private_intoto_v001_entry_verifies(sigstore: PrivateSigstore, payload: str) -> None:
    """The oldest entries have no payloadHash; the envelope's hash still binds it."""
    signer = keyless(sigstore)
    attestation = custom_attestation(signer, slsa_v02(IMAGE, commit=COMMIT), body=v001(payload))
    release = material([signer.signature_layer(IMAGE)], [attestation])
    result = verify_provenance(release, request(), keyless_policy(sigstore))
    assert result.ok, result.message


@pytest.mark.parametrize(
    ("payload", "verifier", "fragment"),
    [("other", "own", "records payload"), ("own", "other", "different signer")],
)
def test_private_intoto_v001_entry_naming_something_else_is_refused(
    sigstore: PrivateSigstore, payload: str, verifier: str, fragment: str
) -> None:
    signer = keyless(sigstore)
    attestation = custom_attestation(signer, slsa_v02(IMAGE, commit=COMMIT), body=v001(payload, verifier))
    release = material([signer.signature_layer(IMAGE)], [attestation])
    refused(verify_provenance(release, request(), keyless_policy(sigstore)), Reason.TLOG_ENTRY_MISMATCH, fragment)
