"""RFC 9162 audit paths (provenance/inclusion.py) against trees built here, every leaf of every size up to 9."""

from __future__ import annotations

import hashlib

import pytest

from hotfix_operator.provenance.inclusion import root_from_audit_path


def leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def tree_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1: split at the largest power of two below the size."""
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + tree_root(leaves[:split]) + tree_root(leaves[split:])).digest()


def audit_path(index: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < split:
        return [*audit_path(index, leaves[:split]), tree_root(leaves[split:])]
    return [*audit_path(index - split, leaves[split:]), tree_root(leaves[:split])]


@pytest.mark.parametrize("size", range(1, 10))
def test_every_leaf_leads_to_the_root(size: int) -> None:
    leaves = [leaf(bytes([n])) for n in range(size)]
    for index in range(size):
        path = tuple(audit_path(index, leaves))
        assert root_from_audit_path(index, size, leaves[index], path) == tree_root(leaves)


def test_wrong_index_size_or_path_does_not_lead_to_the_root() -> None:
    leaves = [leaf(bytes([n])) for n in range(7)]
    root, path = tree_root(leaves), tuple(audit_path(3, leaves))
    assert root_from_audit_path(4, 7, leaves[3], path) != root
    assert root_from_audit_path(3, 4, leaves[3], path) is None  # a 4-leaf tree has 2 levels, not 3
    assert root_from_audit_path(3, 7, leaves[3], path[:-1]) != root
    assert root_from_audit_path(3, 7, leaves[3], (*path, root)) is None
    assert root_from_audit_path(7, 7, leaves[3], path) is None
