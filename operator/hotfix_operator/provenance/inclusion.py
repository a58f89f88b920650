"""Rekor v1 inclusion proofs: an RFC 6962 audit path up to a checkpoint the pinned log key signed.

Needed where we verify a bundle's log entry ourselves (intoto entries, which sigstore-python
refuses): a v0.2+ bundle must prove inclusion this way, and a v0.1 bundle may carry a proof next
to its SET. The checkpoint is a signed note (golang.org/x/mod/sumdb/note): its body names the
tree size and root hash the audit path must reach, and its signature line carries the first four
bytes of the log id as a key hint followed by the log key's signature over the body.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .encoding import decode_base64
from .limits import MAX_ANNOTATION_BYTES
from .reasons import Reason, Rejected
from .strictjson import JsonObject, as_str, get_int, get_list, get_object, get_str
from .trustroot import LogInstance

_MAX_PROOF_HASHES = 64  # a tree of 2**64 leaves needs no more


@dataclass(frozen=True)
class InclusionProof:
    log_index: int
    tree_size: int
    root_hash: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str


def parse_inclusion_proof(proof: JsonObject, what: str) -> InclusionProof:
    hashes = get_list(proof, "hashes", what)
    if len(hashes) > _MAX_PROOF_HASHES:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} has {len(hashes)} hashes")
    checkpoint = get_str(get_object(proof, "checkpoint", what), "envelope", f"{what}.checkpoint")
    if len(checkpoint) > MAX_ANNOTATION_BYTES:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} checkpoint is too large")
    return InclusionProof(
        log_index=get_int(proof, "logIndex", what, allow_string=True),
        tree_size=get_int(proof, "treeSize", what, allow_string=True),
        root_hash=decode_base64(get_str(proof, "rootHash", what), what=f"{what} root hash"),
        hashes=tuple(decode_base64(as_str(item, f"{what} hash"), what=f"{what} hash") for item in hashes),
        checkpoint=checkpoint,
    )


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_audit_path(index: int, size: int, leaf_hash: bytes, path: tuple[bytes, ...]) -> bytes | None:
    """RFC 9162 §2.1.3.2: the root the audit path leads to, or None if the path cannot be right."""
    if index < 0 or index >= size:
        return None
    fn, sn, root = index, size - 1, leaf_hash
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            root = _node(sibling, root)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            root = _node(root, sibling)
        fn, sn = fn >> 1, sn >> 1
    return root if sn == 0 else None


def verify_inclusion_proof(body: bytes, proof: InclusionProof, log: LogInstance, what: str) -> None:
    """The canonicalized body is a leaf of the tree whose root the pinned log key signed."""
    invalid = Reason.TLOG_INCLUSION_PROOF_INVALID
    leaf = hashlib.sha256(b"\x00" + body).digest()
    root = root_from_audit_path(proof.log_index, proof.tree_size, leaf, proof.hashes)
    if root is None or root != proof.root_hash:
        raise Rejected(invalid, f"{what} inclusion proof does not lead from the entry to root hash of the proof")
    size, signed_root = _verified_checkpoint(proof.checkpoint, log, what)
    if (size, signed_root) != (proof.tree_size, proof.root_hash):
        raise Rejected(invalid, f"{what} checkpoint names tree size {size}, not the proof's {proof.tree_size}")


def _verified_checkpoint(note: str, log: LogInstance, what: str) -> tuple[int, bytes]:
    invalid = Reason.TLOG_INCLUSION_PROOF_INVALID
    text, separator, signatures = note.partition("\n\n")
    if not separator:
        raise Rejected(invalid, f"{what} checkpoint is not a signed note")
    body = (text + "\n").encode()
    lines = text.split("\n")
    if len(lines) < 3 or not lines[1].isdigit():
        raise Rejected(invalid, f"{what} checkpoint body is not origin, size, root hash")
    for line in signatures.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "\u2014":
            continue
        signed = decode_base64(parts[2], what=f"{what} checkpoint signature")
        if signed[:4] == log.log_id[:4] and log.key.verifies(signed[4:], body):
            return int(lines[1]), decode_base64(lines[2], what=f"{what} checkpoint root hash")
    name = log.base_url or log.log_id.hex()
    raise Rejected(invalid, f"{what} checkpoint is not signed by the pinned key of log {name}")
