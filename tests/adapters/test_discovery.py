"""discover() against the real local registry (Debian's docker-registry: TLS, no referrers API).

The two real keyless container vectors are pushed the way cosign publishes them (the image index,
and its attestation manifest under the `sha256-<hex>.att` tag), then found and verified end to end.
The rest pins discovery's own duties: request budget, what counts as "nothing there", permanent
errors for malformed content, transient ones for outages, and content that does not match its digest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hotfix_operator.adapters.discovery import cosign_tag, discover
from hotfix_operator.adapters.registry import (
    DigestMismatchError,
    ImageReference,
    RegistryClient,
    RegistryError,
)
from hotfix_operator.provenance import Reason, read_oci_layout, verify_provenance
from localcluster.cluster import LocalCluster
from localcluster.oci import OCI_MANIFEST, PushedImage, Pusher, digest_of
from tests.provenance.container_vectors import OTHER_COMMIT, VECTORS, Vector, policy_for, request_for
from tests.provenance.cosign import TamperingRegistry, allow_loopback_only

pytestmark = pytest.mark.cluster

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ATTESTATIONS_KIND = "dev.cosignproject.cosign/atts"
# .sig 404, .att manifest, .att layer blob, referrers API 404, referrers fallback tag 404.
LEGACY_ATTESTATION_REQUESTS = 5


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replaces the package's guard for this module: the local registry is on loopback, nothing else is allowed."""
    allow_loopback_only(monkeypatch)


@pytest.fixture(scope="module")
def pusher(cluster: LocalCluster) -> Iterator[Pusher]:
    with Pusher(cluster.registry_host, cluster.ca_file) as pusher:
        yield pusher


@pytest.fixture
def client(cluster: LocalCluster) -> Iterator[RegistryClient]:
    with RegistryClient(ca_file=str(cluster.ca_file)) as client:
        yield client


@dataclass(frozen=True)
class PushedVector:
    vector: Vector
    layout: Path
    reference: str

    @property
    def image(self) -> ImageReference:
        return ImageReference.parse(self.reference)


def push_vector(pusher: Pusher, layout: Path, vector: Vector) -> PushedVector:
    """Publish a `cosign save` layout as cosign would have: the image, and its `.att` manifest under the tag."""
    repository = f"provenance/vectors/{vector.name.replace('.', '-')}"
    pusher.push_layout(layout, repository)
    index = json.loads((layout / "index.json").read_text())
    for descriptor in index["manifests"]:
        if descriptor.get("annotations", {}).get("kind") == ATTESTATIONS_KIND:
            raw = (layout / "blobs" / "sha256" / descriptor["digest"].removeprefix("sha256:")).read_bytes()
            pusher.push_manifest(repository, cosign_tag(vector.digest, ".att"), raw, descriptor["mediaType"])
    return PushedVector(vector, layout, f"{pusher.registry}/{repository}@{vector.digest}")


@pytest.fixture(scope="module")
def pushed(pusher: Pusher, vectors: Path) -> dict[str, PushedVector]:
    layouts = vectors / "slsa-github-generator"
    return {vector.name: push_vector(pusher, layouts / vector.name / "oci-layout", vector) for vector in VECTORS}


@pytest.fixture(scope="module")
def plain_image(pusher: Pusher) -> PushedImage:
    return pusher.push_image("provenance/discovery/unsigned", "v1", {"app": b"nothing attached\n"})


def fresh_image(pusher: Pusher, name: str) -> PushedImage:
    return pusher.push_image(f"provenance/discovery/{name}", "v1", {"app": f"{name}\n".encode()})


# ---------------------------------------------------------------------------------------------
# The real vectors, end to end
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_a_pushed_vector_is_found_and_verifies_for_its_commit(
    client: RegistryClient, pushed: dict[str, PushedVector], production_root: str, vector: Vector
) -> None:
    target = pushed[vector.name]

    material = discover(client, target.image)

    assert client.request_count == LEGACY_ATTESTATION_REQUESTS
    assert material.image_digest == vector.digest
    assert material.image_manifest is None  # not needed: every signature binds to the pinned digest
    assert (material.signature_layers, material.bundles) == ((), ())
    # Exactly what `cosign save` wrote: same layer, same bytes, same annotations.
    assert material.attestation_layers == read_oci_layout(target.layout).attestation_layers
    result = verify_provenance(
        material, request_for(vector, image=target.reference), policy_for(vector, production_root)
    )
    assert result.ok, result.message
    assert result.summary is not None and result.summary.commit_sha == vector.commit


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_a_pushed_vector_is_refused_for_another_commit(
    client: RegistryClient, pushed: dict[str, PushedVector], production_root: str, vector: Vector
) -> None:
    target = pushed[vector.name]
    result = verify_provenance(
        discover(client, target.image),
        request_for(vector, image=target.reference, commit_sha=OTHER_COMMIT),
        policy_for(vector, production_root),
    )
    assert not result.ok
    assert result.reason == Reason.COMMIT_MISMATCH, result.message
    assert OTHER_COMMIT[:7] in result.message and vector.commit[:7] in result.message


def test_the_image_manifest_is_fetched_on_request_and_checked_by_digest(
    client: RegistryClient, pushed: dict[str, PushedVector], production_root: str
) -> None:
    target = pushed[VECTORS[0].name]

    material = discover(client, target.image, fetch_image_manifest=True)

    assert client.request_count == LEGACY_ATTESTATION_REQUESTS + 1
    assert material.image_manifest is not None
    assert material.image_manifest == read_oci_layout(target.layout).image_manifest
    assert digest_of(material.image_manifest) == target.vector.digest
    vector = target.vector
    assert verify_provenance(
        material, request_for(vector, image=target.reference), policy_for(vector, production_root)
    ).ok


# ---------------------------------------------------------------------------------------------
# Nothing there is not an error; a tag is not a digest
# ---------------------------------------------------------------------------------------------


def test_an_image_with_nothing_attached_yields_empty_material(
    client: RegistryClient, plain_image: PushedImage, production_root: str
) -> None:
    material = discover(client, ImageReference.parse(plain_image.reference))

    assert (material.signature_layers, material.attestation_layers, material.bundles) == ((), (), ())
    assert client.request_count == 4  # .sig, .att, referrers API, fallback tag: all 404
    vector = VECTORS[0]
    result = verify_provenance(
        material, request_for(vector, image=plain_image.reference), policy_for(vector, production_root)
    )
    assert result.reason == Reason.NO_SIGNATURE


def test_a_tag_is_refused_before_any_request(client: RegistryClient, plain_image: PushedImage) -> None:
    with pytest.raises(RegistryError) as caught:
        discover(client, ImageReference.parse(f"{plain_image.registry}/{plain_image.repository}:v1"))
    assert caught.value.reason == "NotDigestPinned" and not caught.value.transient
    assert client.request_count == 0


def test_a_reference_with_tag_and_digest_is_looked_up_by_digest(
    client: RegistryClient, pushed: dict[str, PushedVector]
) -> None:
    target = pushed[VECTORS[1].name]
    reference = f"{target.reference.split('@')[0]}:no-such-tag@{target.vector.digest}"
    assert len(discover(client, ImageReference.parse(reference)).attestation_layers) == 1


# ---------------------------------------------------------------------------------------------
# Referrers on a registry without the API: the `sha256-<hex>` fallback index
# ---------------------------------------------------------------------------------------------


def referrer_manifest(pusher: Pusher, repository: str, subject: PushedImage, layer_blob: bytes, **fields: Any) -> bytes:
    empty = pusher.push_blob(repository, b"{}")
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [
            {
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "digest": pusher.push_blob(repository, layer_blob),
                "size": len(layer_blob),
            }
        ],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.digest, "size": len(subject.manifest)},
    }
    document.update(fields)
    return json.dumps(document).encode()


def push_fallback_index(pusher: Pusher, image: PushedImage, entries: list[dict[str, Any]]) -> None:
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    pusher.push_manifest(image.repository, cosign_tag(image.digest), index, OCI_INDEX)


def index_entry(
    raw: bytes, artifact_type: str | None = "application/vnd.dev.sigstore.bundle.v0.3+json"
) -> dict[str, Any]:
    entry: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": digest_of(raw), "size": len(raw)}
    if artifact_type is not None:
        entry["artifactType"] = artifact_type
    return entry


def test_bundles_are_found_through_the_fallback_tag_and_unrelated_referrers_are_not_fetched(
    client: RegistryClient, pusher: Pusher
) -> None:
    image = fresh_image(pusher, "fallback")
    bundle_blob = b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}'
    bundle_referrer = referrer_manifest(pusher, image.repository, image, bundle_blob)
    sbom_referrer = referrer_manifest(pusher, image.repository, image, b'{"spdxVersion": "SPDX-2.3"}')
    for raw in (bundle_referrer, sbom_referrer):
        pusher.push_manifest(image.repository, digest_of(raw), raw)
    push_fallback_index(
        pusher, image, [index_entry(bundle_referrer), index_entry(sbom_referrer, "application/spdx+json")]
    )

    material = discover(client, ImageReference.parse(image.reference))

    assert [bundle.blob for bundle in material.bundles] == [bundle_blob]
    assert material.bundles[0].digest == digest_of(bundle_blob)
    # .sig, .att, referrers API, fallback index, the bundle's manifest and blob; not the SBOM's.
    assert client.request_count == 6


def test_a_referrer_about_another_image_attaches_nothing(client: RegistryClient, pusher: Pusher) -> None:
    image, other = fresh_image(pusher, "subject-a"), fresh_image(pusher, "subject-a-other")
    other_in_same_repository = pusher.push_image(image.repository, "other", {"app": b"another image\n"})
    raw = referrer_manifest(pusher, image.repository, other_in_same_repository, b'{"about": "another image"}')
    pusher.push_manifest(image.repository, digest_of(raw), raw)
    push_fallback_index(pusher, image, [index_entry(raw)])

    material = discover(client, ImageReference.parse(image.reference))

    assert material.bundles == ()
    assert other.digest != image.digest


def test_a_stale_fallback_entry_is_skipped(client: RegistryClient, pusher: Pusher) -> None:
    """The fallback index is maintained by clients; a referrer deleted later leaves its entry behind."""
    image = fresh_image(pusher, "stale")
    raw = referrer_manifest(pusher, image.repository, image, b'{"deleted": true}')
    pusher.push_manifest(image.repository, digest_of(raw), raw)
    push_fallback_index(pusher, image, [index_entry(raw)])
    pusher.http.delete(f"/v2/{image.repository}/manifests/{digest_of(raw)}").raise_for_status()

    assert discover(client, ImageReference.parse(image.reference)).bundles == ()


# ---------------------------------------------------------------------------------------------
# Malformed content: permanent, and the message says which document and why
# ---------------------------------------------------------------------------------------------


def test_an_attestation_manifest_with_duplicate_keys_is_a_permanent_error(
    client: RegistryClient, pusher: Pusher
) -> None:
    # Go (and so the registry) keeps the last "layers"; Python would too. Two readings of one
    # document is exactly what a verifier must not pick between.
    image = fresh_image(pusher, "duplicate-keys")
    manifest = image.manifest.decode()
    ambiguous = manifest[:-1] + ', "layers": []}'
    pusher.push_manifest(image.repository, cosign_tag(image.digest, ".att"), ambiguous.encode())

    with pytest.raises(RegistryError) as caught:
        discover(client, ImageReference.parse(image.reference))

    assert (caught.value.reason, caught.value.transient) == ("MalformedManifest", False)
    assert cosign_tag(image.digest, ".att") in str(caught.value)
    assert "duplicate key 'layers'" in str(caught.value)


def test_a_fallback_tag_that_is_not_an_index_is_a_permanent_error(client: RegistryClient, pusher: Pusher) -> None:
    image = fresh_image(pusher, "fallback-not-index")
    pusher.push_manifest(image.repository, cosign_tag(image.digest), image.manifest)

    with pytest.raises(RegistryError) as caught:
        discover(client, ImageReference.parse(image.reference))

    assert (caught.value.reason, caught.value.transient) == ("MalformedManifest", False)
    assert "must hold an OCI image index" in str(caught.value)


# ---------------------------------------------------------------------------------------------
# A registry that fails or lies
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def tampering(cluster: LocalCluster) -> Iterator[TamperingRegistry]:
    with TamperingRegistry(cluster.registry_host, cluster.ca_file).serving() as front:
        yield front


def through(front: TamperingRegistry, target: PushedVector) -> tuple[RegistryClient, ImageReference]:
    image = target.image
    client = RegistryClient(plain_http_hosts=frozenset({front.host}))
    return client, ImageReference(registry=front.host, repository=image.repository, digest=image.digest)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_registry_outages_propagate_as_transient(
    tampering: TamperingRegistry, pushed: dict[str, PushedVector], status: int
) -> None:
    target = pushed[VECTORS[0].name]
    tampering.rules[f"/v2/{target.image.repository}/manifests/{cosign_tag(target.vector.digest, '.att')}"] = (
        lambda _status, _body: (status, b"")
    )
    client, image = through(tampering, target)
    with client, pytest.raises(RegistryError) as caught:
        discover(client, image)
    assert caught.value.transient
    assert caught.value.reason == "RegistryUnavailable"


def test_an_unreachable_registry_is_transient() -> None:
    with RegistryClient(plain_http_hosts=frozenset({"127.0.0.1:9"})) as client, pytest.raises(RegistryError) as caught:
        discover(client, ImageReference.parse("127.0.0.1:9/app@sha256:" + "0" * 64))
    assert caught.value.transient and caught.value.reason == "RegistryUnavailable"


def test_a_malformed_referrers_answer_is_a_permanent_error(
    tampering: TamperingRegistry, pushed: dict[str, PushedVector]
) -> None:
    target = pushed[VECTORS[0].name]
    tampering.rules[f"/v2/{target.image.repository}/referrers/{target.vector.digest}"] = lambda _status, _body: (
        200,
        b'{"manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json"}]}',
    )
    client, image = through(tampering, target)
    with client, pytest.raises(RegistryError) as caught:
        discover(client, image)
    assert (caught.value.reason, caught.value.transient) == ("MalformedManifest", False)
    assert "referrers index" in str(caught.value)


def test_image_manifest_bytes_that_do_not_match_the_digest_are_refused(
    tampering: TamperingRegistry, pushed: dict[str, PushedVector]
) -> None:
    target = pushed[VECTORS[0].name]
    tampering.rules[f"/v2/{target.image.repository}/manifests/{target.vector.digest}"] = lambda status, body: (
        status,
        body.replace(b'"amd64"', b'"arm64"'),
    )
    client, image = through(tampering, target)
    with client, pytest.raises(DigestMismatchError) as caught:
        discover(client, image, fetch_image_manifest=True)
    assert not caught.value.transient and "refusing them" in str(caught.value)


def test_an_attestation_blob_that_does_not_match_its_digest_is_refused(
    tampering: TamperingRegistry, pushed: dict[str, PushedVector]
) -> None:
    target = pushed[VECTORS[0].name]
    layer = read_oci_layout(target.layout).attestation_layers[0]
    tampering.rules[f"/v2/{target.image.repository}/blobs/{layer.digest}"] = lambda status, body: (status, body[:-1])
    client, image = through(tampering, target)
    with client, pytest.raises(DigestMismatchError) as caught:
        discover(client, image)
    assert layer.digest in str(caught.value)
