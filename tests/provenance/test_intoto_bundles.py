"""Sigstore bundles with intoto log entries (provenance/intoto_bundles.py), which sigstore-python refuses:
the slsa-github-generator v1.7–v2.0 bundles as published, then each way the entry can fail."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hotfix_operator.provenance import BundleArtifact, Reason, SignatureCheck, verify_bundle_signature
from tests.provenance.intoto_vectors import (
    BUNDLES,
    SIGNED_AT,
    SUBJECT,
    BundleVector,
    bundle_document,
    intoto_v001_body,
    private_bundle,
    signer_policy,
)
from tests.provenance.private_sigstore import IN_TOTO_PAYLOAD_TYPE, PrivateSigstore, b64, intoto_body, slsa_v02

IMAGE = "sha256:" + "ab" * 32


def check(document: dict[str, Any], vector: BundleVector, root: str) -> SignatureCheck:
    blob = json.dumps(document).encode()
    return verify_bundle_signature(
        BundleArtifact(blob=blob), artifact_digest=vector.artifact, policy=signer_policy(root, vector.signer)
    )


def refused(result: SignatureCheck, reason: Reason, fragment: str) -> None:
    assert (result.ok, result.reason) == (False, reason), result.message
    assert fragment in result.message, result.message


def entry(document: dict[str, Any]) -> dict[str, Any]:
    (only,) = document["verificationMaterial"]["tlogEntries"]
    return dict(only)


@pytest.mark.parametrize("vector", BUNDLES, ids=lambda v: v.path.split("/")[0])
def test_published_intoto_bundle_verifies(vectors: Path, production_root: str, vector: BundleVector) -> None:
    document = bundle_document(vectors, vector)
    assert (document["mediaType"], entry(document)["kindVersion"]["kind"]) == (vector.media_type, "intoto")
    assert ("inclusionProof" in entry(document)) == vector.has_proof

    result = check(document, vector, production_root)

    assert result.ok, result.message
    assert result.signer is not None
    assert (result.signer.identity, result.signer.tlog_index) == (vector.signer, vector.log_index)
    assert result.payload_type == IN_TOTO_PAYLOAD_TYPE


@pytest.mark.parametrize("vector", BUNDLES, ids=lambda v: v.path.split("/")[0])
def test_flipped_signature_byte_is_refused(vectors: Path, production_root: str, vector: BundleVector) -> None:
    document = bundle_document(vectors, vector)
    signature = bytearray(base64.b64decode(document["dsseEnvelope"]["signatures"][0]["sig"]))
    signature[-3] ^= 0x01
    document["dsseEnvelope"]["signatures"][0]["sig"] = b64(bytes(signature))
    refused(check(document, vector, production_root), Reason.SIGNATURE_INVALID, "does not verify")


@pytest.mark.parametrize("vector", BUNDLES, ids=lambda v: v.path.split("/")[0])
def test_changed_integrated_time_breaks_the_set(vectors: Path, production_root: str, vector: BundleVector) -> None:
    document = bundle_document(vectors, vector)
    document["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = str(
        int(entry(document)["integratedTime"]) + 30
    )
    refused(check(document, vector, production_root), Reason.TLOG_SET_INVALID, "does not verify")


def test_swapped_body_is_refused(vectors: Path, production_root: str) -> None:
    """Another genuine entry's body under this entry's SET and proof: neither covers it."""
    first, second, _ = BUNDLES
    document = bundle_document(vectors, first)
    other = entry(bundle_document(vectors, second))
    document["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"] = other["canonicalizedBody"]
    refused(check(document, first, production_root), Reason.TLOG_INCLUSION_PROOF_INVALID, "does not lead")
    del document["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    refused(check(document, first, production_root), Reason.TLOG_SET_INVALID, "does not verify")


def test_inclusion_proof_is_required_from_bundle_v02(vectors: Path, production_root: str) -> None:
    vector = BUNDLES[1]
    document = bundle_document(vectors, vector)
    del document["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    refused(check(document, vector, production_root), Reason.TLOG_PROOF_MISSING, "must carry an inclusion proof")


def test_dropped_proof_and_set_are_refused(vectors: Path, production_root: str) -> None:
    vector = BUNDLES[0]
    document = bundle_document(vectors, vector)
    del document["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    assert check(document, vector, production_root).ok  # v0.1: the SET alone suffices
    del document["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]
    refused(check(document, vector, production_root), Reason.TLOG_PROOF_MISSING, "neither an inclusion proof nor")


def test_inclusion_proof_without_set_leaves_the_time_unproven(vectors: Path, production_root: str) -> None:
    vector = BUNDLES[1]
    document = bundle_document(vectors, vector)
    del document["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]
    refused(check(document, vector, production_root), Reason.TLOG_PROOF_MISSING, "signing time is unproven")


@pytest.mark.parametrize("part", ["hash", "checkpoint"])
def test_tampered_inclusion_proof_is_refused(vectors: Path, production_root: str, part: str) -> None:
    vector = BUNDLES[0]
    document = bundle_document(vectors, vector)
    proof = document["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    if part == "hash":
        proof["hashes"][0] = b64(bytes(32))
        fragment = "does not lead"
    else:
        note = proof["checkpoint"]["envelope"]
        size = proof["treeSize"]
        proof["checkpoint"]["envelope"] = note.replace(f"\n{size}\n", f"\n{int(size) + 1}\n", 1)
        fragment = "not signed by the pinned key"
    refused(check(document, vector, production_root), Reason.TLOG_INCLUSION_PROOF_INVALID, fragment)


@pytest.mark.parametrize("vector", BUNDLES, ids=lambda v: v.path.split("/")[0])
def test_unpinned_log_is_refused(vectors: Path, staging_root: str, vector: BundleVector) -> None:
    refused(check(bundle_document(vectors, vector), vector, staging_root), Reason.TLOG_UNKNOWN_LOG, "not in the pinned")


# -- synthetic intoto bundles: genuine SETs, wrong in one respect each ---------------------------


@pytest.fixture(scope="module")
def sigstore() -> PrivateSigstore:
    return PrivateSigstore()


def private_check(sigstore: PrivateSigstore, blob: bytes) -> SignatureCheck:
    policy = signer_policy(sigstore.trusted_root(), SUBJECT)
    return verify_bundle_signature(BundleArtifact(blob=blob), artifact_digest=IMAGE, policy=policy)


STATEMENT = slsa_v02(IMAGE, commit="c" * 40)
OTHER = slsa_v02(IMAGE, commit="d" * 40)


def test_private_intoto_bundles_of_both_versions_verify(sigstore: PrivateSigstore) -> None:
    v001 = private_bundle(
        sigstore, STATEMENT, body_for=lambda env, payload, sig, pem: intoto_v001_body(env, payload, pem)
    )
    for blob in (private_bundle(sigstore, STATEMENT), v001):
        result = private_check(sigstore, blob)
        assert result.ok, result.message


def other_payload_type(envelope: bytes, payload: bytes, signature: bytes, pem: str) -> dict[str, Any]:
    body = intoto_body(envelope, payload, signature, pem)
    body["spec"]["content"]["envelope"]["payloadType"] = "text/plain"
    return body


@pytest.mark.parametrize(
    ("body_for", "fragment"),
    [
        (lambda env, payload, sig, pem: intoto_body(env, OTHER, sig, pem), "records payload"),
        (lambda env, payload, sig, pem: intoto_v001_body(env, OTHER, pem), "records payload"),
        (
            lambda env, payload, sig, pem: intoto_body(env, payload, sig[:-1] + bytes([sig[-1] ^ 1]), pem),
            "different signature",
        ),
        (other_payload_type, "payload type"),
    ],
    ids=["v002-payload", "v001-payload", "v002-signature", "v002-payload-type"],
)
def test_private_entry_naming_something_else_is_refused(
    sigstore: PrivateSigstore, body_for: Any, fragment: str
) -> None:
    result = private_check(sigstore, private_bundle(sigstore, STATEMENT, body_for=body_for))
    refused(result, Reason.TLOG_ENTRY_MISMATCH, fragment)


def test_entry_logged_after_the_certificate_expired_is_refused(sigstore: PrivateSigstore) -> None:
    late = private_bundle(sigstore, STATEMENT, logged_at=SIGNED_AT + timedelta(minutes=30))
    refused(private_check(sigstore, late), Reason.CERTIFICATE_EXPIRED, "outside the certificate's validity")
