"""OCI layouts as `cosign save` and OCI 1.1 referrers lay them out, and key-signed Sigstore bundles."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from hotfix_operator.provenance import (
    BundleArtifact,
    ProvenanceMaterial,
    ProvenancePolicy,
    Reason,
    Rejected,
    ReleaseRequest,
    read_oci_layout,
    verify_provenance,
)
from tests.provenance.private_sigstore import PrivateSigstore, Signer, key_signed_bundle, public_pem, slsa_v02

COMMIT = "a8b1963f0a9d5d8c6a8b7c0e5f2d1e3c4b5a6978"
BUILDER = "https://github.com/acme/ci/.github/workflows/build.yml@refs/tags/v1.0.0"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
SIGSTORE = PrivateSigstore()
SIGNER = Signer(sigstore=SIGSTORE)


def policy(**changes: Any) -> ProvenancePolicy:
    spec: dict[str, Any] = {
        "trustedKeys": [{"name": "ci", "publicKey": public_pem(SIGNER.key)}],
        "trustedRoot": SIGSTORE.trusted_root(),
        "allowedBuilders": [BUILDER],
        "allowedSourceRepositories": ["github.com/acme/checkout"],
    }
    spec.update(changes)
    return ProvenancePolicy.model_validate(spec)


def request(image: str) -> ReleaseRequest:
    return ReleaseRequest(
        image=f"registry.example.com/shop/checkout@{image}",
        commit_sha=COMMIT,
        source_repository="github.com/acme/checkout",
    )


class LayoutWriter:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.manifests: list[dict[str, Any]] = []

    def blob(self, data: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / "sha256" / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    def manifest(self, document: dict[str, Any], annotations: dict[str, str] | None = None) -> str:
        descriptor = {"mediaType": MANIFEST_TYPE, **self.blob(json.dumps(document).encode())}
        if annotations:
            descriptor["annotations"] = annotations
        self.manifests.append(descriptor)
        return str(descriptor["digest"])

    def close(self) -> None:
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": self.manifests,
        }
        (self.root / "index.json").write_text(json.dumps(index))


def image_with_referrer(root: Path, bundle_for: Any) -> str:
    writer = LayoutWriter(root)
    config = writer.blob(b"{}")
    image = writer.manifest(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [],
        },
        {"kind": "dev.cosignproject.cosign/image"},
    )
    bundle = bundle_for(image)
    writer.manifest(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "artifactType": BUNDLE_TYPE,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", **writer.blob(b"{}")},
            "layers": [{"mediaType": BUNDLE_TYPE, **writer.blob(bundle)}],
            "subject": {"mediaType": MANIFEST_TYPE, "digest": image, "size": 1},
        }
    )
    writer.close()
    return image


def test_referrer_bundles_are_found_and_verified(tmp_path: Path) -> None:
    image = image_with_referrer(
        tmp_path, lambda image: key_signed_bundle(SIGNER, statement=slsa_v02(image, commit=COMMIT))
    )
    material = read_oci_layout(tmp_path)
    assert material.image_digest == image
    assert len(material.bundles) == 1
    result = verify_provenance(material, request(image), policy())
    assert result.ok, result.message
    assert result.summary is not None
    assert result.summary.signers[0].key_name == "ci"
    assert result.summary.signers[0].tlog_index == 4242


def test_message_signature_bundle_counts_as_image_signature(tmp_path: Path) -> None:
    image = image_with_referrer(tmp_path, lambda image: key_signed_bundle(SIGNER, message_digest=image))
    signed = read_oci_layout(tmp_path)
    statement_bundle = BundleArtifact(blob=key_signed_bundle(SIGNER, statement=slsa_v02(image, commit=COMMIT)))
    material = dataclasses.replace(signed, bundles=(*signed.bundles, statement_bundle))
    result = verify_provenance(material, request(image), policy(requireImageSignature=True))
    assert result.ok, result.message
    assert result.summary is not None
    assert result.summary.image_signature_verified


IMAGE = "sha256:" + "5" * 64


@pytest.mark.parametrize(
    ("bundle", "reason", "fragment"),
    [
        (
            lambda: key_signed_bundle(Signer(sigstore=SIGSTORE), statement=slsa_v02(IMAGE, commit=COMMIT)),
            Reason.UNTRUSTED_KEY,
            "not a trusted key",
        ),
        (
            lambda: key_signed_bundle(SIGNER, statement=slsa_v02(IMAGE, commit=COMMIT), log=False),
            Reason.TLOG_PROOF_MISSING,
            "requires one",
        ),
        (
            lambda: key_signed_bundle(
                SIGNER, statement=slsa_v02(IMAGE, commit=COMMIT), kind_version=("hashedrekord", "0.0.1")
            ),
            Reason.TLOG_INVALID,
            "declares a hashedrekord/0.0.1 entry",
        ),
        (
            lambda: key_signed_bundle(
                Signer(key=SIGNER.key, sigstore=PrivateSigstore(name="other")), statement=slsa_v02(IMAGE, commit=COMMIT)
            ),
            Reason.TLOG_UNKNOWN_LOG,
            "not in the pinned trusted root",
        ),
        (
            lambda: key_signed_bundle(SIGNER, statement=slsa_v02(IMAGE, commit=COMMIT), media_type="application/json"),
            Reason.MALFORMED_INPUT,
            "media type",
        ),
        (
            lambda: key_signed_bundle(SIGNER, statement=slsa_v02("sha256:" + "6" * 64, commit=COMMIT)),
            Reason.DIGEST_MISMATCH,
            "statement is about",
        ),
        (
            lambda: b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}',
            Reason.MALFORMED_INPUT,
            "verificationMaterial",
        ),
    ],
    ids=["untrusted-key", "no-log", "kind-mismatch", "unpinned-log", "media-type", "other-subject", "empty"],
)
def test_key_signed_bundle_is_refused(bundle: Any, reason: Reason, fragment: str) -> None:
    material = ProvenanceMaterial(image_digest=IMAGE, bundles=(BundleArtifact(blob=bundle()),))
    result = verify_provenance(material, request(IMAGE), policy())
    assert (result.ok, result.reason) == (False, reason), result.message
    assert fragment in result.message


def test_key_signed_bundle_with_tampered_set_is_refused() -> None:
    document = json.loads(key_signed_bundle(SIGNER, statement=slsa_v02(IMAGE, commit=COMMIT)))
    document["verificationMaterial"]["tlogEntries"][0]["logIndex"] = "4243"
    material = ProvenanceMaterial(image_digest=IMAGE, bundles=(BundleArtifact(blob=json.dumps(document).encode()),))
    result = verify_provenance(material, request(IMAGE), policy())
    assert (result.ok, result.reason) == (False, Reason.TLOG_SET_INVALID)


def test_bundle_blob_must_match_its_descriptor_digest() -> None:
    blob = key_signed_bundle(SIGNER, statement=slsa_v02(IMAGE, commit=COMMIT))
    material = ProvenanceMaterial(image_digest=IMAGE, bundles=(BundleArtifact(blob=blob, digest="sha256:" + "7" * 64),))
    assert verify_provenance(material, request(IMAGE), policy()).reason == Reason.DIGEST_MISMATCH


# ---------------------------------------------------------------------------------------------
# Tampered layouts
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def layout_copy(vectors: Path, tmp_path: Path) -> Path:
    target = tmp_path / "layout"
    shutil.copytree(vectors / "slsa-github-generator" / "container-v1.10.0" / "oci-layout", target)
    for path in target.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    return target


def _attestation_blob(layout: Path) -> Path:
    return layout / "blobs" / "sha256" / "20b16d5835eceaa7b9dbb7e4fdf4db52a8b9159c1416dd73e54cade07e838917"


def test_layout_blob_with_other_content_is_refused(layout_copy: Path) -> None:
    blob = _attestation_blob(layout_copy)
    blob.write_bytes(blob.read_bytes()[:-1] + b" ")
    with pytest.raises(Rejected) as caught:
        read_oci_layout(layout_copy)
    assert caught.value.reason == Reason.DIGEST_MISMATCH


def test_layout_missing_blob_is_refused(layout_copy: Path) -> None:
    _attestation_blob(layout_copy).unlink()
    with pytest.raises(Rejected, match="missing from the layout"):
        read_oci_layout(layout_copy)


def test_layout_symlinked_blob_is_refused(layout_copy: Path, tmp_path: Path) -> None:
    blob = _attestation_blob(layout_copy)
    outside = tmp_path / "outside"
    outside.write_bytes(blob.read_bytes())
    blob.unlink()
    blob.symlink_to(outside)
    with pytest.raises(Rejected, match="missing from the layout"):
        read_oci_layout(layout_copy)


def test_layout_digest_cannot_walk_out_of_blobs(layout_copy: Path) -> None:
    index = json.loads((layout_copy / "index.json").read_text())
    index["manifests"][1]["digest"] = "sha256:../../../../etc/passwd"
    (layout_copy / "index.json").write_text(json.dumps(index))
    with pytest.raises(Rejected, match="not sha256:<64 lowercase hex>"):
        read_oci_layout(layout_copy)


def test_layout_image_can_be_chosen_by_digest(layout_copy: Path) -> None:
    digest = "sha256:e0a0a765d690a5104331cfbac88ebbbf01736c1f87aaa3cd455c516a5ea586a5"
    assert read_oci_layout(layout_copy, image_digest=digest).image_digest == digest
    with pytest.raises(Rejected, match="0 matching images"):
        read_oci_layout(layout_copy, image_digest="sha256:" + "0" * 64)


def test_layout_without_marker_is_refused(layout_copy: Path) -> None:
    (layout_copy / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}')
    with pytest.raises(Rejected, match="imageLayoutVersion"):
        read_oci_layout(layout_copy)


def test_cosign_v3_signature_statement_counts_as_image_signature() -> None:
    signature_statement = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "predicateType": "https://sigstore.dev/cosign/sign/v1",
            "subject": [
                {"name": "registry.example.com/shop/checkout", "digest": {"sha256": IMAGE.removeprefix("sha256:")}}
            ],
            "predicate": {},
        }
    ).encode()
    material = ProvenanceMaterial(
        image_digest=IMAGE,
        bundles=(
            BundleArtifact(blob=key_signed_bundle(SIGNER, statement=signature_statement)),
            BundleArtifact(blob=key_signed_bundle(SIGNER, statement=slsa_v02(IMAGE, commit=COMMIT))),
        ),
    )
    result = verify_provenance(material, request(IMAGE), policy(requireImageSignature=True))
    assert result.ok, result.message
    assert result.summary is not None
    assert result.summary.image_signature_verified
    assert "https://sigstore.dev/cosign/sign/v1" in result.summary.predicate_types
