"""Integrity of the evidence files a hotfix release carries (pure functions)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from ..formats import Sha256SumsError, parse_sha256sums, sha256_digest
from .errors import EvidenceIntegrityError

CHECKSUMS_NAME = "SHA256SUMS"


def evidence_digests(evidence: Mapping[str, bytes]) -> dict[str, str]:
    return {name: sha256_digest(data) for name, data in sorted(evidence.items())}


def parse_checksums(text: str) -> dict[str, str]:
    """SHA256SUMS as {release asset name: hex digest}, read under formats.parse_sha256sums' rule.

    Release assets have no directories, so a listed path (`dist/evidence.tar.gz`) vouches for the
    asset of its base name. Raises EvidenceIntegrityError for a list that breaks the rule, and for
    two different digests under one asset name: there is no telling which one the asset must match.
    """
    try:
        listed = parse_sha256sums(text)
    except Sha256SumsError as error:
        raise EvidenceIntegrityError(f"evidence {CHECKSUMS_NAME} {error}") from None
    by_asset: dict[str, str] = {}
    for path, digest in listed.items():
        name = path.rsplit("/", 1)[-1]
        if by_asset.setdefault(name, digest) != digest:
            raise EvidenceIntegrityError(f"evidence {CHECKSUMS_NAME} lists different digests for {name!r}")
    return by_asset


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
