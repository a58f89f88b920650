"""Reading an OCI image layout directory (as `cosign save` writes it) into ProvenanceMaterial.

`index.json` lists the image (annotation kind=dev.cosignproject.cosign/image or /imageIndex)
next to the manifests of its `.sig` (kind …/sigs) and `.att` (kind …/atts) tags. OCI 1.1
referrers holding Sigstore bundles are found by their `subject`. Every blob is read by digest
and re-hashed, the same discipline the registry path follows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .bundles import BUNDLE_MEDIA_TYPES
from .digests import SHA256_DIGEST, check_content_digest
from .inputs import BundleArtifact, OciLayer, ProvenanceMaterial
from .limits import MAX_LAYER_BYTES, MAX_LAYERS, MAX_MANIFEST_BYTES
from .reasons import Reason, Rejected
from .strictjson import JsonObject, as_object, as_str, get_list, get_str, optional_object, parse_json_object

KIND_ANNOTATION = "kind"
IMAGE_KINDS = ("dev.cosignproject.cosign/image", "dev.cosignproject.cosign/imageIndex")
SIGNATURES_KIND = "dev.cosignproject.cosign/sigs"
ATTESTATIONS_KIND = "dev.cosignproject.cosign/atts"


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int | None
    annotations: dict[str, str]
    artifact_type: str | None = None


def _descriptor(value: JsonObject, what: str) -> Descriptor:
    digest = get_str(value, "digest", what)
    if not SHA256_DIGEST.fullmatch(digest):
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} digest {digest!r} is not sha256:<64 lowercase hex>")
    size = value.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} size is not a non-negative integer")
    annotations = {
        key: as_str(text, f"{what} annotation {key}")
        for key, text in (optional_object(value, "annotations", what) or {}).items()
    }
    artifact_type = value.get("artifactType")
    return Descriptor(
        media_type=get_str(value, "mediaType", what),
        digest=digest,
        size=size,
        annotations=annotations,
        artifact_type=artifact_type if isinstance(artifact_type, str) else None,
    )


class _Layout:
    def __init__(self, root: Path) -> None:
        self.root = root

    def blob(self, descriptor: Descriptor, *, limit: int, what: str) -> bytes:
        path = self.root / "blobs" / "sha256" / descriptor.digest.removeprefix("sha256:")
        try:
            if path.is_symlink() or not path.is_file():
                raise Rejected(Reason.MALFORMED_INPUT, f"{what}: blob {descriptor.digest} is missing from the layout")
            if path.stat().st_size > limit:
                raise Rejected(Reason.MALFORMED_INPUT, f"{what}: blob {descriptor.digest} is larger than {limit} bytes")
            data = path.read_bytes()
        except OSError as exc:
            raise Rejected(Reason.MALFORMED_INPUT, f"{what}: cannot read blob {descriptor.digest}: {exc}") from None
        if descriptor.size is not None and descriptor.size != len(data):
            raise Rejected(
                Reason.DIGEST_MISMATCH, f"{what} is {len(data)} bytes, its descriptor says {descriptor.size}"
            )
        check_content_digest(data, descriptor.digest, what=what)
        return data

    def blob_text(self, name: str) -> bytes:
        path = self.root / name
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_MANIFEST_BYTES:
                raise Rejected(Reason.MALFORMED_INPUT, f"layout {name} is missing or too large")
            return path.read_bytes()
        except OSError as exc:
            raise Rejected(Reason.MALFORMED_INPUT, f"cannot read layout {name}: {exc}") from None

    def manifest(self, descriptor: Descriptor, what: str) -> tuple[bytes, JsonObject]:
        data = self.blob(descriptor, limit=MAX_MANIFEST_BYTES, what=what)
        return data, parse_json_object(data, what=what, max_bytes=MAX_MANIFEST_BYTES)

    def layers(self, descriptor: Descriptor, what: str) -> list[OciLayer]:
        _, manifest = self.manifest(descriptor, what)
        raw_layers = get_list(manifest, "layers", what)
        if len(raw_layers) > MAX_LAYERS:
            raise Rejected(Reason.MALFORMED_INPUT, f"{what} has more than {MAX_LAYERS} layers")
        layers = []
        for index, raw in enumerate(raw_layers):
            layer = _descriptor(as_object(raw, f"{what} layer {index}"), f"{what} layer {index}")
            layers.append(
                OciLayer(
                    media_type=layer.media_type,
                    digest=layer.digest,
                    blob=self.blob(layer, limit=MAX_LAYER_BYTES, what=f"{what} layer {index}"),
                    annotations=layer.annotations,
                    size=layer.size,
                )
            )
        return layers


def read_oci_layout(directory: str | os.PathLike[str], *, image_digest: str | None = None) -> ProvenanceMaterial:
    """Read the image and its cosign material; raises Rejected for a malformed or tampered layout."""
    layout = _Layout(Path(directory))
    marker = parse_json_object(layout.blob_text("oci-layout"), what="oci-layout")
    if marker.get("imageLayoutVersion") != "1.0.0":
        raise Rejected(Reason.MALFORMED_INPUT, "oci-layout does not declare imageLayoutVersion 1.0.0")
    index = parse_json_object(layout.blob_text("index.json"), what="index.json", max_bytes=MAX_MANIFEST_BYTES)
    descriptors = [
        _descriptor(as_object(raw, f"index.json manifest {position}"), f"index.json manifest {position}")
        for position, raw in enumerate(get_list(index, "manifests", "index.json"))
    ]
    images = [item for item in descriptors if item.annotations.get(KIND_ANNOTATION) in IMAGE_KINDS]
    chosen = images if image_digest is None else [item for item in descriptors if item.digest == image_digest]
    if len(chosen) != 1:
        raise Rejected(Reason.MALFORMED_INPUT, f"layout holds {len(chosen)} matching images, expected exactly one")
    image = chosen[0]
    manifest, _ = layout.manifest(image, "image manifest")

    signature_layers: list[OciLayer] = []
    attestation_layers: list[OciLayer] = []
    bundles: list[BundleArtifact] = []
    for descriptor in descriptors:
        kind = descriptor.annotations.get(KIND_ANNOTATION)
        if kind == SIGNATURES_KIND:
            signature_layers.extend(layout.layers(descriptor, "signature manifest"))
        elif kind == ATTESTATIONS_KIND:
            attestation_layers.extend(layout.layers(descriptor, "attestation manifest"))
        elif kind is None and descriptor.digest != image.digest:
            bundles.extend(_referrer_bundles(layout, descriptor, image.digest))
    return ProvenanceMaterial(
        image_digest=image.digest,
        image_manifest=manifest,
        signature_layers=tuple(signature_layers),
        attestation_layers=tuple(attestation_layers),
        bundles=tuple(bundles),
    )


def _referrer_bundles(layout: _Layout, descriptor: Descriptor, image_digest: str) -> list[BundleArtifact]:
    _, manifest = layout.manifest(descriptor, "referrer manifest")
    subject = optional_object(manifest, "subject", "referrer manifest")
    if subject is None or subject.get("digest") != image_digest:
        return []
    found = []
    for index, raw in enumerate(get_list(manifest, "layers", "referrer manifest")):
        layer = _descriptor(as_object(raw, f"referrer layer {index}"), f"referrer layer {index}")
        if layer.media_type in BUNDLE_MEDIA_TYPES:
            blob = layout.blob(layer, limit=MAX_LAYER_BYTES, what=f"referrer layer {index}")
            found.append(BundleArtifact(blob=blob, media_type=layer.media_type, digest=layer.digest))
    return found
