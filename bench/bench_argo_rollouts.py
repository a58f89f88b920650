"""Baseline: Argo Rollouts' blue-green promote -> active Service switched, on the same local control plane.

    make bench-argo-rollouts      (20 runs; HOTFIX_ARGO_RUNS to change)

The controller decides from its informer caches: on the promote patch's watch event its reconcile patches the
rollout's conditions, then the active Service's selector (its log at v1.8.5), two writes and no read. On this
2-core machine other work shows in the tail, so the 1/5/15-minute load averages are written beside the numbers.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from argo_rollouts import measure_promote_to_switch, version
from common import ms, report, summarise
from localcluster.cluster import LocalCluster

RUNS = int(os.environ.get("HOTFIX_ARGO_RUNS", "20"))


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(Path(tmp)) as cluster:
        durations = measure_promote_to_switch(cluster, RUNS)
    # the machine's other work shows in the tail: keep its 1/5/15-minute load averages beside the numbers
    load = {"before": list(load_before), "after": list(os.getloadavg())}
    summary = {**summarise(durations), "p95": p95(durations)}
    rows: list[tuple[str, ...]] = [(f"promote -> active Service on the new ReplicaSet (Argo Rollouts {version()})",
                                    ms(summary["median"]), ms(summary["p95"]), ms(summary["max"]))]
    stats = {**summary, "samplesSeconds": durations, "loadAverage": load}
    report("argo-rollouts", f"Argo Rollouts blue-green on the real local control plane ({RUNS} runs)", rows,
           ("measure", "p50", "p95", "max"), {"promoteToActiveSwitchSeconds": stats}, packages=("kubernetes",))


if __name__ == "__main__":
    main()
