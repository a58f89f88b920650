"""Integrity of the evidence files a hotfix release carries (pure functions)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from .errors import EvidenceIntegrityError

CHECKSUMS_NAME = "SHA256SUMS"


def sha256_digest(data: bytes) -> str:
    """The digest in GitHub's release-asset notation: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def evidence_digests(evidence: Mapping[str, bytes]) -> dict[str, str]:
    return {name: sha256_digest(data) for name, data in sorted(evidence.items())}


def parse_checksums(text: str) -> dict[str, str]:
    """``sha256sum`` output (text or binary mode) as {file name: hex digest}."""
    listed: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest, _, name = line.partition(" ")
        name = name.lstrip(" *")
        listed[name.removeprefix("./").rsplit("/", 1)[-1]] = digest.lower()
    return listed


def verify_checksums(evidence: Mapping[str, bytes]) -> None:
    """Refuses evidence that contradicts its own SHA256SUMS (the seeds' 'bundle integrity' guard).

    Files SHA256SUMS lists but the evidence does not carry are not judged: the list usually
    covers build artefacts that are not release assets.
    """
    sums = evidence.get(CHECKSUMS_NAME)
    if sums is None:
        return
    listed = parse_checksums(sums.decode("utf-8", errors="replace"))
    mismatches = [
        f"{name}: SHA256SUMS says {listed[name]}, file is {hashlib.sha256(data).hexdigest()}"
        for name, data in sorted(evidence.items())
        if name in listed and listed[name] != hashlib.sha256(data).hexdigest()
    ]
    if mismatches:
        raise EvidenceIntegrityError("evidence does not match SHA256SUMS: " + "; ".join(mismatches))
