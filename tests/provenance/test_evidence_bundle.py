"""The evidence bundle next to a release: SHA256SUMS, a safely read tarball, the same provenance."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from typing import Any

import pytest

from hotfix_operator.provenance import (
    EvidenceFiles,
    EvidenceLimits,
    ProvenanceMaterial,
    ProvenancePolicy,
    Reason,
    Rejected,
    ReleaseRequest,
    verify_provenance,
)
from hotfix_operator.provenance.evidence_bundle import inspect_archive
from tests.provenance.private_sigstore import Signer, public_pem, sha256_hex, slsa_v02

IMAGE = "sha256:" + sha256_hex(b"evidence image")
COMMIT = "a8b1963f0a9d5d8c6a8b7c0e5f2d1e3c4b5a6978"
BUILDER = "https://github.com/acme/ci/.github/workflows/build.yml@refs/tags/v1.0.0"
SIGNER = Signer()
STATEMENT = slsa_v02(IMAGE, commit=COMMIT)
ATTESTATION = SIGNER.attestation_layer(STATEMENT)
POLICY = ProvenancePolicy.model_validate(
    {
        "trustedKeys": [{"name": "ci", "publicKey": public_pem(SIGNER.key)}],
        "requireTransparencyLog": False,
        "allowedBuilders": [BUILDER],
        "allowedSourceRepositories": ["github.com/acme/checkout"],
    }
)
REQUEST = ReleaseRequest(image=IMAGE, commit_sha=COMMIT, source_repository="github.com/acme/checkout")

TarEntry = Callable[[tarfile.TarFile], None]


def regular(name: str, data: bytes) -> TarEntry:
    def add(archive: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))

    return add


def special(name: str, kind: bytes, target: str = "") -> TarEntry:
    def add(archive: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = target
        archive.addfile(info)

    return add


def tarball(*entries: TarEntry) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for entry in entries:
            entry(archive)
    return gzip.compress(raw.getvalue())


GOOD_ARCHIVE = tarball(
    special("evidence", tarfile.DIRTYPE),
    regular("evidence/release-gates.json", b'{"release:ready": "pass"}'),
    regular("./evidence/junit.xml", b"<testsuite tests='12' failures='0'/>"),
)


def sums(files: dict[str, bytes]) -> bytes:
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in files.items()).encode()


def bundle(provenance: bytes = STATEMENT, archive: bytes = GOOD_ARCHIVE, **extra: bytes) -> dict[str, bytes]:
    files = {"evidence.tar.gz": archive, "provenance.json": provenance, **extra}
    return {**files, "SHA256SUMS": sums(files)}


def verify(files: dict[str, bytes], **policy_changes: Any) -> Any:
    material = ProvenanceMaterial(image_digest=IMAGE, attestation_layers=(ATTESTATION,), evidence=EvidenceFiles(files))
    policy = POLICY.model_copy(update=policy_changes) if policy_changes else POLICY
    return verify_provenance(material, REQUEST, policy)


@pytest.mark.parametrize(
    "provenance",
    [
        STATEMENT,
        json.dumps(json.loads(STATEMENT), indent=2).encode(),
        json.dumps(json.loads(STATEMENT)["predicate"]).encode(),
        ATTESTATION.blob,
    ],
    ids=["statement", "reformatted-statement", "predicate", "dsse-envelope"],
)
def test_evidence_bundle_verifies(provenance: bytes) -> None:
    result = verify(bundle(provenance))
    assert result.ok, result.message
    evidence = result.summary.evidence
    assert evidence.archive_members == 2
    assert set(evidence.file_digests) == {"evidence.tar.gz", "provenance.json"}


@pytest.mark.parametrize(
    ("files", "reason", "fragment"),
    [
        ({**bundle(), "provenance.json": STATEMENT + b" "}, Reason.EVIDENCE_MISMATCH, "provenance.json' hashes to"),
        ({**bundle(), "notes.txt": b"unlisted"}, Reason.EVIDENCE_MISMATCH, "not listed in SHA256SUMS"),
        (
            {k: v for k, v in bundle(extra=b"x").items() if k != "extra"},
            Reason.EVIDENCE_MISMATCH,
            "extra, missing from the bundle",
        ),
        ({k: v for k, v in bundle().items() if k != "SHA256SUMS"}, Reason.EVIDENCE_MISMATCH, "no SHA256SUMS"),
        ({**bundle(), "SHA256SUMS": bundle()["SHA256SUMS"] * 2}, Reason.EVIDENCE_MISMATCH, "twice"),
        ({**bundle(), "SHA256SUMS": b"not a checksum line\n"}, Reason.MALFORMED_INPUT, "line 1"),
        (bundle(slsa_v02(IMAGE, commit="0" * 40)), Reason.EVIDENCE_MISMATCH, "not the verified provenance"),
        (
            bundle(b'{"payloadType": "x", "payload": "e30=", "signatures": []}'),
            Reason.EVIDENCE_MISMATCH,
            "envelope payload differs",
        ),
        (bundle(b"{not json"), Reason.MALFORMED_INPUT, "provenance.json is not valid JSON"),
        (bundle(archive=b"plain bytes"), Reason.MALFORMED_INPUT, "not a readable tar.gz"),
    ],
    ids=[
        "hash-mismatch",
        "unlisted-file",
        "listed-but-missing",
        "no-sums",
        "listed-twice",
        "malformed-sums",
        "other-provenance",
        "other-envelope",
        "provenance-not-json",
        "not-gzip",
    ],
)
def test_evidence_bundle_is_refused(files: dict[str, bytes], reason: Reason, fragment: str) -> None:
    result = verify(files)
    assert (result.ok, result.reason) == (False, reason), result.message
    assert fragment in result.message


def test_evidence_is_required_when_the_policy_says_so() -> None:
    material = ProvenanceMaterial(image_digest=IMAGE, attestation_layers=(ATTESTATION,))
    result = verify_provenance(material, REQUEST, POLICY.model_copy(update={"require_evidence": True}))
    assert (result.ok, result.reason) == (False, Reason.EVIDENCE_MISMATCH)


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        (regular("../outside.txt", b"x"), "escapes the archive root"),
        (regular("evidence/../../outside.txt", b"x"), "escapes the archive root"),
        (regular("/etc/cron.d/evil", b"x"), "escapes the archive root"),
        (special("evidence/link", tarfile.SYMTYPE, "/etc/passwd"), "link or special file"),
        (special("evidence/hard", tarfile.LNKTYPE, "evidence/release-gates.json"), "link or special file"),
        (special("evidence/dev", tarfile.CHRTYPE), "link or special file"),
        (special("evidence/fifo", tarfile.FIFOTYPE), "link or special file"),
        (regular("evidence/junit.xml", b"again"), "twice"),
        (regular("evidence\\..\\x", b"x"), "forbidden character"),
    ],
)
def test_unsafe_archives_are_refused(entry: TarEntry, fragment: str) -> None:
    archive = tarball(regular("evidence/junit.xml", b"<ok/>"), entry)
    result = verify(bundle(archive=archive))
    assert (result.ok, result.reason) == (False, Reason.MALFORMED_INPUT), result.message
    assert fragment in result.message


def test_decompression_bomb_stops_at_the_limit() -> None:
    bomb = tarball(regular("evidence/zeros.bin", bytes(8 * 1024 * 1024)))
    assert len(bomb) < 64 * 1024
    with pytest.raises(Rejected, match="more than the allowed size") as caught:
        inspect_archive(bomb, EvidenceLimits(unpacked_bytes=1024 * 1024))
    assert caught.value.reason == Reason.MALFORMED_INPUT


def test_member_count_is_limited() -> None:
    many = tarball(*(regular(f"evidence/{index}.txt", b"x") for index in range(20)))
    with pytest.raises(Rejected, match="more than 10 members"):
        inspect_archive(many, EvidenceLimits(members=10))
    assert inspect_archive(many, EvidenceLimits()) == (20, 20)


def test_oversized_evidence_file_is_refused() -> None:
    from hotfix_operator.provenance.evidence_bundle import verify_evidence

    with pytest.raises(Rejected, match="larger than 10 bytes"):
        verify_evidence(EvidenceFiles(bundle()), [], EvidenceLimits(file_bytes=10))
