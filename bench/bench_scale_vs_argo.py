"""Side by side with Argo Rollouts: the same blue-green switch of the quickstart's Deployment (3 replicas, kwok
pods), N times with each controller, on the same control plane in the same run, one controller at a time.

    make bench-scale-vs-argo        (SCALE_ARGO_RUNS=20, SCALE_ARGO_SPACING_SECONDS=1 by default)

Promotion -> Service switch:
  hotfix-operator   green Deployment available -> the active Service's selector on green's pod hash (no
                    checks: green being available is what promotes; cutover_timeline's watches)
  Argo Rollouts     the promote patch's return -> the active Service's selector on the new ReplicaSet's hash
                    (argo_rollouts.promote_to_switch: each run a fresh namespace and Rollout, one image update,
                    promoted once the rollout has been quiet for 0.5 s, runs spaced by
                    SCALE_ARGO_SPACING_SECONDS; v1.8.5 can lose an update that lands as the old ReplicaSet
                    finishes scaling down, argo-rollouts#4073)
Per cutover: each controller's CPU (utime+stime, /proc/<pid>/stat) from before its first run to after its last,
divided by the runs, and its peak VmRSS sampled every 0.2 s over the same window (and VmHWM). Our cutover is a
whole hotfix (provenance gate, approval, green, switch, fold into the Deployment, green removed); Argo's is
image update, preview, promotion, switch (its old ReplicaSet is scaled down 30 s later, inside the window
only for the runs that follow). Ours is also split: filing -> AwaitingApproval (the image and provenance
gates, which Argo Rollouts does not have) and approval -> Succeeded (the cutover itself).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import argo_rollouts
from common import report
from cutover_timeline import Timeline
from localcluster.signing import LocalSigner
from scale_cluster import AuditedCluster, ProcStats, Sampler, install_crds, operator_source, running
from scale_fleet import (
    FINISHED,
    Watching,
    api_as,
    approve_all,
    file_all,
    install_policy,
    prepare_namespaces,
    release_manifest,
    signed_image,
    wait_until,
)
from scale_stats import percentile

RUNS = int(os.environ.get("SCALE_ARGO_RUNS", "20"))
SPACING = float(os.environ.get("SCALE_ARGO_SPACING_SECONDS", "1"))
LABEL = "vs-argo"


def window(stats: ProcStats, runs: Any) -> dict[str, Any]:
    """Runs `runs()` (a list of seconds per switch) while measuring the process's CPU and peak RSS."""
    cpu0 = stats.cpu_seconds()
    with Sampler(stats) as sampler:
        samples = runs()
    cpu = stats.cpu_seconds() - cpu0
    return {"promotionToSwitchSeconds": summary(samples), "samplesSeconds": samples, "cpuSeconds": cpu,
            "cpuSecondsPerCutover": cpu / len(samples), "peakRssMB": sampler.peak_mb,
            "vmHwmMB": stats.memory_mb()["VmHWM"]}


def summary(samples: list[float]) -> dict[str, float]:
    return {"n": len(samples), "p50": statistics.median(samples), "p95": percentile(samples, 95),
            "max": max(samples)}


def ours(cluster: AuditedCluster, source: Any) -> dict[str, Any]:
    signer = LocalSigner.load_or_create(cluster.workdir / "signing" / "release.key")
    install_policy(cluster, signer, LABEL, None)
    image = signed_image(cluster, signer, "vs-argo")

    with running(cluster, source) as operator, Watching(cluster) as watching:
        wait_until("the operator's health endpoint", operator.healthy, 60, operator.check_alive)
        fleet = watching.fleet

        stats, split = operator.stats, {"filingToAwaitingApproval": 0.0, "approvalToSucceeded": 0.0}

        def runs() -> list[float]:
            samples = []
            for run in range(RUNS):
                ns = f"ours-{run}"
                prepare_namespaces(cluster, [ns], LABEL, argo_rollouts.REPLICAS)
                cpu_filed = stats.cpu_seconds()
                file_all(cluster, [release_manifest(image, ns, None)])
                wait_until(f"{ns} awaiting approval", lambda ns=ns: fleet.at(ns, "AwaitingApproval") is not None,
                           120, operator.check_alive)
                cpu_approved = stats.cpu_seconds()
                with Timeline(str(cluster.kubeconfig), ns) as timeline:
                    approve_all(cluster, [ns])
                    wait_until(f"{ns} finished", lambda ns=ns: fleet.count([ns], FINISHED) == 1, 180,
                               operator.check_alive)
                split["filingToAwaitingApproval"] += cpu_approved - cpu_filed
                split["approvalToSucceeded"] += stats.cpu_seconds() - cpu_approved
                if fleet.at(ns, "Succeeded") is None:
                    raise SystemExit(f"{ns} ended {fleet.seen[ns]}")
                samples.append(timeline.gap("green available", "active selector on green"))
                time.sleep(SPACING)
            return samples

        found = window(stats, runs)
        # where a hotfix's CPU goes: the gates before approval (image, provenance), and the cutover after it
        found["cpuSecondsPerCutoverByStage"] = {k: v / RUNS for k, v in split.items()}
        return found


def argo(cluster: AuditedCluster) -> dict[str, Any]:
    bin_dir = argo_rollouts.build()
    api = api_as(cluster)
    argo_rollouts.install_crds(cluster, api, bin_dir.parent / "crds")
    with argo_rollouts.controller(cluster, bin_dir / "rollouts-controller") as proc:
        time.sleep(2)  # its informers have synced

        def runs() -> list[float]:
            samples = []
            for run in range(RUNS):
                if proc.poll() is not None:
                    raise RuntimeError(f"rollouts-controller exited with {proc.returncode}")
                samples.append(argo_rollouts.promote_to_switch(api, f"argo-{run}"))
                time.sleep(SPACING)
            return samples

        return window(ProcStats(proc.pid), runs)


def main() -> None:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, AuditedCluster(Path(tmp)) as cluster:
        source = operator_source(cluster.workdir)
        install_crds(cluster, source)
        mine = ours(cluster, source)
        theirs = argo(cluster)
    load = {"before": list(load_before), "after": list(os.getloadavg())}
    ratios = {"promotionToSwitchP50Ratio": mine["promotionToSwitchSeconds"]["p50"] /
              theirs["promotionToSwitchSeconds"]["p50"],
              "promotionToSwitchP95Ratio": mine["promotionToSwitchSeconds"]["p95"] /
              theirs["promotionToSwitchSeconds"]["p95"],
              "peakRssRatio": mine["peakRssMB"] / theirs["peakRssMB"],
              "cpuSecondsPerCutoverRatio": mine["cpuSecondsPerCutover"] / theirs["cpuSecondsPerCutover"]}
    rows = [(name, *(f"{r['promotionToSwitchSeconds'][q] * 1000:.0f}" for q in ("p50", "p95", "max")),
             f"{r['peakRssMB']:.0f}", f"{r['cpuSecondsPerCutover']:.3f}")
            for name, r in (("hotfix-operator", mine), (f"Argo Rollouts {argo_rollouts.version()}", theirs))]
    by_stage = mine["cpuSecondsPerCutoverByStage"]
    rows.append(("  ours: CPU-s filing -> awaiting approval (gates)", "", "", "", "",
                 f"{by_stage['filingToAwaitingApproval']:.3f}"))
    rows.append(("  ours: CPU-s approval -> Succeeded (cutover)", "", "", "", "",
                 f"{by_stage['approvalToSucceeded']:.3f}"))
    rows.append(("ours / Argo", *(f"{ratios[k]:.2f}x" for k in ("promotionToSwitchP50Ratio",
                                                                  "promotionToSwitchP95Ratio")),
                 "", f"{ratios['peakRssRatio']:.2f}x", f"{ratios['cpuSecondsPerCutoverRatio']:.2f}x"))
    results = {"hotfixOperator": {**mine, "operator": source.describe()},
               "argoRollouts": {**theirs, "version": argo_rollouts.version()}, "oursOverArgo": ratios, "runs": RUNS,
               "spacingSeconds": SPACING, "replicas": argo_rollouts.REPLICAS, "loadAverage": load}
    report("scale-vs-argo", f"the same blue-green switch, {RUNS} times with each controller (promotion -> switch)",
           rows, ("controller", "p50 ms", "p95 ms", "max ms", "peak RSS MB", "CPU-s/cutover"), results,
           packages=("kopf", "kubernetes"))
    print(f"  load average before {load['before']}, after {load['after']}")


if __name__ == "__main__":
    main()
