"""Finding an image's provenance in its registry: cosign's legacy tags and OCI 1.1 referrers.

For `registry/repo@sha256:<hex>`, cosign publishes
  - `sha256-<hex>.sig`: a manifest whose simple-signing layers sign the image (signature in an annotation);
  - `sha256-<hex>.att`: a manifest whose DSSE layers are the attestations;
  - OCI 1.1 referrers (manifests whose `subject` is the image): Sigstore bundles (cosign 3's default),
    or the same simple-signing / DSSE layers when signed with `--registry-referrers-mode=oci-1-1`.
    A registry without the referrers API (HTTP 404) gets the index the spec's fallback prescribes,
    under the tag `sha256-<hex>`, maintained by the pushing client.

Nothing found here is trusted: the verifier checks every signature, subject and digest. Discovery's
own duties are to fetch exactly the content that is named (every blob and every manifest asked for
by digest is re-hashed by the RegistryClient), to bound what it reads, and to say whether a failure
is worth retrying: transport errors, 5xx and 429 propagate as RegistryError(transient=True);
a malformed manifest or index is permanent, with a message naming which one and why.

Request budget, for an image with one legacy signature and one attestation on a registry without
the referrers API (the common case today): 5 requests.
  1  GET manifests/sha256-<hex>.sig
  2  GET manifests/sha256-<hex>.att
  3  GET blobs/<attestation layer>
  4  GET referrers/sha256:<hex>            (404: no referrers API)
  5  GET manifests/sha256-<hex>             (the fallback tag; 404 when nothing is attached)
Two requests are saved on purpose:
  - The image manifest is not fetched by default. Every signature and statement binds to the image
    digest, which the request pins, so the manifest's bytes add nothing the verifier checks; the
    operator's image check already fetches and digest-verifies it once. Pass
    `fetch_image_manifest=True` to include it (one more request).
  - A `.sig` layer's blob is the simple-signing payload cosign derives from the image reference alone
    (`{"critical":{"identity":{"docker-reference":R},"image":{"docker-manifest-digest":D},...},
    "optional":null}`). When that exact document hashes to the layer's digest, it *is* the blob —
    content addressing makes the download redundant. Any other payload (annotations, a claimed
    identity) is fetched as usual.
On a registry with the referrers API, request 5 disappears.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from hotfix_operator.adapters.registry import (
    OCI_INDEX,
    Descriptor,
    ImageReference,
    NotFoundError,
    RegistryClient,
    RegistryError,
)
from hotfix_operator.formats import sha256_digest
from hotfix_operator.provenance.bundles import BUNDLE_MEDIA_TYPES
from hotfix_operator.provenance.cosign_layers import DSSE_MEDIA_TYPE, SIMPLE_SIGNING_MEDIA_TYPE
from hotfix_operator.provenance.digests import SHA256_DIGEST
from hotfix_operator.provenance.inputs import BundleArtifact, OciLayer, ProvenanceMaterial
from hotfix_operator.provenance.limits import MAX_BUNDLES, MAX_LAYER_BYTES, MAX_LAYERS, MAX_MANIFEST_BYTES, MIB
from hotfix_operator.provenance.reasons import Rejected
from hotfix_operator.provenance.simplesigning import cosign_signing_payload
from hotfix_operator.provenance.strictjson import (
    JsonObject,
    as_object,
    as_str,
    get_list,
    get_str,
    optional_object,
    parse_json_object,
)

SIGNATURE_TAG_SUFFIX = ".sig"
ATTESTATION_TAG_SUFFIX = ".att"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
IMAGE_MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})

# artifactType of the referrers cosign writes: bundles, legacy signatures, legacy attestations.
COSIGN_SIGNATURE_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
IN_TOTO_ARTIFACT_TYPE = "application/vnd.in-toto+json"
PROVENANCE_ARTIFACT_TYPES = BUNDLE_MEDIA_TYPES | {COSIGN_SIGNATURE_ARTIFACT_TYPE, IN_TOTO_ARTIFACT_TYPE}

# Everything one discovery may download, across all blobs. Each blob is capped at MAX_LAYER_BYTES;
# this bounds the sum, so an image with many large attestations cannot exhaust the operator's memory.
MAX_DISCOVERED_BYTES = 64 * MIB

MALFORMED = "MalformedManifest"
INCONSISTENT = "RegistryInconsistent"
TOO_LARGE = "TooLarge"


def cosign_tag(image_digest: str, suffix: str = "") -> str:
    """`sha256:<hex>` → `sha256-<hex><suffix>`, cosign's (and the referrers fallback's) tag scheme."""
    return image_digest.replace(":", "-", 1) + suffix


def discover(
    client: RegistryClient, image: ImageReference, *, fetch_image_manifest: bool = False
) -> ProvenanceMaterial:
    """Fetch the signatures, attestations and Sigstore bundles attached to a digest-pinned image.

    Missing tags or referrers mean "nothing there", not an error; the verifier decides whether
    what was found is enough. Raises RegistryError: transient for outages, permanent for a
    tag instead of a digest, malformed or oversized content, or content the registry lists but lacks.
    """
    if image.digest is None or not SHA256_DIGEST.fullmatch(image.digest):
        raise RegistryError(
            f"{image} is not pinned to a sha256 digest; provenance is only looked up by digest",
            transient=False,
            reason="NotDigestPinned",
        )
    return _Discovery(client, image, image.digest).run(fetch_image_manifest=fetch_image_manifest)


@dataclass
class _Found:
    signature_layers: list[OciLayer] = field(default_factory=list)
    attestation_layers: list[OciLayer] = field(default_factory=list)
    bundles: list[BundleArtifact] = field(default_factory=list)

    def check_counts(self, where: str) -> None:
        if len(self.signature_layers) + len(self.attestation_layers) > MAX_LAYERS:
            raise RegistryError(
                f"{where}: more than {MAX_LAYERS} signature and attestation layers", transient=False, reason=TOO_LARGE
            )
        if len(self.bundles) > MAX_BUNDLES:
            raise RegistryError(f"{where}: more than {MAX_BUNDLES} Sigstore bundles", transient=False, reason=TOO_LARGE)


class _Discovery:
    def __init__(self, client: RegistryClient, image: ImageReference, digest: str) -> None:
        self.client = client
        # Tags and digests below are resolved in the image's repository, whatever tag the reference named.
        self.repository = ImageReference(registry=image.registry, repository=image.repository, digest=digest)
        self.digest = digest
        self.where = f"{image.registry}/{image.repository}"
        self.downloaded = 0
        self.found = _Found()

    def run(self, *, fetch_image_manifest: bool) -> ProvenanceMaterial:
        image_manifest = self.client.get_manifest(self.repository, self.digest).raw if fetch_image_manifest else None
        self._legacy_tag(SIGNATURE_TAG_SUFFIX)
        self._legacy_tag(ATTESTATION_TAG_SUFFIX)
        self._referrers()
        return ProvenanceMaterial(
            image_digest=self.digest,
            image_manifest=image_manifest,
            signature_layers=tuple(self.found.signature_layers),
            attestation_layers=tuple(self.found.attestation_layers),
            bundles=tuple(self.found.bundles),
        )

    # -- cosign's legacy tags ------------------------------------------------------------------

    def _legacy_tag(self, suffix: str) -> None:
        tag = cosign_tag(self.digest, suffix)
        try:
            manifest = self.client.get_manifest(self.repository, tag)
        except NotFoundError:
            return  # nothing signed or attested this way
        what = f"{self.where}:{tag}"
        document = _parse(manifest.raw, what)
        _require_image_manifest(document, what)
        layers = _layer_descriptors(document, what)
        wanted = SIMPLE_SIGNING_MEDIA_TYPE if suffix == SIGNATURE_TAG_SUFFIX else DSSE_MEDIA_TYPE
        # Layers of other types would be refused by the verifier anyway; not downloading them
        # keeps a tag stuffed with unrelated content from costing requests.
        self._take_layers([layer for layer in layers if layer.media_type == wanted], what)

    # -- OCI 1.1 referrers ---------------------------------------------------------------------

    def _referrers(self) -> None:
        listed = self.client.get_referrers(self.repository, self.digest)
        from_fallback_tag = listed is None
        if listed is None:
            listed = self._fallback_referrers()
        candidates = [
            descriptor
            for descriptor in listed
            # An absent artifactType says nothing, so such manifests are fetched and looked into.
            if descriptor.artifact_type is None or descriptor.artifact_type in PROVENANCE_ARTIFACT_TYPES
        ]
        if len(candidates) > MAX_BUNDLES:
            raise RegistryError(
                f"{self.where}: {len(candidates)} provenance referrers of {self.digest}, more than {MAX_BUNDLES}",
                transient=False,
                reason=TOO_LARGE,
            )
        for descriptor in candidates:
            self._referrer(descriptor, from_fallback_tag=from_fallback_tag)

    def _fallback_referrers(self) -> list[Descriptor]:
        tag = cosign_tag(self.digest)
        try:
            manifest = self.client.get_manifest(self.repository, tag)
        except NotFoundError:
            return []
        what = f"referrers index {self.where}:{tag}"
        document = _parse(manifest.raw, what)
        media_type = document.get("mediaType")
        if media_type != OCI_INDEX:
            raise RegistryError(
                f"{what} has media type {media_type!r}; the referrers fallback tag must hold an OCI image index",
                transient=False,
                reason=MALFORMED,
            )
        return [
            _descriptor(entry, f"{what} manifests[{index}]")
            for index, entry in enumerate(_objects(document, "manifests", what))
        ]

    def _referrer(self, descriptor: Descriptor, *, from_fallback_tag: bool) -> None:
        what = f"referrer {self.where}@{descriptor.digest}"
        if descriptor.media_type not in IMAGE_MANIFEST_TYPES:
            return  # an index or something else: cosign's referrers are image manifests
        if descriptor.size > MAX_MANIFEST_BYTES:
            raise RegistryError(
                f"{what} is {descriptor.size} bytes, over the manifest limit", transient=False, reason=TOO_LARGE
            )
        try:
            manifest = self.client.get_manifest(self.repository, descriptor.digest)
        except NotFoundError:
            if from_fallback_tag:
                # The fallback index is kept by clients, not the registry; deleting a referrer
                # leaves its entry behind. A stale entry attaches nothing.
                return
            raise RegistryError(
                f"the registry lists {what} but does not serve it", transient=False, reason=INCONSISTENT
            ) from None
        document = _parse(manifest.raw, what)
        _require_image_manifest(document, what)
        subject = _optional_object(document, "subject", what)
        if subject is None or subject.get("digest") != self.digest:
            # Listed under this image but about another one: it attaches nothing to this image.
            return
        layers = [
            layer
            for layer in _layer_descriptors(document, what)
            if layer.media_type in BUNDLE_MEDIA_TYPES | {SIMPLE_SIGNING_MEDIA_TYPE, DSSE_MEDIA_TYPE}
        ]
        self._take_layers(layers, what)

    # -- blobs ---------------------------------------------------------------------------------

    def _take_layers(self, layers: list[Descriptor], what: str) -> None:
        for index, layer in enumerate(layers):
            blob = self._blob(layer, f"{what} layer {index}")
            if layer.media_type in BUNDLE_MEDIA_TYPES:
                self.found.bundles.append(BundleArtifact(blob=blob, media_type=layer.media_type, digest=layer.digest))
            else:
                oci_layer = OciLayer(
                    media_type=layer.media_type,
                    digest=layer.digest,
                    blob=blob,
                    annotations=dict(layer.annotations),
                    size=layer.size,
                )
                if layer.media_type == SIMPLE_SIGNING_MEDIA_TYPE:
                    self.found.signature_layers.append(oci_layer)
                else:
                    self.found.attestation_layers.append(oci_layer)
            self.found.check_counts(what)

    def _blob(self, layer: Descriptor, what: str) -> bytes:
        if layer.media_type == SIMPLE_SIGNING_MEDIA_TYPE:
            known = self._derivable_simple_signing_payload(layer)
            if known is not None:
                return known
        if layer.size > MAX_LAYER_BYTES:
            raise RegistryError(
                f"{what} is {layer.size} bytes, over the {MAX_LAYER_BYTES}-byte layer limit",
                transient=False,
                reason=TOO_LARGE,
            )
        if self.downloaded + layer.size > MAX_DISCOVERED_BYTES:
            raise RegistryError(
                f"{what}: the provenance of {self.digest} exceeds {MAX_DISCOVERED_BYTES} bytes",
                transient=False,
                reason=TOO_LARGE,
            )
        try:
            blob = self.client.get_blob(self.repository, layer.digest, max_bytes=MAX_LAYER_BYTES)
        except NotFoundError:
            # Registries refuse manifests whose blobs are missing, so this blob was deleted since.
            raise RegistryError(
                f"{what}: blob {layer.digest} is listed but missing from {self.where}",
                transient=False,
                reason=INCONSISTENT,
            ) from None
        self.downloaded += len(blob)
        return blob

    def _derivable_simple_signing_payload(self, layer: Descriptor) -> bytes | None:
        """The payload `cosign sign` writes when given no annotations, if that is what the layer holds."""
        for reference in _docker_references(self.repository):
            payload = cosign_signing_payload(reference, self.digest)
            if len(payload) == layer.size and sha256_digest(payload) == layer.digest:
                return payload
        return None


def _docker_references(image: ImageReference) -> list[str]:
    """How go-containerregistry names the repository (`name.Repository.Name()`), cosign's docker-reference."""
    references = [f"{image.registry}/{image.repository}"]
    if image.registry in ("docker.io", "index.docker.io"):
        repository = image.repository if "/" in image.repository else f"library/{image.repository}"
        references.append(f"index.docker.io/{repository}")
    return references


# -- strict reading of manifests and indexes ----------------------------------------------------
# Malformed content is a permanent error: the same bytes will be served again on retry.


@contextmanager
def _malformed_is_permanent() -> Iterator[None]:
    try:
        yield
    except Rejected as exc:
        raise RegistryError(exc.message, transient=False, reason=MALFORMED) from None


def _parse(raw: bytes, what: str) -> JsonObject:
    with _malformed_is_permanent():
        return parse_json_object(raw, what=what, max_bytes=MAX_MANIFEST_BYTES)


def _objects(document: JsonObject, key: str, what: str) -> list[JsonObject]:
    with _malformed_is_permanent():
        return [as_object(raw, f"{what} {key}[{index}]") for index, raw in enumerate(get_list(document, key, what))]


def _optional_object(document: JsonObject, key: str, what: str) -> JsonObject | None:
    with _malformed_is_permanent():
        return optional_object(document, key, what)


def _require_image_manifest(document: JsonObject, what: str) -> None:
    media_type = document.get("mediaType")
    # mediaType is optional in an OCI manifest, so its absence is no fault; a wrong one is.
    if media_type is not None and media_type not in IMAGE_MANIFEST_TYPES:
        raise RegistryError(
            f"{what} has media type {media_type!r}, expected an image manifest", transient=False, reason=MALFORMED
        )
    if document.get("schemaVersion") != 2:
        raise RegistryError(f"{what} is not a schemaVersion 2 manifest", transient=False, reason=MALFORMED)


def _layer_descriptors(document: JsonObject, what: str) -> list[Descriptor]:
    layers = _objects(document, "layers", what)
    if len(layers) > MAX_LAYERS:
        raise RegistryError(
            f"{what} has {len(layers)} layers, more than {MAX_LAYERS}", transient=False, reason=TOO_LARGE
        )
    return [_descriptor(layer, f"{what} layers[{index}]") for index, layer in enumerate(layers)]


def _descriptor(value: JsonObject, what: str) -> Descriptor:
    with _malformed_is_permanent():
        media_type = get_str(value, "mediaType", what)
        digest = get_str(value, "digest", what)
        annotations = {
            key: as_str(text, f"{what} annotation {key}")
            for key, text in (optional_object(value, "annotations", what) or {}).items()
        }
    if not SHA256_DIGEST.fullmatch(digest):
        raise RegistryError(
            f"{what}: digest {digest!r} is not sha256:<64 lowercase hex>", transient=False, reason=MALFORMED
        )
    size = value.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise RegistryError(f"{what}: size must be a non-negative integer", transient=False, reason=MALFORMED)
    artifact_type = value.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise RegistryError(f"{what}: artifactType must be a string", transient=False, reason=MALFORMED)
    return Descriptor(
        media_type=media_type, digest=digest, size=size, artifact_type=artifact_type, annotations=annotations
    )
