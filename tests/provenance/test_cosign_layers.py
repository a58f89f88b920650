"""cosign's legacy `.sig` / `.att` layers signed here, with keys and keylessly via a private Sigstore.

Every acceptance is followed by the tampered variants an attacker with registry push access
(or a confused pipeline) could produce, each refused with its own reason.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from hotfix_operator.provenance import (
    OciLayer,
    ProvenanceMaterial,
    ProvenancePolicy,
    Reason,
    ReleaseRequest,
    verify_provenance,
)
from hotfix_operator.provenance.dsse import pae
from hotfix_operator.provenance.simplesigning import cosign_signing_payload, read_simple_signing
from tests.provenance.private_sigstore import (
    DSSE_LAYER,
    SIMPLE_SIGNING,
    BuildClaims,
    PrivateSigstore,
    Signer,
    b64,
    cert_pem,
    dsse_body,
    envelope_bytes,
    hashedrekord_body,
    intoto_body,
    layer,
    new_key,
    public_pem,
    sha256_hex,
    sign,
    simple_signing_payload,
    slsa_v02,
    slsa_v1,
)
from tests.support.provenance import refused

IMAGE = "sha256:" + sha256_hex(b"checkout 4.1.2-hotfix.1 image manifest")
OTHER_IMAGE = "sha256:" + sha256_hex(b"some other image")
COMMIT = "a8b1963f0a9d5d8c6a8b7c0e5f2d1e3c4b5a6978"
OTHER_COMMIT = "693130cb6cb840a7bc9cb18c6510d536a95dc7e6"
BUILDER = "https://github.com/acme/ci/.github/workflows/build.yml@refs/tags/v1.0.0"
REPOSITORY = "https://github.com/acme/checkout"


@pytest.fixture(scope="module")
def sigstore() -> PrivateSigstore:
    return PrivateSigstore()


@pytest.fixture(scope="module")
def ci_key_signer(sigstore: PrivateSigstore) -> Signer:
    return Signer(sigstore=sigstore)


def key_policy(sigstore: PrivateSigstore, signer: Signer, **changes: Any) -> ProvenancePolicy:
    spec: dict[str, Any] = {
        "trustedKeys": [{"name": "ci", "publicKey": public_pem(signer.key)}],
        "trustedRoot": sigstore.trusted_root(),
        "allowedBuilders": [BUILDER],
        "allowedSourceRepositories": ["github.com/acme/checkout"],
        "requireImageSignature": True,
    }
    spec.update(changes)
    return ProvenancePolicy.model_validate(spec)


def request(**changes: str) -> ReleaseRequest:
    fields = {
        "image": f"registry.example.com/shop/checkout@{IMAGE}",
        "commit_sha": COMMIT,
        "source_repository": REPOSITORY,
    }
    fields.update(changes)
    return ReleaseRequest(**fields)


def material(signatures: list[OciLayer], attestations: list[OciLayer], image: str = IMAGE) -> ProvenanceMaterial:
    return ProvenanceMaterial(
        image_digest=image, signature_layers=tuple(signatures), attestation_layers=tuple(attestations)
    )


def signed_release(signer: Signer, statement: bytes | None = None) -> ProvenanceMaterial:
    return material(
        [signer.signature_layer(IMAGE)], [signer.attestation_layer(statement or slsa_v02(IMAGE, commit=COMMIT))]
    )


def custom_attestation(
    signer: Signer, statement: bytes, *, payload_type: str | None = None, **options: Any
) -> OciLayer:
    """An `.att` layer built piece by piece, so single parts can be wrong."""
    signed_type = options.get("signed_type", payload_type or "application/vnd.in-toto+json")
    signature = options.get("signature") or sign(signer.key, options.get("signed_bytes") or pae(signed_type, statement))
    envelope = options.get("envelope") or envelope_bytes(statement, [signature], payload_type or signed_type)
    body_kind = options.get("body", dsse_body)
    body = body_kind(
        envelope,
        options.get("logged_payload", statement),
        options.get("logged_signature", signature),
        signer.verifier_pem,
    )
    return layer(DSSE_LAYER, envelope, signer.annotations_for(body))


# ---------------------------------------------------------------------------------------------
# Key-signed
# ---------------------------------------------------------------------------------------------


def test_key_signed_release_verifies(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    result = verify_provenance(signed_release(ci_key_signer), request(), key_policy(sigstore, ci_key_signer))
    assert result.ok, result.message
    summary = result.summary
    assert summary is not None
    assert summary.image_signature_verified
    assert (summary.builder_id, summary.source_repository, summary.commit_sha) == (
        BUILDER,
        "github.com/acme/checkout",
        COMMIT,
    )
    (signer,) = summary.signers
    assert signer.method == "key"
    assert signer.key_name == "ci"
    assert signer.key_fingerprint is not None
    assert signer.key_fingerprint.startswith("sha256:")
    assert signer.tlog_index == 4242
    assert signer.signing_time == ci_key_signer.signed_at


def test_slsa_v1_provenance_verifies(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    release = signed_release(ci_key_signer, slsa_v1(IMAGE, commit=COMMIT))
    result = verify_provenance(release, request(), key_policy(sigstore, ci_key_signer))
    assert result.ok, result.message
    assert result.summary is not None
    assert result.summary.predicate_types == ("https://slsa.dev/provenance/v1",)
    assert result.summary.source_ref == "refs/tags/v4.1.2-hotfix.1"


def test_statement_v1_wrapping_slsa_v02_verifies(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    statement = slsa_v02(IMAGE, commit=COMMIT, statement_type="https://in-toto.io/Statement/v1")
    assert verify_provenance(
        signed_release(ci_key_signer, statement), request(), key_policy(sigstore, ci_key_signer)
    ).ok


def test_unknown_statement_type_is_refused(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    statement = slsa_v02(IMAGE, commit=COMMIT, statement_type="https://in-toto.io/Statement/v2")
    result = verify_provenance(signed_release(ci_key_signer, statement), request(), key_policy(sigstore, ci_key_signer))
    refused(result, Reason.STATEMENT_TYPE_NOT_ALLOWED, "Statement/v2")


def test_ed25519_key_verifies(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    statement = slsa_v02(IMAGE, commit=COMMIT)
    signature = key.sign(pae("application/vnd.in-toto+json", statement))
    attestation = layer(DSSE_LAYER, envelope_bytes(statement, [signature]), {})
    policy = key_policy(
        sigstore,
        ci_key_signer,
        trustedKeys=[{"name": "edwards", "publicKey": pem}],
        requireTransparencyLog=False,
        requireImageSignature=False,
    )
    result = verify_provenance(material([], [attestation]), request(), policy)
    assert result.ok, result.message
    assert result.summary is not None
    assert result.summary.signers[0].key_name == "edwards"


def test_signature_by_an_untrusted_key_is_refused(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    intruder = Signer(sigstore=sigstore)
    result = verify_provenance(signed_release(intruder), request(), key_policy(sigstore, ci_key_signer))
    refused(result, Reason.UNTRUSTED_KEY, "which is not a trusted key", "ci sha256:")


def test_unlogged_signature_by_an_unknown_key_cannot_be_told_from_a_bad_one(
    sigstore: PrivateSigstore, ci_key_signer: Signer
) -> None:
    intruder = Signer(sigstore=sigstore, log_entries=False)
    policy = key_policy(sigstore, ci_key_signer, requireTransparencyLog=False)
    refused(verify_provenance(signed_release(intruder), request(), policy), Reason.SIGNATURE_INVALID, "any trusted key")


def test_unlogged_signature_is_refused_when_the_log_is_required(sigstore: PrivateSigstore) -> None:
    unlogged = Signer(sigstore=sigstore, log_entries=False)
    result = verify_provenance(signed_release(unlogged), request(), key_policy(sigstore, unlogged))
    refused(result, Reason.TLOG_PROOF_MISSING, "no transparency log entry")


def test_unlogged_signature_is_accepted_when_the_policy_waives_the_log(sigstore: PrivateSigstore) -> None:
    unlogged = Signer(sigstore=sigstore, log_entries=False)
    policy = key_policy(sigstore, unlogged, requireTransparencyLog=False, trustedRoot=None)
    result = verify_provenance(signed_release(unlogged), request(), policy)
    assert result.ok, result.message
    assert result.summary is not None
    assert result.summary.signers[0].tlog_index is None


def test_edited_simple_signing_payload_is_refused(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    genuine = ci_key_signer.signature_layer(IMAGE)
    edited = simple_signing_payload(OTHER_IMAGE)
    forged = layer(SIMPLE_SIGNING, edited, genuine.annotations)
    result = verify_provenance(
        material([forged], [ci_key_signer.attestation_layer(slsa_v02(OTHER_IMAGE, commit=COMMIT))], OTHER_IMAGE),
        request(image=OTHER_IMAGE),
        key_policy(sigstore, ci_key_signer),
    )
    refused(result, Reason.SIGNATURE_INVALID, ".sig layer", "does not verify")


def test_signature_for_another_image_is_refused(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    other = ci_key_signer.signature_layer(OTHER_IMAGE)
    release = material([other], [ci_key_signer.attestation_layer(slsa_v02(IMAGE, commit=COMMIT))])
    refused(
        verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)),
        Reason.DIGEST_MISMATCH,
        "signature is for image",
    )


def _simple_signing_text(inner_image: str) -> bytes:
    return (
        '{"critical":{"identity":{"docker-reference":"registry.example.com/shop/checkout"},'
        f'"image":{{{inner_image}}},"type":"cosign container image signature"}},"optional":null}}'
    ).encode()


def test_the_payload_cosign_signs_is_known_byte_for_byte() -> None:
    """What `cosign sign` signs when given no annotations; discovery recognises it by its digest alone."""
    payload = cosign_signing_payload("registry.example.com/shop/checkout", IMAGE)

    assert payload == _simple_signing_text(f'"docker-manifest-digest":"{IMAGE}"')
    claim = read_simple_signing(payload)
    assert (claim.manifest_digest, claim.docker_reference) == (IMAGE, "registry.example.com/shop/checkout")


@pytest.mark.parametrize(
    ("image_object", "fragment"),
    [
        (f'"docker-manifest-digest":"{OTHER_IMAGE}","docker-manifest-digest":"{IMAGE}"', "duplicate key"),
        (f'"Docker-Manifest-Digest":"{OTHER_IMAGE}","docker-manifest-digest":"{IMAGE}"', "differ only in case"),
        (f'"docker-manifest-digest":"{IMAGE}","DOCKER-MANIFEST-DIGEST":"{OTHER_IMAGE}"', "differ only in case"),
    ],
    ids=["duplicate", "case-variant-first", "case-variant-last"],
)
def test_ambiguous_simple_signing_payload_is_refused_even_when_validly_signed(
    sigstore: PrivateSigstore, ci_key_signer: Signer, image_object: str, fragment: str
) -> None:
    """A Go verifier would read the last (case-insensitive) key; we cannot know which one the
    signer meant, so a signed payload with two readings is refused."""
    payload = _simple_signing_text(image_object)
    release = material(
        [ci_key_signer.signature_layer(IMAGE, payload)],
        [ci_key_signer.attestation_layer(slsa_v02(IMAGE, commit=COMMIT))],
    )
    refused(
        verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)), Reason.MALFORMED_INPUT, fragment
    )


def test_case_variant_only_key_is_not_read_as_the_field(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    """Go would accept `Docker-Manifest-Digest` alone as the digest; we require the spelling cosign writes."""
    payload = _simple_signing_text(f'"Docker-Manifest-Digest":"{IMAGE}"')
    release = material(
        [ci_key_signer.signature_layer(IMAGE, payload)],
        [ci_key_signer.attestation_layer(slsa_v02(IMAGE, commit=COMMIT))],
    )
    refused(
        verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)),
        Reason.MALFORMED_INPUT,
        "missing 'docker-manifest-digest'",
    )


def test_other_simple_signing_type_is_refused(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    payload = simple_signing_payload(IMAGE).replace(b"cosign container image signature", b"atomic container signature")
    release = material(
        [ci_key_signer.signature_layer(IMAGE, payload)],
        [ci_key_signer.attestation_layer(slsa_v02(IMAGE, commit=COMMIT))],
    )
    refused(verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)), Reason.PAYLOAD_TYPE_NOT_ALLOWED)


def test_missing_image_signature_is_refused_when_required(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    release = material([], [ci_key_signer.attestation_layer(slsa_v02(IMAGE, commit=COMMIT))])
    refused(verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)), Reason.NO_SIGNATURE, "(.sig)")


def test_signature_layer_without_signature_annotation_is_reported(
    sigstore: PrivateSigstore, ci_key_signer: Signer
) -> None:
    genuine = ci_key_signer.signature_layer(IMAGE)
    stripped = layer(
        SIMPLE_SIGNING,
        genuine.blob,
        {k: v for k, v in genuine.annotations.items() if k != "dev.cosignproject.cosign/signature"},
    )
    release = material([stripped], [ci_key_signer.attestation_layer(slsa_v02(IMAGE, commit=COMMIT))])
    refused(
        verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)), Reason.NO_SIGNATURE, ".sig layer"
    )


@pytest.mark.parametrize("value", ["not base64!", "QUJD=QUJD", "YWJj+-_/"])
def test_malformed_signature_annotation_is_refused(
    sigstore: PrivateSigstore, ci_key_signer: Signer, value: str
) -> None:
    genuine = ci_key_signer.signature_layer(IMAGE)
    broken = layer(SIMPLE_SIGNING, genuine.blob, {**genuine.annotations, "dev.cosignproject.cosign/signature": value})
    release = material([broken], [ci_key_signer.attestation_layer(slsa_v02(IMAGE, commit=COMMIT))])
    refused(
        verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)), Reason.MALFORMED_INPUT, "signature"
    )


def test_log_entry_for_another_payload_is_refused(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    """A genuine SET, but over an entry for a different payload: replayed next to this signature."""
    payload = simple_signing_payload(IMAGE)
    signature = sign(ci_key_signer.key, payload)
    other_entry = hashedrekord_body(simple_signing_payload(OTHER_IMAGE), signature, ci_key_signer.verifier_pem)
    annotations = ci_key_signer.annotations_for(other_entry) | {"dev.cosignproject.cosign/signature": b64(signature)}
    release = material(
        [layer(SIMPLE_SIGNING, payload, annotations)], [ci_key_signer.attestation_layer(slsa_v02(IMAGE, commit=COMMIT))]
    )
    refused(
        verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)),
        Reason.TLOG_ENTRY_MISMATCH,
        "records payload",
    )


def test_log_entry_naming_another_key_is_refused(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    payload = simple_signing_payload(IMAGE)
    signature = sign(ci_key_signer.key, payload)
    entry = hashedrekord_body(payload, signature, public_pem(new_key()))
    annotations = ci_key_signer.annotations_for(entry) | {"dev.cosignproject.cosign/signature": b64(signature)}
    release = material(
        [layer(SIMPLE_SIGNING, payload, annotations)], [ci_key_signer.attestation_layer(slsa_v02(IMAGE, commit=COMMIT))]
    )
    refused(
        verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)),
        Reason.TLOG_ENTRY_MISMATCH,
        "different signer",
    )


def test_log_entry_from_an_unpinned_log_is_refused(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    other_log = PrivateSigstore(name="elsewhere")
    stray = Signer(key=ci_key_signer.key, sigstore=other_log)
    refused(
        verify_provenance(signed_release(stray), request(), key_policy(sigstore, ci_key_signer)),
        Reason.TLOG_UNKNOWN_LOG,
        "not in the pinned trusted root",
    )


def test_payload_type_resigned_as_plain_json_is_refused(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    attestation = custom_attestation(ci_key_signer, slsa_v02(IMAGE, commit=COMMIT), payload_type="application/json")
    release = material([ci_key_signer.signature_layer(IMAGE)], [attestation])
    refused(verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)), Reason.PAYLOAD_TYPE_NOT_ALLOWED)


def test_dsse_signature_over_the_bare_payload_is_refused(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    """A signer that skipped PAE signs bytes that do not bind the payload type."""
    statement = slsa_v02(IMAGE, commit=COMMIT)
    attestation = custom_attestation(ci_key_signer, statement, signed_bytes=statement)
    release = material([ci_key_signer.signature_layer(IMAGE)], [attestation])
    refused(verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)), Reason.SIGNATURE_INVALID)


def test_url_safe_unpadded_base64_envelope_verifies(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    statement = slsa_v02(IMAGE, commit=COMMIT)
    signature = sign(ci_key_signer.key, pae("application/vnd.in-toto+json", statement))

    def url_safe(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    envelope = json.dumps(
        {
            "payloadType": "application/vnd.in-toto+json",
            "payload": url_safe(statement),
            "signatures": [{"sig": url_safe(signature)}],
        }
    ).encode()
    attestation = custom_attestation(ci_key_signer, statement, envelope=envelope, signature=signature)
    release = material([ci_key_signer.signature_layer(IMAGE)], [attestation])
    assert verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)).ok


def test_intoto_v002_log_entry_verifies(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    attestation = custom_attestation(ci_key_signer, slsa_v02(IMAGE, commit=COMMIT), body=intoto_body)
    release = material([ci_key_signer.signature_layer(IMAGE)], [attestation])
    assert verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)).ok


def test_attestation_about_another_image_is_refused(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    release = material(
        [ci_key_signer.signature_layer(IMAGE)], [ci_key_signer.attestation_layer(slsa_v02(OTHER_IMAGE, commit=COMMIT))]
    )
    refused(
        verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)),
        Reason.DIGEST_MISMATCH,
        "statement is about",
    )


def test_validly_signed_statement_with_duplicate_subject_is_refused(
    sigstore: PrivateSigstore, ci_key_signer: Signer
) -> None:
    statement = slsa_v02(IMAGE, commit=COMMIT)
    subject = json.dumps([{"name": "x", "digest": {"sha256": OTHER_IMAGE.removeprefix("sha256:")}}]).encode()
    ambiguous = statement.replace(b'"subject":', b'"subject": ' + subject + b', "subject":', 1)
    release = material([ci_key_signer.signature_layer(IMAGE)], [ci_key_signer.attestation_layer(ambiguous)])
    refused(
        verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)), Reason.MALFORMED_INPUT, "'subject'"
    )


def test_provenance_disagreeing_with_itself_is_refused(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    document = json.loads(slsa_v02(IMAGE, commit=COMMIT))
    document["predicate"]["materials"][0]["digest"]["sha1"] = OTHER_COMMIT
    release = signed_release(ci_key_signer, json.dumps(document).encode())
    refused(
        verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)),
        Reason.COMMIT_MISMATCH,
        "disagrees with itself",
    )


def test_builder_on_a_branch_is_refused_when_tags_are_required(
    sigstore: PrivateSigstore, ci_key_signer: Signer
) -> None:
    branch_builder = "https://github.com/acme/ci/.github/workflows/build.yml@refs/heads/main"
    release = signed_release(ci_key_signer, slsa_v02(IMAGE, commit=COMMIT, builder=branch_builder))
    policy = key_policy(
        sigstore, ci_key_signer, allowedBuilders=["https://github.com/acme/ci/.github/workflows/build.yml"]
    )
    refused(verify_provenance(release, request(), policy), Reason.BUILDER_NOT_ALLOWED, "not pinned to a release tag")
    relaxed = key_policy(
        sigstore,
        ci_key_signer,
        allowedBuilders=["https://github.com/acme/ci/.github/workflows/build.yml"],
        requireTaggedBuilder=False,
    )
    assert verify_provenance(release, request(), relaxed).ok


def test_two_trusted_provenances_that_disagree_are_refused(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    release = material(
        [ci_key_signer.signature_layer(IMAGE)],
        [
            ci_key_signer.attestation_layer(slsa_v02(IMAGE, commit=COMMIT)),
            ci_key_signer.attestation_layer(slsa_v02(IMAGE, commit=OTHER_COMMIT)),
        ],
    )
    refused(verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)), Reason.COMMIT_MISMATCH)


def test_required_predicate_type_must_be_present(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    policy = key_policy(sigstore, ci_key_signer, requiredPredicateTypes=["https://spdx.dev/Document"])
    refused(
        verify_provenance(signed_release(ci_key_signer), request(), policy),
        Reason.PREDICATE_TYPE_MISSING,
        "https://spdx.dev/Document",
    )


def test_only_non_provenance_attestations_is_predicate_type_missing(
    sigstore: PrivateSigstore, ci_key_signer: Signer
) -> None:
    statement = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "predicateType": "https://spdx.dev/Document",
            "subject": [{"name": "x", "digest": {"sha256": IMAGE.removeprefix("sha256:")}}],
            "predicate": {},
        }
    ).encode()
    release = material([ci_key_signer.signature_layer(IMAGE)], [ci_key_signer.attestation_layer(statement)])
    refused(
        verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)),
        Reason.PREDICATE_TYPE_MISSING,
        "no verified SLSA provenance",
    )


def test_wrong_layer_media_type_is_refused(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    genuine = ci_key_signer.attestation_layer(slsa_v02(IMAGE, commit=COMMIT))
    relabelled = dataclasses.replace(genuine, media_type="application/vnd.in-toto+json")
    release = material([ci_key_signer.signature_layer(IMAGE)], [relabelled])
    refused(
        verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)), Reason.MALFORMED_INPUT, "media type"
    )


# ---------------------------------------------------------------------------------------------
# Keyless, through the private Sigstore (CA, CT log, Rekor)
# ---------------------------------------------------------------------------------------------

CI_CLAIMS = BuildClaims(
    subject=BUILDER,
    build_signer_uri=BUILDER,
    source_repository_uri=REPOSITORY,
    source_commit=COMMIT,
    source_ref="refs/tags/v4.1.2-hotfix.1",
)


def keyless_policy(sigstore: PrivateSigstore, **changes: Any) -> ProvenancePolicy:
    spec: dict[str, Any] = {
        "keylessIdentities": [
            {
                "issuer": {"exact": "https://token.actions.githubusercontent.com"},
                "subject": {"regex": r"https://github\.com/acme/ci/\.github/workflows/build\.yml@refs/tags/v[0-9.]+"},
            }
        ],
        "trustedRoot": sigstore.trusted_root(),
        "allowedBuilders": [BUILDER],
        "allowedSourceRepositories": ["github.com/acme/checkout"],
        "requireImageSignature": True,
    }
    spec.update(changes)
    return ProvenancePolicy.model_validate(spec)


def keyless(sigstore: PrivateSigstore, claims: BuildClaims = CI_CLAIMS, **options: Any) -> Signer:
    return Signer(sigstore=sigstore, claims=claims, **options)


def test_keyless_release_verifies(sigstore: PrivateSigstore) -> None:
    signer = keyless(sigstore)
    result = verify_provenance(signed_release(signer), request(), keyless_policy(sigstore))
    assert result.ok, result.message
    assert result.summary is not None
    (summary,) = result.summary.signers
    assert (summary.method, summary.identity, summary.issuer) == (
        "keyless",
        BUILDER,
        "https://token.actions.githubusercontent.com",
    )
    assert summary.signing_time == signer.signed_at


@pytest.mark.parametrize(
    ("claims", "reason", "fragment"),
    [
        (
            dataclasses.replace(CI_CLAIMS, source_commit=OTHER_COMMIT),
            Reason.COMMIT_MISMATCH,
            "certificate commit 693130c… ≠ provenance commit a8b1963…",
        ),
        (
            dataclasses.replace(CI_CLAIMS, source_repository_uri="https://github.com/acme/payments"),
            Reason.SOURCE_MISMATCH,
            "certificate source repository github.com/acme/payments ≠ provenance github.com/acme/checkout",
        ),
        (
            dataclasses.replace(
                CI_CLAIMS, build_signer_uri="https://github.com/acme/ci/.github/workflows/other.yml@refs/tags/v1.0.0"
            ),
            Reason.BUILDER_NOT_ALLOWED,
            "certificate build signer",
        ),
        (dataclasses.replace(CI_CLAIMS, source_commit=None), Reason.COMMIT_MISMATCH, "names no source commit"),
        (
            dataclasses.replace(CI_CLAIMS, source_repository_uri=None),
            Reason.SOURCE_MISMATCH,
            "names no source repository",
        ),
    ],
    ids=["commit", "repository", "build-signer", "no-commit", "no-repository"],
)
def test_certificate_must_agree_with_the_provenance(
    sigstore: PrivateSigstore, claims: BuildClaims, reason: Reason, fragment: str
) -> None:
    result = verify_provenance(signed_release(keyless(sigstore, claims)), request(), keyless_policy(sigstore))
    refused(result, reason, fragment)


def test_identity_outside_the_policy_is_refused(sigstore: PrivateSigstore) -> None:
    claims = dataclasses.replace(
        CI_CLAIMS, subject="https://github.com/mallory/ci/.github/workflows/build.yml@refs/tags/v1.0.0"
    )
    result = verify_provenance(signed_release(keyless(sigstore, claims)), request(), keyless_policy(sigstore))
    refused(result, Reason.IDENTITY_MISMATCH, "mallory")


def test_signature_logged_after_the_certificate_expired_is_refused(sigstore: PrivateSigstore) -> None:
    signer = keyless(sigstore)
    late = Signer(
        key=signer.key,
        sigstore=sigstore,
        certificate=signer.certificate,
        logged_at=signer.signed_at + timedelta(hours=1),
    )
    refused(verify_provenance(signed_release(late), request(), keyless_policy(sigstore)), Reason.CERTIFICATE_EXPIRED)


def test_certificate_from_another_ca_is_refused(sigstore: PrivateSigstore) -> None:
    rogue_ca = PrivateSigstore(name="rogue", rekor_key=sigstore.rekor_key, ct_key=sigstore.ct_key)
    signer = Signer(
        sigstore=sigstore,
        certificate=rogue_ca.issue(CI_CLAIMS, key := new_key(), issued_at=Signer().signed_at),
        key=key,
    )
    refused(
        verify_provenance(signed_release(signer), request(), keyless_policy(sigstore)),
        Reason.CERTIFICATE_UNTRUSTED,
        "does not chain",
    )


@pytest.mark.parametrize(
    ("issue_options", "fragment"),
    [
        ({"with_sct": False}, "no embedded SCT"),
        ({"sct_key": new_key()}, "no SCT from a CT log of the pinned trusted root"),
        ({"forge_sct": True}, "does not verify"),
    ],
    ids=["missing", "unknown-log", "forged"],
)
def test_certificate_without_a_valid_sct_is_refused(
    sigstore: PrivateSigstore, issue_options: dict[str, Any], fragment: str
) -> None:
    key = new_key()
    certificate = sigstore.issue(CI_CLAIMS, key, issued_at=Signer().signed_at - timedelta(seconds=5), **issue_options)
    signer = Signer(key=key, sigstore=sigstore, certificate=certificate)
    refused(
        verify_provenance(signed_release(signer), request(), keyless_policy(sigstore)), Reason.SCT_INVALID, fragment
    )


def test_certificate_not_for_code_signing_is_refused(sigstore: PrivateSigstore) -> None:
    key = new_key()
    certificate = sigstore.issue(
        CI_CLAIMS, key, issued_at=Signer().signed_at - timedelta(seconds=5), code_signing=False
    )
    signer = Signer(key=key, sigstore=sigstore, certificate=certificate)
    refused(
        verify_provenance(signed_release(signer), request(), keyless_policy(sigstore)), Reason.CERTIFICATE_UNTRUSTED
    )


def test_keyless_signature_by_another_key_than_the_certificate_is_refused(sigstore: PrivateSigstore) -> None:
    genuine = keyless(sigstore)
    impostor = Signer(key=new_key(), sigstore=sigstore, certificate=genuine.certificate)
    refused(
        verify_provenance(signed_release(impostor), request(), keyless_policy(sigstore)),
        Reason.SIGNATURE_INVALID,
        "certificate's key",
    )


def test_keyless_log_entry_naming_another_certificate_is_refused(sigstore: PrivateSigstore) -> None:
    signer = keyless(sigstore)
    other = keyless(sigstore)
    assert other.certificate is not None
    statement = slsa_v02(IMAGE, commit=COMMIT)
    signature = sign(signer.key, pae("application/vnd.in-toto+json", statement))
    envelope = envelope_bytes(statement, [signature])
    body = dsse_body(envelope, statement, signature, cert_pem(other.certificate))
    attestation = layer(DSSE_LAYER, envelope, signer.annotations_for(body))
    release = material([signer.signature_layer(IMAGE)], [attestation])
    refused(
        verify_provenance(release, request(), keyless_policy(sigstore)), Reason.TLOG_ENTRY_MISMATCH, "different signer"
    )


def test_keyless_material_needs_a_keyless_policy(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    refused(
        verify_provenance(signed_release(keyless(sigstore)), request(), key_policy(sigstore, ci_key_signer)),
        Reason.IDENTITY_MISMATCH,
        "trusts no keyless identity",
    )


def test_keyless_without_log_entry_is_refused(sigstore: PrivateSigstore) -> None:
    refused(
        verify_provenance(signed_release(keyless(sigstore, log_entries=False)), request(), keyless_policy(sigstore)),
        Reason.TLOG_PROOF_MISSING,
        "proving when",
    )


def test_oversized_layer_is_refused_before_parsing(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    from hotfix_operator.provenance.limits import MAX_LAYER_BYTES

    huge = layer(DSSE_LAYER, b"{" + b" " * MAX_LAYER_BYTES + b"}", {})
    release = material([ci_key_signer.signature_layer(IMAGE)], [huge])
    refused(
        verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)), Reason.MALFORMED_INPUT, "over the"
    )


def test_oversized_annotation_is_refused(sigstore: PrivateSigstore, ci_key_signer: Signer) -> None:
    genuine = ci_key_signer.attestation_layer(slsa_v02(IMAGE, commit=COMMIT))
    bloated = dataclasses.replace(
        genuine, annotations={**genuine.annotations, "dev.sigstore.cosign/bundle": " " * 300_000}
    )
    release = material([ci_key_signer.signature_layer(IMAGE)], [bloated])
    refused(
        verify_provenance(release, request(), key_policy(sigstore, ci_key_signer)), Reason.MALFORMED_INPUT, "too large"
    )
