"""Content digests: what counts as a pinned image, and checking bytes against a digest."""

from __future__ import annotations

import re

from ..formats import sha256_digest
from .reasons import Reason, Rejected, abbreviate_pair

SHA256_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_ANY_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-zA-Z=_-]+")


def parse_image_digest(reference: str) -> str:
    """The sha256 digest an image reference is pinned to.

    Accepts `sha256:<hex>` or `<name>@sha256:<hex>`; a tag (`name:v1`) is NotDigestPinned,
    because a tag can be moved to other content after it was verified.
    """
    candidate = reference.strip()
    if "@" in candidate:
        candidate = candidate.rsplit("@", 1)[1]
    elif not candidate.startswith("sha256:"):
        raise Rejected(Reason.NOT_DIGEST_PINNED, f"image {reference!r} is not pinned to a digest (name@sha256:…)")
    if SHA256_DIGEST.fullmatch(candidate):
        return candidate
    if candidate.startswith("sha256:"):
        raise Rejected(Reason.MALFORMED_INPUT, f"image digest {candidate!r} is not sha256 followed by 64 lowercase hex")
    if _ANY_DIGEST.fullmatch(candidate):
        raise Rejected(
            Reason.NOT_DIGEST_PINNED, f"image digest {candidate!r} does not use sha256, the only supported algorithm"
        )
    raise Rejected(Reason.NOT_DIGEST_PINNED, f"image {reference!r} is not pinned to a digest (name@sha256:…)")


def require_sha256_digest(value: str, *, what: str) -> str:
    if not SHA256_DIGEST.fullmatch(value):
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} {value!r} is not sha256:<64 lowercase hex>")
    return value


def check_content_digest(data: bytes, declared: str, *, what: str) -> None:
    """Bytes fetched by digest must hash to it; otherwise they are not the content that was named."""
    require_sha256_digest(declared, what=f"{what} digest")
    actual = sha256_digest(data)
    if actual != declared:
        expected_text, actual_text = abbreviate_pair(declared, actual, keep=19)
        raise Rejected(Reason.DIGEST_MISMATCH, f"{what} hashes to {actual_text} ≠ declared {expected_text}")
