"""Pure arithmetic of the scale benchmarks: which kind of request a verb is, percentiles, and how a figure grows
with the work (the slope per added unit, and whether it grows faster than the work)."""

from __future__ import annotations

import math
from collections.abc import Sequence

READ_VERBS = frozenset({"get", "list"})
WATCH_VERBS = frozenset({"watch"})


def request_kind(verb: str) -> str:
    """An audit event's verb as read, watch or write (create, update, patch, delete, deletecollection)."""
    if verb in READ_VERBS:
        return "read"
    return "watch" if verb in WATCH_VERBS else "write"


def percentile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100) of a non-empty sample, as common.summarise takes it."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x: what one more unit of work adds."""
    if len(points) < 2:
        raise ValueError("a slope needs two points")
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        raise ValueError("every point has the same x")
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def growth_exponent(points: Sequence[tuple[float, float]]) -> float | None:
    """b in y ~ x**b between the smallest and the largest x (1: linear, < 1: sublinear, > 1: super-linear);
    None when a y is not positive (nothing to compare)."""
    (x0, y0), (x1, y1) = min(points), max(points)
    if y0 <= 0 or y1 <= 0 or x0 <= 0 or x1 == x0:
        return None
    return math.log(y1 / y0) / math.log(x1 / x0)


def growth(points: Sequence[tuple[float, float]]) -> dict[str, float | None]:
    """How a total grows with the work: its slope per added unit and its exponent."""
    return {"slopePerUnit": slope(points), "exponent": growth_exponent(points)}
