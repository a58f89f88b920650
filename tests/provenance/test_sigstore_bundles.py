"""Sigstore bundles: the generic SLSA generator's v0.3 bundle and the sigstore-conformance cases."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hotfix_operator.provenance import (
    BundleArtifact,
    ProvenanceMaterial,
    ProvenancePolicy,
    Reason,
    ReleaseRequest,
    SignerPolicy,
    verify_bundle_signature,
    verify_provenance,
)
from tests.provenance.private_sigstore import new_key, public_pem

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
BINARY_DIGEST = "sha256:376e7e01348585b6e6643bc6663146b9d525d9b41228bf180eaeb4d4a3706caa"
GENERIC_COMMIT = "4d329c75e7ec1725f7c9ce917a8799d408d06be3"
GENERIC_BUILDER = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.1.0"
BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)


# ---------------------------------------------------------------------------------------------
# generic-v2.1.0: a v0.3 bundle with a DSSE SLSA v0.2 statement about a binary
# ---------------------------------------------------------------------------------------------


def generic_bundle(vectors: Path) -> bytes:
    return (
        vectors / "slsa-github-generator" / "generic-v2.1.0" / "binary-linux-amd64-workflow_dispatch.intoto.jsonl"
    ).read_bytes()


def generic_policy(root: str, **changes: Any) -> ProvenancePolicy:
    spec: dict[str, Any] = {
        "keylessIdentities": [{"issuer": {"exact": GITHUB_ISSUER}, "subject": {"exact": GENERIC_BUILDER}}],
        "trustedRoot": root,
        "allowedBuilders": [GENERIC_BUILDER],
        "allowedSourceRepositories": ["github.com/slsa-framework/example-package"],
    }
    spec.update(changes)
    return ProvenancePolicy.model_validate(spec)


def generic_request(commit: str = GENERIC_COMMIT) -> ReleaseRequest:
    return ReleaseRequest(
        image=BINARY_DIGEST,
        commit_sha=commit,
        source_repository="git+https://github.com/slsa-framework/example-package@refs/heads/main",
    )


def generic_material(vectors: Path) -> ProvenanceMaterial:
    return ProvenanceMaterial(image_digest=BINARY_DIGEST, bundles=(BundleArtifact(blob=generic_bundle(vectors)),))


def test_generic_bundle_verifies_for_its_binary(vectors: Path, production_root: str) -> None:
    result = verify_provenance(generic_material(vectors), generic_request(), generic_policy(production_root))
    assert result.ok, result.message
    assert result.summary is not None
    assert result.summary.commit_sha == GENERIC_COMMIT
    assert result.summary.builder_id == GENERIC_BUILDER
    assert result.summary.source_ref == "refs/heads/main"
    (signer,) = result.summary.signers
    assert (signer.identity, signer.issuer, signer.tlog_index) == (GENERIC_BUILDER, GITHUB_ISSUER, 174304204)
    assert signer.signing_time is not None
    assert signer.signing_time.year == 2025


def test_generic_bundle_refuses_a_wrong_commit(vectors: Path, production_root: str) -> None:
    result = verify_provenance(generic_material(vectors), generic_request("0" * 40), generic_policy(production_root))
    assert (result.ok, result.reason) == (False, Reason.COMMIT_MISMATCH)
    assert "provenance commit 4d329c7… ≠ requested 0000000…" in result.message


def test_generic_bundle_refuses_another_builder(vectors: Path, production_root: str) -> None:
    container = (
        "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml"
    )
    result = verify_provenance(
        generic_material(vectors), generic_request(), generic_policy(production_root, allowedBuilders=[container])
    )
    assert (result.ok, result.reason) == (False, Reason.BUILDER_NOT_ALLOWED)


def test_generic_bundle_refuses_the_staging_root(vectors: Path, staging_root: str) -> None:
    """sigstore-python checks the certificate chain before the log, so this path says CertificateUntrusted."""
    result = verify_provenance(generic_material(vectors), generic_request(), generic_policy(staging_root))
    assert (result.ok, result.reason) == (False, Reason.CERTIFICATE_UNTRUSTED), result.message


def test_generic_bundle_refuses_another_binary(vectors: Path, production_root: str) -> None:
    other = "sha256:" + "1" * 64
    material = ProvenanceMaterial(image_digest=other, bundles=(BundleArtifact(blob=generic_bundle(vectors)),))
    request = ReleaseRequest(
        image=other, commit_sha=GENERIC_COMMIT, source_repository="github.com/slsa-framework/example-package"
    )
    result = verify_provenance(material, request, generic_policy(production_root))
    assert (result.ok, result.reason) == (False, Reason.DIGEST_MISMATCH)


def test_generic_bundle_with_duplicate_keys_is_refused_before_the_library_reads_it(
    vectors: Path, production_root: str
) -> None:
    blob = generic_bundle(vectors).replace(b'{"mediaType"', b'{"MediaType":"x","mediaType"', 1)
    material = ProvenanceMaterial(image_digest=BINARY_DIGEST, bundles=(BundleArtifact(blob=blob),))
    result = verify_provenance(material, generic_request(), generic_policy(production_root))
    assert (result.ok, result.reason) == (False, Reason.MALFORMED_INPUT)
    assert "differ only in case" in result.message


def test_generic_bundle_with_a_second_dsse_signature_is_refused(vectors: Path, production_root: str) -> None:
    document = json.loads(generic_bundle(vectors))
    document["dsseEnvelope"]["signatures"].append(document["dsseEnvelope"]["signatures"][0])
    material = ProvenanceMaterial(
        image_digest=BINARY_DIGEST, bundles=(BundleArtifact(blob=json.dumps(document).encode()),)
    )
    result = verify_provenance(material, generic_request(), generic_policy(production_root))
    assert (result.ok, result.reason) == (False, Reason.SIGNATURE_INVALID)


def test_generic_bundle_with_an_edited_payload_is_refused(vectors: Path, production_root: str) -> None:
    document = json.loads(generic_bundle(vectors))
    statement = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    statement["predicate"]["invocation"]["configSource"]["digest"]["sha1"] = "0" * 40
    document["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    material = ProvenanceMaterial(
        image_digest=BINARY_DIGEST, bundles=(BundleArtifact(blob=json.dumps(document).encode()),)
    )
    result = verify_provenance(material, generic_request("0" * 40), generic_policy(production_root))
    assert (result.ok, result.reason) == (False, Reason.SIGNATURE_INVALID), result.message


# ---------------------------------------------------------------------------------------------
# sigstore-conformance: every folder, its own root or key where it ships one
# ---------------------------------------------------------------------------------------------

CONFORMANCE_EXPECTATIONS: dict[str, Reason] = {
    "bundle-from-wrong-instance_fail": Reason.CERTIFICATE_UNTRUSTED,
    "dsse-invalid-sig_fail": Reason.SIGNATURE_INVALID,
    "dsse-mismatch-envelope_fail": Reason.TLOG_INVALID,
    "managed-key-happy-path": Reason.VERIFIED,
    # key.pub of this case is not a valid key at all: the policy cannot even be loaded
    # (see test_conformance_wrong_key_cannot_become_policy); here it runs with a real but
    # different key, which names the signer as untrusted.
    "managed-key-wrong-key_fail": Reason.UNTRUSTED_KEY,
    "rekor2-dsse-happy-path": Reason.VERIFIED,
    "rekor2-dsse-mismatch-envelope_fail": Reason.TLOG_INVALID,
}


def conformance_policy(folder: Path, production_root: str) -> SignerPolicy:
    root_file = folder / "trusted_root.json"
    root = root_file.read_text() if root_file.is_file() else production_root
    spec: dict[str, Any] = {
        "trustedRoot": root,
        "keylessIdentities": [{"issuer": {"exact": GITHUB_ISSUER}, "subject": {"exact": BEACON}}],
    }
    key_file = folder / "key.pub"
    if key_file.is_file():
        key = key_file.read_text()
        if folder.name == "managed-key-wrong-key_fail":
            key = public_pem(new_key())
        spec["trustedKeys"] = [{"name": "conformance", "publicKey": key}]
    return SignerPolicy.model_validate(spec)


def test_every_conformance_folder_has_an_expectation(vectors: Path) -> None:
    folders = {path.name for path in (vectors / "sigstore-conformance").iterdir() if path.is_dir()}
    assert folders == set(CONFORMANCE_EXPECTATIONS)


@pytest.mark.parametrize(("case", "expected"), sorted(CONFORMANCE_EXPECTATIONS.items()))
def test_conformance_case(vectors: Path, production_root: str, case: str, expected: Reason) -> None:
    folder = vectors / "sigstore-conformance" / case
    artifact = (vectors / "sigstore-conformance" / "a.txt").read_bytes()
    digest = "sha256:" + hashlib.sha256(artifact).hexdigest()

    check = verify_bundle_signature(
        BundleArtifact(blob=(folder / "bundle.sigstore.json").read_bytes()),
        artifact_digest=digest,
        policy=conformance_policy(folder, production_root),
    )

    assert check.reason == expected, check.message
    assert check.ok == (expected == Reason.VERIFIED)
    assert case.endswith("_fail") != check.ok
    if check.ok:
        assert check.signer is not None


def test_conformance_managed_key_reports_the_key(vectors: Path, production_root: str) -> None:
    folder = vectors / "sigstore-conformance" / "managed-key-happy-path"
    artifact = (vectors / "sigstore-conformance" / "a.txt").read_bytes()
    check = verify_bundle_signature(
        BundleArtifact(blob=(folder / "bundle.sigstore.json").read_bytes()),
        artifact_digest="sha256:" + hashlib.sha256(artifact).hexdigest(),
        policy=conformance_policy(folder, production_root),
    )
    assert check.signer is not None
    assert check.signer.method == "key"
    assert check.signer.key_name == "conformance"
    # The bundle's hint is the base64 of the same SHA-256 key id.
    hint = json.loads((folder / "bundle.sigstore.json").read_text())["verificationMaterial"]["publicKey"]["hint"]
    assert check.signer.key_fingerprint == "sha256:" + base64.b64decode(hint).hex()
    assert check.signer.tlog_index == 771488337


def test_conformance_managed_key_for_another_artifact_is_refused(vectors: Path, production_root: str) -> None:
    folder = vectors / "sigstore-conformance" / "managed-key-happy-path"
    check = verify_bundle_signature(
        BundleArtifact(blob=(folder / "bundle.sigstore.json").read_bytes()),
        artifact_digest="sha256:" + "2" * 64,
        policy=conformance_policy(folder, production_root),
    )
    assert (check.ok, check.reason) == (False, Reason.DIGEST_MISMATCH)


def test_conformance_managed_key_without_the_production_log_is_refused(vectors: Path, staging_root: str) -> None:
    folder = vectors / "sigstore-conformance" / "managed-key-happy-path"
    policy = SignerPolicy.model_validate(
        {
            "trustedRoot": staging_root,
            "trustedKeys": [{"name": "conformance", "publicKey": (folder / "key.pub").read_text()}],
        }
    )
    artifact = (vectors / "sigstore-conformance" / "a.txt").read_bytes()
    check = verify_bundle_signature(
        BundleArtifact(blob=(folder / "bundle.sigstore.json").read_bytes()),
        artifact_digest="sha256:" + hashlib.sha256(artifact).hexdigest(),
        policy=policy,
    )
    assert (check.ok, check.reason) == (False, Reason.TLOG_UNKNOWN_LOG)


def test_conformance_wrong_key_cannot_become_policy(vectors: Path, production_root: str) -> None:
    key = (vectors / "sigstore-conformance" / "managed-key-wrong-key_fail" / "key.pub").read_text()
    with pytest.raises(ValidationError, match="not a PEM public key"):
        SignerPolicy.model_validate({"trustedRoot": production_root, "trustedKeys": [{"name": "k", "publicKey": key}]})


def test_conformance_dsse_identity_must_match(vectors: Path) -> None:
    folder = vectors / "sigstore-conformance" / "rekor2-dsse-happy-path"
    policy = SignerPolicy.model_validate(
        {
            "trustedRoot": (folder / "trusted_root.json").read_text(),
            "keylessIdentities": [
                {"issuer": {"exact": GITHUB_ISSUER}, "subject": {"regex": r"https://github\.com/acme/.*"}}
            ],
        }
    )
    artifact = (vectors / "sigstore-conformance" / "a.txt").read_bytes()
    check = verify_bundle_signature(
        BundleArtifact(blob=(folder / "bundle.sigstore.json").read_bytes()),
        artifact_digest="sha256:" + hashlib.sha256(artifact).hexdigest(),
        policy=policy,
    )
    assert (check.ok, check.reason) == (False, Reason.IDENTITY_MISMATCH)
    assert BEACON in check.message


def test_generic_bundle_logged_after_its_certificate_expired_is_refused(vectors: Path, production_root: str) -> None:
    document = json.loads(generic_bundle(vectors))
    entry = document["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = str(int(entry["integratedTime"]) + 86_400)
    material = ProvenanceMaterial(
        image_digest=BINARY_DIGEST, bundles=(BundleArtifact(blob=json.dumps(document).encode()),)
    )
    result = verify_provenance(material, generic_request(), generic_policy(production_root))
    assert (result.ok, result.reason) == (False, Reason.CERTIFICATE_EXPIRED), result.message
    assert "outside the certificate's validity" in result.message


def test_generic_bundle_identity_must_match(vectors: Path, production_root: str) -> None:
    policy = generic_policy(
        production_root, keylessIdentities=[{"issuer": {"exact": GITHUB_ISSUER}, "subject": {"exact": BEACON}}]
    )
    result = verify_provenance(generic_material(vectors), generic_request(), policy)
    assert (result.ok, result.reason) == (False, Reason.IDENTITY_MISMATCH)
    assert GENERIC_BUILDER in result.message


class TestRefusalsAreOneLine:
    """A malformed bundle is refused with one line that names the field, not a parser's dump."""

    def test_a_missing_field_is_named(self) -> None:
        from sigstore.models import Bundle, InvalidBundle

        from hotfix_operator.provenance.bundles import one_line

        with pytest.raises(InvalidBundle) as caught:
            Bundle.from_json(json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                                         "verificationMaterial": {}}))
        assert one_line(caught.value) == "verificationMaterial.tlogEntries: Field required"

    def test_bytes_that_are_not_json_say_so_in_one_line(self) -> None:
        from sigstore.models import Bundle, InvalidBundle

        from hotfix_operator.provenance.bundles import one_line

        with pytest.raises(InvalidBundle) as caught:
            Bundle.from_json("notjson")
        line = one_line(caught.value)
        assert "\n" not in line and line.startswith("Invalid JSON")
