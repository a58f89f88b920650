"""Fixtures for the provenance core: the shared real-world vectors, pinned roots, no network."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from tests.support.vectors import VECTORS


class NetworkUsed(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verification must be offline: any socket use fails the test that caused it."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise NetworkUsed(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="session")
def vectors() -> Path:
    if not (VECTORS / "README.md").is_file():
        pytest.fail(
            f"provenance vectors not found at {VECTORS} (tests/data/vectors in the repository)"
        )
    return VECTORS


@pytest.fixture(scope="session")
def production_root(vectors: Path) -> str:
    return (vectors / "trust" / "sigstore-production-trusted_root.json").read_text()


@pytest.fixture(scope="session")
def staging_root(vectors: Path) -> str:
    return (vectors / "trust" / "sigstore-staging-trusted_root.json").read_text()
