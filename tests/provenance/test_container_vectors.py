"""Real keyless SLSA provenance from public CI (cosign OCI layouts with legacy `.att` layers)."""

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
    Reason,
    verify_provenance,
)
from tests.provenance.container_vectors import (
    GENERATOR,
    GITHUB_ISSUER,
    OTHER_COMMIT,
    REPOSITORY,
    V1,
    V2,
    VECTORS,
    Vector,
    any_release_policy,
    material_for,
    policy_for,
    request_for,
)
from tests.provenance.private_sigstore import sha256_hex
from tests.support.provenance import refused


def with_attestation(material: ProvenanceMaterial, layer: OciLayer) -> ProvenanceMaterial:
    return dataclasses.replace(material, attestation_layers=(layer,))


def rehashed(layer: OciLayer, blob: bytes, **annotation_changes: str | None) -> OciLayer:
    """The layer as an attacker with push access would republish it: new blob, matching digest."""
    annotations = dict(layer.annotations)
    for key, value in annotation_changes.items():
        name = key.replace("__", "/").replace("_", ".")
        if value is None:
            annotations.pop(name, None)
        else:
            annotations[name] = value
    return OciLayer(
        media_type=layer.media_type, digest="sha256:" + sha256_hex(blob), blob=blob, annotations=annotations
    )


def edited_envelope(layer: OciLayer, edit: Any) -> bytes:
    envelope = json.loads(layer.blob)
    edit(envelope)
    return json.dumps(envelope).encode()


# ---------------------------------------------------------------------------------------------
# Accepted for exactly their digest, commit, repository and builder
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_verifies_with_the_production_root(vectors: Path, production_root: str, vector: Vector) -> None:
    result = verify_provenance(material_for(vectors, vector), request_for(vector), policy_for(vector, production_root))

    assert result.ok, result.message
    assert result.reason == Reason.VERIFIED
    summary = result.summary
    assert summary is not None
    assert summary.image_digest == vector.digest
    assert summary.builder_id == vector.builder
    assert summary.source_repository == REPOSITORY
    assert summary.source_ref == "refs/tags/v13.0.30"
    assert summary.commit_sha == vector.commit
    assert summary.predicate_types == ("https://slsa.dev/provenance/v0.2",)
    (signer,) = summary.signers
    assert signer.method == "keyless"
    assert signer.identity == vector.builder
    assert signer.issuer == GITHUB_ISSUER
    assert signer.signing_time == vector.signed_at
    assert signer.tlog_index == vector.log_index
    assert signer.tlog_id == "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
    assert summary.ignored == ()
    assert vector.commit in result.message


@pytest.mark.parametrize(
    "spelling",
    [
        "github.com/slsa-framework/example-package",
        "https://github.com/slsa-framework/example-package",
        "https://github.com/slsa-framework/example-package.git",
        "git+https://github.com/slsa-framework/example-package@refs/tags/v13.0.30",
        "https://github.com/SLSA-Framework/Example-Package/",
    ],
)
def test_repository_spellings_name_the_same_repository(vectors: Path, production_root: str, spelling: str) -> None:
    result = verify_provenance(
        material_for(vectors, V2), request_for(V2, source_repository=spelling), policy_for(V2, production_root)
    )
    assert result.ok, result.message


def test_builder_allowed_by_name_accepts_any_release_tag(vectors: Path, production_root: str) -> None:
    policy = policy_for(
        V1,
        production_root,
        allowedBuilders=[GENERATOR],
        keylessIdentities=[
            {
                "issuer": {"exact": GITHUB_ISSUER},
                "subject": {"regex": GENERATOR.replace(".", r"\.") + r"@refs/tags/v[0-9.]+"},
            }
        ],
    )
    for vector in VECTORS:
        assert verify_provenance(material_for(vectors, vector), request_for(vector), policy).ok


def test_material_from_the_layout_matches_the_index(vectors: Path) -> None:
    material = material_for(vectors, V1)
    assert material.image_digest == V1.digest
    assert material.image_manifest is not None
    assert material.signature_layers == ()
    assert len(material.attestation_layers) == 1
    assert material.attestation_layers[0].media_type == "application/vnd.dsse.envelope.v1+json"


# ---------------------------------------------------------------------------------------------
# Refused when any fact differs, each with its own reason
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_another_commit_is_refused(vectors: Path, production_root: str, vector: Vector) -> None:
    result = verify_provenance(
        material_for(vectors, vector), request_for(vector, commit_sha=OTHER_COMMIT), policy_for(vector, production_root)
    )
    refused(
        result, Reason.COMMIT_MISMATCH, f"provenance commit {vector.commit[:7]}…", f"≠ requested {OTHER_COMMIT[:7]}…"
    )


def test_another_repository_is_refused(vectors: Path, production_root: str) -> None:
    other = "github.com/slsa-framework/other-package"
    policy = policy_for(V1, production_root, allowedSourceRepositories=[REPOSITORY, other])
    result = verify_provenance(material_for(vectors, V1), request_for(V1, source_repository=other), policy)
    refused(result, Reason.SOURCE_MISMATCH, f"provenance source repository {REPOSITORY} ≠ requested {other}")


def test_repository_outside_the_policy_is_refused_before_anything_else(vectors: Path, production_root: str) -> None:
    policy = policy_for(V1, production_root, allowedSourceRepositories=["github.com/acme/checkout"])
    result = verify_provenance(material_for(vectors, V1), request_for(V1), policy)
    refused(result, Reason.SOURCE_MISMATCH, f"requested source repository {REPOSITORY} is not allowed")


def test_another_builder_is_refused(vectors: Path, production_root: str) -> None:
    generic = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml"
    result = verify_provenance(
        material_for(vectors, V1), request_for(V1), policy_for(V1, production_root, allowedBuilders=[generic])
    )
    refused(result, Reason.BUILDER_NOT_ALLOWED, V1.builder, generic)


def test_builder_pinned_to_another_release_is_refused(vectors: Path, production_root: str) -> None:
    policy = policy_for(
        V2,
        production_root,
        allowedBuilders=[V1.builder],
        keylessIdentities=[{"issuer": {"exact": GITHUB_ISSUER}, "subject": {"regex": ".*"}}],
    )
    result = verify_provenance(material_for(vectors, V2), request_for(V2), policy)
    refused(result, Reason.BUILDER_NOT_ALLOWED, V2.builder)


def test_another_image_digest_is_refused(vectors: Path, production_root: str) -> None:
    result = verify_provenance(
        material_for(vectors, V1), request_for(V1, image=f"ghcr.io/x@{V2.digest}"), policy_for(V1, production_root)
    )
    refused(result, Reason.DIGEST_MISMATCH, "≠ requested sha256:55aee984fd6b")


def test_attestation_replayed_onto_another_image_is_refused(vectors: Path, production_root: str) -> None:
    """v1.10.0's genuine provenance, copied next to the v2.0.0 image."""
    replayed = dataclasses.replace(material_for(vectors, V1), image_digest=V2.digest, image_manifest=None)
    result = verify_provenance(replayed, request_for(V2), any_release_policy(production_root))
    refused(
        result,
        Reason.DIGEST_MISMATCH,
        "statement is about sha256:e0a0a765d690",
        "≠ requested image sha256:55aee984fd6b",
    )


def test_image_manifest_not_hashing_to_the_digest_is_refused(vectors: Path, production_root: str) -> None:
    material = material_for(vectors, V1)
    tampered = dataclasses.replace(material, image_manifest=(material.image_manifest or b"") + b" ")
    refused(
        verify_provenance(tampered, request_for(V1), policy_for(V1, production_root)),
        Reason.DIGEST_MISMATCH,
        "image manifest hashes to",
    )


def test_tag_instead_of_digest_is_refused(vectors: Path, production_root: str) -> None:
    result = verify_provenance(
        material_for(vectors, V1),
        request_for(V1, image="ghcr.io/slsa-framework/example-package:v13.0.30"),
        policy_for(V1, production_root),
    )
    refused(result, Reason.NOT_DIGEST_PINNED, "not pinned to a digest")


@pytest.mark.parametrize(
    "identity",
    [
        {"issuer": {"exact": GITHUB_ISSUER}, "subject": {"exact": GENERATOR + "@refs/tags/v9.9.9"}},
        {"issuer": {"exact": "https://accounts.google.com"}, "subject": {"exact": V1.builder}},
        # Regular expressions must match the whole value, not a part of it.
        {"issuer": {"exact": GITHUB_ISSUER}, "subject": {"regex": "generator_container_slsa3"}},
        {"issuer": {"regex": "https://token"}, "subject": {"exact": V1.builder}},
    ],
    ids=["other-workflow-ref", "other-issuer", "partial-subject-regex", "partial-issuer-regex"],
)
def test_another_identity_is_refused(vectors: Path, production_root: str, identity: dict[str, Any]) -> None:
    result = verify_provenance(
        material_for(vectors, V1), request_for(V1), policy_for(V1, production_root, keylessIdentities=[identity])
    )
    refused(result, Reason.IDENTITY_MISMATCH, V1.builder, "matches no trusted identity")


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_staging_root_is_refused_as_unknown_log(vectors: Path, staging_root: str, vector: Vector) -> None:
    """The signing time comes from the Rekor SET, so the log is judged first: the production
    log (id c0d23d6a…) is not in the staging root, hence TlogUnknownLog, before the certificate
    could even be judged (it would not chain to staging Fulcio either)."""
    result = verify_provenance(material_for(vectors, vector), request_for(vector), policy_for(vector, staging_root))
    refused(result, Reason.TLOG_UNKNOWN_LOG, "transparency log c0d23d6ad406", "not in the pinned trusted root")


def test_root_with_the_production_log_but_another_ca_is_refused_as_untrusted(
    vectors: Path, production_root: str, staging_root: str
) -> None:
    mixed = json.loads(production_root)
    mixed["certificateAuthorities"] = json.loads(staging_root)["certificateAuthorities"]
    result = verify_provenance(material_for(vectors, V1), request_for(V1), policy_for(V1, json.dumps(mixed)))
    refused(result, Reason.CERTIFICATE_UNTRUSTED, "does not chain to the pinned trusted root")


def test_ca_no_longer_valid_at_signing_time_is_refused(vectors: Path, production_root: str) -> None:
    root = json.loads(production_root)
    for authority in root["certificateAuthorities"]:
        authority["validFor"]["end"] = "2023-01-01T00:00:00Z"
    result = verify_provenance(material_for(vectors, V1), request_for(V1), policy_for(V1, json.dumps(root)))
    refused(result, Reason.CERTIFICATE_UNTRUSTED, "no pinned Fulcio CA was valid at that time")


def test_production_log_key_retired_before_signing_is_refused(vectors: Path, production_root: str) -> None:
    root = json.loads(production_root)
    root["tlogs"][0]["publicKey"]["validFor"]["end"] = "2023-01-01T00:00:00Z"
    result = verify_provenance(material_for(vectors, V1), request_for(V1), policy_for(V1, json.dumps(root)))
    refused(result, Reason.TLOG_UNKNOWN_LOG, "outside log https://rekor.sigstore.dev's key validity")


# ---------------------------------------------------------------------------------------------
# Tampered material
# ---------------------------------------------------------------------------------------------


def test_edited_payload_is_refused_as_signature_invalid(vectors: Path, production_root: str) -> None:
    material = material_for(vectors, V1)
    original = material.attestation_layers[0]

    def point_at_another_commit(envelope: dict[str, Any]) -> None:
        statement = json.loads(base64.b64decode(envelope["payload"]))
        statement["predicate"]["invocation"]["configSource"]["digest"]["sha1"] = OTHER_COMMIT
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()

    tampered = rehashed(original, edited_envelope(original, point_at_another_commit))
    result = verify_provenance(
        with_attestation(material, tampered), request_for(V1, commit_sha=OTHER_COMMIT), policy_for(V1, production_root)
    )
    refused(result, Reason.SIGNATURE_INVALID, "does not verify")


def test_blob_not_matching_its_descriptor_is_refused(vectors: Path, production_root: str) -> None:
    material = material_for(vectors, V1)
    original = material.attestation_layers[0]
    swapped = dataclasses.replace(original, blob=original.blob[:-1] + b" ")
    result = verify_provenance(with_attestation(material, swapped), request_for(V1), policy_for(V1, production_root))
    refused(result, Reason.DIGEST_MISMATCH, "hashes to")


def test_swapped_payload_type_is_refused(vectors: Path, production_root: str) -> None:
    material = material_for(vectors, V1)
    original = material.attestation_layers[0]
    tampered = rehashed(original, edited_envelope(original, lambda e: e.update(payloadType="application/json")))
    result = verify_provenance(with_attestation(material, tampered), request_for(V1), policy_for(V1, production_root))
    refused(result, Reason.PAYLOAD_TYPE_NOT_ALLOWED, "'application/json'")


def test_extra_dsse_signature_is_refused(vectors: Path, production_root: str) -> None:
    material = material_for(vectors, V1)
    original = material.attestation_layers[0]
    tampered = rehashed(original, edited_envelope(original, lambda e: e["signatures"].append(e["signatures"][0])))
    result = verify_provenance(with_attestation(material, tampered), request_for(V1), policy_for(V1, production_root))
    refused(result, Reason.SIGNATURE_INVALID, "carries 2 signatures")


@pytest.mark.parametrize("second_key", ['"payload"', '"Payload"', '"PAYLOAD"'])
def test_duplicate_json_keys_are_refused(vectors: Path, production_root: str, second_key: str) -> None:
    """Go decoders match keys case-insensitively and keep the last; we refuse both forms of doubt."""
    material = material_for(vectors, V1)
    original = material.attestation_layers[0]
    decoy = base64.b64encode(b'{"_type":"https://in-toto.io/Statement/v1"}').decode()
    blob = original.blob.replace(
        b'{"payloadType"', b"{" + second_key.encode() + b':"' + decoy.encode() + b'","payloadType"', 1
    )
    result = verify_provenance(
        with_attestation(material, rehashed(original, blob)), request_for(V1), policy_for(V1, production_root)
    )
    refused(result, Reason.MALFORMED_INPUT, "ambiguous JSON")


def test_certificate_of_another_signing_is_refused_as_expired(vectors: Path, production_root: str) -> None:
    """v1.10.0's certificate on v2.0.0's attestation: at v2.0.0's logged time it had long expired."""
    donor = material_for(vectors, V1).attestation_layers[0]
    material = material_for(vectors, V2)
    original = material.attestation_layers[0]
    swapped = rehashed(
        original, original.blob, dev_sigstore_cosign__certificate=donor.annotations["dev.sigstore.cosign/certificate"]
    )
    policy = policy_for(
        V2, production_root, keylessIdentities=[{"issuer": {"exact": GITHUB_ISSUER}, "subject": {"regex": ".*"}}]
    )
    refused(verify_provenance(with_attestation(material, swapped), request_for(V2), policy), Reason.CERTIFICATE_EXPIRED)


def test_tampered_set_is_refused(vectors: Path, production_root: str) -> None:
    material = material_for(vectors, V1)
    original = material.attestation_layers[0]
    bundle = json.loads(original.annotations["dev.sigstore.cosign/bundle"])
    bundle["Payload"]["integratedTime"] += 60
    tampered = rehashed(original, original.blob, dev_sigstore_cosign__bundle=json.dumps(bundle))
    result = verify_provenance(with_attestation(material, tampered), request_for(V1), policy_for(V1, production_root))
    refused(result, Reason.TLOG_SET_INVALID, "inclusion promise (SET)", "does not verify")


def test_missing_transparency_log_entry_is_refused(vectors: Path, production_root: str) -> None:
    material = material_for(vectors, V1)
    original = material.attestation_layers[0]
    stripped = rehashed(original, original.blob, dev_sigstore_cosign__bundle=None)
    result = verify_provenance(with_attestation(material, stripped), request_for(V1), policy_for(V1, production_root))
    refused(result, Reason.TLOG_PROOF_MISSING, "no transparency log entry")


def test_missing_certificate_is_treated_as_a_key_signature_nobody_trusts(vectors: Path, production_root: str) -> None:
    material = material_for(vectors, V1)
    original = material.attestation_layers[0]
    stripped = rehashed(original, original.blob, dev_sigstore_cosign__certificate=None)
    result = verify_provenance(with_attestation(material, stripped), request_for(V1), policy_for(V1, production_root))
    refused(result, Reason.UNTRUSTED_KEY, "trusts no keys")


def test_unsigned_predicate_type_annotation_is_ignored(vectors: Path, production_root: str) -> None:
    material = material_for(vectors, V1)
    original = material.attestation_layers[0]
    relabelled = rehashed(original, original.blob, predicateType="https://example.com/harmless")
    assert verify_provenance(
        with_attestation(material, relabelled), request_for(V1), policy_for(V1, production_root)
    ).ok


@pytest.mark.parametrize(
    ("annotation", "value", "fragment"),
    [
        (
            "dev.sigstore.cosign/certificate",
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
            "PEM",
        ),
        ("dev.sigstore.cosign/bundle", '{"SignedEntryTimestamp": "@@@", "Payload": {}}', "Rekor bundle annotation"),
        ("dev.sigstore.cosign/bundle", "not json", "not valid JSON"),
    ],
)
def test_malformed_annotations_are_refused_with_a_specific_message(
    vectors: Path, production_root: str, annotation: str, value: str, fragment: str
) -> None:
    material = material_for(vectors, V1)
    original = material.attestation_layers[0]
    tampered = OciLayer(
        media_type=original.media_type,
        digest=original.digest,
        blob=original.blob,
        annotations={**original.annotations, annotation: value},
    )
    result = verify_provenance(with_attestation(material, tampered), request_for(V1), policy_for(V1, production_root))
    refused(result, Reason.MALFORMED_INPUT, fragment)


def test_malformed_base64_payload_is_refused(vectors: Path, production_root: str) -> None:
    material = material_for(vectors, V1)
    original = material.attestation_layers[0]
    tampered = rehashed(original, edited_envelope(original, lambda e: e.update(payload=e["payload"][:-3] + "*==")))
    result = verify_provenance(with_attestation(material, tampered), request_for(V1), policy_for(V1, production_root))
    refused(result, Reason.MALFORMED_INPUT, "payload is not base64")


def test_untrusted_extra_attestation_is_set_aside_and_reported(vectors: Path, production_root: str) -> None:
    material = material_for(vectors, V1)
    original = material.attestation_layers[0]
    broken = rehashed(original, edited_envelope(original, lambda e: e["signatures"].append(e["signatures"][0])))
    result = verify_provenance(
        dataclasses.replace(material, attestation_layers=(broken, original)),
        request_for(V1),
        policy_for(V1, production_root),
    )
    assert result.ok, result.message
    assert result.summary is not None
    assert len(result.summary.ignored) == 1
    assert result.summary.ignored[0].startswith("SignatureInvalid: .att layer")


def test_nothing_to_verify_is_no_signature(vectors: Path, production_root: str) -> None:
    material = dataclasses.replace(material_for(vectors, V1), attestation_layers=())
    refused(verify_provenance(material, request_for(V1), policy_for(V1, production_root)), Reason.NO_SIGNATURE)
