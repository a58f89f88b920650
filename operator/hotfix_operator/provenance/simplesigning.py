"""cosign's simple-signing payload: the document a `.sig` layer signs.

    {"critical": {"identity": {"docker-reference": R},
                  "image": {"docker-manifest-digest": "sha256:…"},
                  "type": "cosign container image signature"},
     "optional": {…}}

Only `critical` is binding; `optional` is free-form annotations and never trusted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .digests import require_sha256_digest
from .reasons import Reason, Rejected, abbreviate_pair
from .strictjson import get_object, get_str, optional_object, optional_str, parse_json_object

SIGNATURE_TYPE = "cosign container image signature"


@dataclass(frozen=True)
class SimpleSigningClaim:
    manifest_digest: str
    docker_reference: str | None


def cosign_signing_payload(docker_reference: str, image_digest: str) -> bytes:
    """The payload `cosign sign` writes for an image when given no annotations.

    Byte for byte what Go's json.Marshal makes of sigstore's payload.SimpleContainerImage:
    fields in declaration order, no spaces, nil annotations as null. Knowing it lets a reader
    recognise such a layer by its digest alone, without downloading it.
    """
    document = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": image_digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": None,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def read_simple_signing(payload: bytes) -> SimpleSigningClaim:
    what = "simple-signing payload"
    document = parse_json_object(payload, what=what)
    critical = get_object(document, "critical", what)
    kind = get_str(critical, "type", f"{what}.critical")
    if kind != SIGNATURE_TYPE:
        raise Rejected(Reason.PAYLOAD_TYPE_NOT_ALLOWED, f"{what} type {kind!r} ≠ {SIGNATURE_TYPE!r}")
    image = get_object(critical, "image", f"{what}.critical")
    digest = require_sha256_digest(
        get_str(image, "docker-manifest-digest", f"{what}.critical.image"), what=f"{what} docker-manifest-digest"
    )
    identity = optional_object(critical, "identity", f"{what}.critical")
    reference = None if identity is None else optional_str(identity, "docker-reference", f"{what}.critical.identity")
    return SimpleSigningClaim(manifest_digest=digest, docker_reference=reference)


def require_signs_image(claim: SimpleSigningClaim, image_digest: str) -> None:
    if claim.manifest_digest != image_digest:
        expected, actual = abbreviate_pair(image_digest, claim.manifest_digest, keep=19)
        raise Rejected(Reason.DIGEST_MISMATCH, f"signature is for image {actual} ≠ requested {expected}")
