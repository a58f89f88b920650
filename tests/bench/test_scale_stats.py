"""The scale benchmarks' arithmetic (bench/scale_stats.py): request kinds, percentiles, growth."""

from __future__ import annotations

import pytest
from bench.scale_stats import growth, growth_exponent, percentile, request_kind, slope

pytestmark = pytest.mark.unit


def test_verbs_are_reads_watches_or_writes() -> None:
    assert [request_kind(v) for v in ("get", "list", "watch")] == ["read", "read", "watch"]
    assert {request_kind(v) for v in ("create", "update", "patch", "delete", "deletecollection")} == {"write"}


def test_percentile_is_nearest_rank_like_common_summarise() -> None:
    samples = [float(n) for n in range(1, 21)]  # 1..20
    assert percentile(samples, 50) == 11.0  # round(0.5 * 19) = 10 -> the 11th
    assert percentile(samples, 95) == 19.0  # round(0.95 * 19) = 18 -> the 19th
    assert percentile(samples, 100) == 20.0
    assert percentile([3.0], 95) == 3.0
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)


def test_slope_of_a_line_and_of_noisy_points() -> None:
    assert slope([(1, 5), (10, 50), (200, 1000)]) == pytest.approx(5.0)
    assert slope([(0, 1), (1, 2), (2, 5)]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="two points"):
        slope([(1, 1)])
    with pytest.raises(ValueError, match="same x"):
        slope([(2, 1), (2, 3)])


def test_growth_exponent_tells_linear_from_super_linear() -> None:
    assert growth_exponent([(1, 3), (200, 600)]) == pytest.approx(1.0)
    assert growth_exponent([(10, 1), (100, 100)]) == pytest.approx(2.0)  # quadratic
    assert growth_exponent([(100, 130), (5000, 140)]) == pytest.approx(0.019, abs=0.001)  # nearly flat
    assert growth_exponent([(100, 0), (5000, 0)]) is None  # nothing to compare: zero stays zero
    assert growth([(1, 2), (3, 6)]) == {"slopePerUnit": pytest.approx(2.0), "exponent": pytest.approx(1.0)}
