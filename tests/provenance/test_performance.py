"""CPU cost of one verification of the real container vectors (target: < 150 ms each)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hotfix_operator.provenance import read_oci_layout, verify_provenance
from tests.provenance.container_vectors import VECTORS, Vector, policy_for, request_for

RUNS = 50
BUDGET_SECONDS = 0.150


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_cpu_time_per_verification(
    vectors: Path, production_root: str, vector: Vector, record_property: Callable[[str, object], None]
) -> None:
    material = read_oci_layout(vectors / "slsa-github-generator" / vector.name / "oci-layout")
    request = request_for(vector)
    policy = policy_for(vector, production_root)
    assert verify_provenance(material, request, policy).ok

    started = time.process_time()
    for _ in range(RUNS):
        verify_provenance(material, request, policy)
    per_verification = (time.process_time() - started) / RUNS

    record_property("cpu_ms_per_verification", round(per_verification * 1000, 2))
    print(f"\n{vector.name}: {per_verification * 1000:.2f} ms CPU per verification over {RUNS} runs")
    assert per_verification < BUDGET_SECONDS
