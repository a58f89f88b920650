"""The release evidence bundle: evidence.tar.gz, provenance.json and SHA256SUMS.

Rules: SHA256SUMS (the `sha256sum` format) lists every other file of the bundle and each must
hash to its line; a file it does not list is refused, as is a listed file that is missing.
evidence.tar.gz is read in memory only, never extracted, and refused when any member could
escape a directory (absolute path, `..`), is a link or device, is duplicated, or when it
exceeds the size and member limits (a gzip bomb stops at the limit, not at the end).
provenance.json must be the verified provenance itself: the in-toto statement, its
predicate, or a DSSE envelope whose payload is byte-identical to the verified payload.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from ..formats import Sha256SumsError, Sha256SumsLineError, parse_sha256sums
from .encoding import decode_base64
from .inputs import EvidenceFiles
from .limits import (
    MAX_EVIDENCE_ARCHIVE_MEMBERS,
    MAX_EVIDENCE_ARCHIVE_UNPACKED_BYTES,
    MAX_EVIDENCE_FILE_BYTES,
    MAX_EVIDENCE_PATH_LENGTH,
)
from .reasons import Reason, Rejected
from .results import EvidenceSummary
from .strictjson import JsonValue, get_str, parse_json

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

SUMS_FILE = "SHA256SUMS"
ARCHIVE_FILE = "evidence.tar.gz"
PROVENANCE_FILE = "provenance.json"


@dataclass(frozen=True)
class EvidenceLimits:
    file_bytes: int = MAX_EVIDENCE_FILE_BYTES
    unpacked_bytes: int = MAX_EVIDENCE_ARCHIVE_UNPACKED_BYTES
    members: int = MAX_EVIDENCE_ARCHIVE_MEMBERS


@dataclass(frozen=True)
class VerifiedPayload:
    """A verified provenance statement, as bytes and as parsed JSON, for comparison."""

    payload: bytes
    statement: JsonValue
    predicate: JsonValue


def _read_sums(data: bytes) -> dict[str, str]:
    """The listed files and their hex digests, under the one SHA256SUMS rule (formats.parse_sha256sums)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(Reason.MALFORMED_INPUT, f"{SUMS_FILE} is not UTF-8") from None
    try:
        return parse_sha256sums(text)
    except Sha256SumsLineError as exc:
        raise Rejected(Reason.MALFORMED_INPUT, f"{SUMS_FILE} {exc}") from None
    except Sha256SumsError as exc:
        # Readable, but not matchable against the bundle: a file listed twice, or none at all.
        raise Rejected(Reason.EVIDENCE_MISMATCH, f"{SUMS_FILE} {exc}") from None


class _BoundedReader(io.RawIOBase):
    """Decompresses lazily and refuses to produce more than `limit` bytes."""

    def __init__(self, source: gzip.GzipFile, limit: int) -> None:
        self._source = source
        self._remaining = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        chunk = self._source.read(min(len(view), self._remaining + 1))
        if len(chunk) > self._remaining:
            raise Rejected(Reason.MALFORMED_INPUT, f"{ARCHIVE_FILE} unpacks to more than the allowed size")
        self._remaining -= len(chunk)
        view[: len(chunk)] = chunk
        return len(chunk)


def _safe_member_name(name: str) -> str:
    if len(name) > MAX_EVIDENCE_PATH_LENGTH:
        raise Rejected(Reason.MALFORMED_INPUT, f"{ARCHIVE_FILE} member name is too long")
    if "\\" in name or "\x00" in name:
        raise Rejected(Reason.MALFORMED_INPUT, f"{ARCHIVE_FILE} member {name!r} has a forbidden character")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise Rejected(Reason.MALFORMED_INPUT, f"{ARCHIVE_FILE} member {name!r} escapes the archive root")
    normalized = str(path)
    return normalized.removeprefix("./")


def inspect_archive(data: bytes, limits: EvidenceLimits) -> tuple[int, int]:
    """Walk the archive without extracting it; returns (regular files, unpacked bytes)."""
    seen: set[str] = set()
    files = 0
    total = 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as compressed:
            bounded = io.BufferedReader(_BoundedReader(compressed, limits.unpacked_bytes))
            with tarfile.open(fileobj=bounded, mode="r|") as archive:
                for count, member in enumerate(archive, start=1):
                    if count > limits.members:
                        raise Rejected(Reason.MALFORMED_INPUT, f"{ARCHIVE_FILE} has more than {limits.members} members")
                    name = _safe_member_name(member.name)
                    if name in seen:
                        raise Rejected(Reason.MALFORMED_INPUT, f"{ARCHIVE_FILE} holds {name!r} twice")
                    seen.add(name)
                    if member.isdir():
                        continue
                    if not member.isreg():
                        raise Rejected(
                            Reason.MALFORMED_INPUT,
                            f"{ARCHIVE_FILE} member {name!r} is a link or special file; "
                            "only files and directories are allowed",
                        )
                    total += member.size
                    if total > limits.unpacked_bytes:
                        raise Rejected(Reason.MALFORMED_INPUT, f"{ARCHIVE_FILE} unpacks to more than the allowed size")
                    files += 1
    except Rejected:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise Rejected(Reason.MALFORMED_INPUT, f"{ARCHIVE_FILE} is not a readable tar.gz: {exc}") from None
    return files, total


def _require_same_provenance(document: bytes, verified: list[VerifiedPayload]) -> None:
    value = parse_json(document, what=PROVENANCE_FILE)
    if isinstance(value, dict) and "payloadType" in value and "payload" in value:
        # A copy of the envelope: only its payload matters here, the signature was checked
        # on the copy that came from the registry.
        payload = decode_base64(get_str(value, "payload", PROVENANCE_FILE), what=f"{PROVENANCE_FILE} payload")
        if any(payload == item.payload for item in verified):
            return
        raise Rejected(
            Reason.EVIDENCE_MISMATCH, f"{PROVENANCE_FILE} envelope payload differs from the verified provenance"
        )
    if any(same_json(value, item.statement) or same_json(value, item.predicate) for item in verified):
        return
    raise Rejected(
        Reason.EVIDENCE_MISMATCH,
        f"{PROVENANCE_FILE} is not the verified provenance (neither its statement, predicate nor envelope)",
    )


def same_json(left: JsonValue, right: JsonValue) -> bool:
    """JSON equality without Python's 1 == 1.0 == True conflation."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same_json(left[key], right[key]) for key in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(same_json(a, b) for a, b in zip(left, right, strict=True))
    return left == right


def verify_evidence(
    evidence: EvidenceFiles, verified: list[VerifiedPayload], limits: EvidenceLimits | None = None
) -> EvidenceSummary:
    limits = limits or EvidenceLimits()
    files: Mapping[str, bytes] = evidence.files
    for name, data in files.items():
        if len(data) > limits.file_bytes:
            raise Rejected(Reason.MALFORMED_INPUT, f"evidence file {name!r} is larger than {limits.file_bytes} bytes")
    for required in (SUMS_FILE, PROVENANCE_FILE, ARCHIVE_FILE):
        if required not in files:
            raise Rejected(Reason.EVIDENCE_MISMATCH, f"evidence bundle has no {required}")
    listed = _read_sums(files[SUMS_FILE])
    digests: dict[str, str] = {}
    for name, data in sorted(files.items()):
        if name == SUMS_FILE:
            continue
        if name not in listed:
            raise Rejected(Reason.EVIDENCE_MISMATCH, f"evidence file {name!r} is not listed in {SUMS_FILE}")
        actual = hashlib.sha256(data).hexdigest()
        if actual != listed[name]:
            raise Rejected(
                Reason.EVIDENCE_MISMATCH,
                f"evidence file {name!r} hashes to {actual[:12]}… ≠ {SUMS_FILE} {listed[name][:12]}…",
            )
        digests[name] = f"sha256:{actual}"
    missing = sorted(set(listed) - set(files))
    if missing:
        raise Rejected(Reason.EVIDENCE_MISMATCH, f"{SUMS_FILE} lists {', '.join(missing)}, missing from the bundle")
    members, unpacked = inspect_archive(files[ARCHIVE_FILE], limits)
    _require_same_provenance(files[PROVENANCE_FILE], verified)
    return EvidenceSummary(file_digests=digests, archive_members=members, archive_bytes=unpacked)
