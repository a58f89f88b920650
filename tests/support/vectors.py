"""Where the real-world provenance vectors live: tests/data/vectors (origins and licences in its README)."""

from __future__ import annotations

from pathlib import Path

VECTORS = Path(__file__).resolve().parents[1] / "data" / "vectors"
