"""Many hotfixes at once: 1, 10, 50 and 200 releases across as many namespaces, filed together and approved
together (one instant pre-promotion check, zero bake and scale-down; kwok pods), on one operator.

    make bench-scale-concurrency        (SCALE_SIZES=1,10,50,200 and SCALE_REFERENCE_RUNS=5 by default)

Per release, from bob's approval (the patch's return) to Succeeded (seen on a cluster-wide watch):
  approval -> Succeeded      the whole cutover as a user waits for it
  operator-added             that minus what the control plane takes: green's rollout (green Deployment
                             created -> available) and the fold's (image set on the Deployment -> rolled out),
                             both timed on a cluster-wide Deployment watch
The reference is a single release, run SCALE_REFERENCE_RUNS times one after another in the same run (their
median); a batch's p95 is divided by it. Memory: the operator's peak VmRSS sampled every 0.2 s while a batch
runs (and VmHWM since its start). CPU: utime+stime from /proc/<pid>/stat, from filing to the last release
finished, divided by the releases. API requests: every request the operator's service account made in that
window, from the kube-apiserver's audit log (reads get/list, watches, writes create/update/patch/delete).
SCALE_CONTROL_PLANE_QPS=<n> runs the controller-manager and the scheduler with client rate limits of n (burst
2n) instead of their stock 20 and 50, and writes bench/results/scale-concurrency-qps<n>.json instead.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from common import report
from localcluster.signing import LocalSigner
from scale_cluster import (
    CONTROL_PLANE_QPS,
    AuditedCluster,
    AuditTally,
    Operator,
    Sampler,
    Source,
    control_plane_limits,
    counts,
    install_crds,
    operator_source,
    running,
)
from scale_fleet import (
    FINISHED,
    Watching,
    approve_all,
    file_all,
    install_policy,
    prepare_namespaces,
    release_manifest,
    signed_image,
    wait_until,
)
from scale_stats import growth, percentile

SIZES = [int(n) for n in os.environ.get("SCALE_SIZES", "1,10,50,200").split(",")]
REFERENCE_RUNS = int(os.environ.get("SCALE_REFERENCE_RUNS", "5"))
REPLICAS = int(os.environ.get("SCALE_REPLICAS", "1"))
LABEL = "scale"


def stats(samples: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(samples), "p95": percentile(samples, 95), "max": max(samples)}


class Batches:
    """Runs batches of releases on one operator, each in fresh namespaces, and measures each batch."""

    def __init__(self, cluster: AuditedCluster, operator: Operator, watching: Watching, target: Any,
                 image: Any) -> None:
        self.cluster, self.operator, self.watching, self.target, self.image = cluster, operator, watching, target, image
        self.tally = AuditTally(cluster.audit_log)
        self.batch = 0

    def run(self, size: int) -> dict[str, Any]:
        self.batch += 1
        names = [f"scale-{self.batch}-{i}" for i in range(size)]
        prepare_namespaces(self.cluster, names, LABEL, REPLICAS)
        manifests = []
        for ns in names:
            self.target.script(f"{ns}/ok", (200, "ok"))
            pre = [{"name": "ok", "http": {"url": f"{self.target.base}/{ns}/ok?hash={{{{ greenPodHash }}}}"},
                    "intervalSeconds": 1}]
            manifests.append(release_manifest(self.image, ns, {"prePromotion": pre}))
        fleet, stats_ = self.watching.fleet, self.operator.stats
        time.sleep(1.0)  # the operator has seen the namespaces' Deployments and EndpointSlices come up
        self.tally.mark()
        cpu0, filed = stats_.cpu_seconds(), time.monotonic()
        with Sampler(stats_) as sampler:
            file_all(self.cluster, manifests)
            wait_until(f"{size} releases awaiting approval", lambda: fleet.count(
                names, frozenset({"AwaitingApproval"})) == size, 120 + size, self.operator.check_alive)
            approved = approve_all(self.cluster, names)
            wait_until(f"{size} releases finished", lambda: fleet.count(names, FINISHED) == size, 180 + 3 * size,
                       self.operator.check_alive)
            done = time.monotonic()
            time.sleep(1.0)  # the last reconciles after Succeeded (daemons returning) are in the window
        cpu = stats_.cpu_seconds() - cpu0
        requests = counts(self.tally.requests())
        failed = [ns for ns in names if fleet.at(ns, "Succeeded") is None]
        if failed:
            raise SystemExit(f"releases that did not succeed: {failed[:5]}; phases {fleet.seen[failed[0]]}")
        # the Deployment watch is a stream of its own: its last rollouts may arrive after the last Succeeded
        wait_until("every rollout seen on the Deployment watch", lambda: fleet.count(
            names, frozenset({"fold rolled out"})) == size, 30, self.operator.check_alive)
        return self.measure(names, approved, size, cpu, requests, sampler.peak_mb, filed, done)

    def measure(self, names: list[str], approved: dict[str, float], size: int, cpu: float,
                requests: dict[str, Any], peak: float, filed: float, done: float) -> dict[str, Any]:
        fleet = self.watching.fleet
        total, added = [], []
        for ns in names:
            seen = fleet.seen[ns]
            latency = seen["Succeeded"] - approved[ns]
            control_plane = (seen["green available"] - seen["green created"]) + \
                (seen["fold rolled out"] - seen["fold started"])
            total.append(latency)
            added.append(latency - control_plane)
        return {"hotfixes": size, "approvalToSucceededSeconds": total, "operatorAddedSeconds": added,
                "wallSeconds": done - filed, "approvalsToLastSucceededSeconds": done - min(approved.values()),
                "peakRssMB": peak, "vmHwmMB": self.operator.stats.memory_mb()["VmHWM"], "cpuSeconds": cpu,
                "requests": requests}


def summarise_batch(batch: dict[str, Any], reference: dict[str, float]) -> dict[str, Any]:
    n = batch["hotfixes"]
    total, added = stats(batch["approvalToSucceededSeconds"]), stats(batch["operatorAddedSeconds"])
    req = batch["requests"]
    return {
        "hotfixes": n, "approvalToSucceededSeconds": total, "operatorAddedSeconds": added,
        "p95RatioVsSingle": total["p95"] / reference["approvalToSucceededSeconds"],
        "operatorAddedP95RatioVsSingle": added["p95"] / reference["operatorAddedSeconds"],
        "wallSeconds": batch["wallSeconds"],
        "approvalsToLastSucceededSeconds": batch["approvalsToLastSucceededSeconds"],
        "peakRssMB": batch["peakRssMB"], "vmHwmSinceStartMB": batch["vmHwmMB"],
        "cpuSeconds": batch["cpuSeconds"], "cpuSecondsPerHotfix": batch["cpuSeconds"] / n,
        "readsPerHotfix": req["reads"] / n, "writesPerHotfix": req["writes"] / n,
        "watchesPerHotfix": req["watches"] / n,
        "requestsTotal": {k: req[k] for k in ("reads", "writes", "watches")},
        "writesByVerbResource": req["writesByVerbResource"], "readsByVerbResource": req["readsByVerbResource"],
        "samplesSeconds": {"approvalToSucceeded": batch["approvalToSucceededSeconds"],
                           "operatorAdded": batch["operatorAddedSeconds"]}}


def growth_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def points(key: Any) -> list[tuple[float, float]]:
        return [(r["hotfixes"], key(r)) for r in rows]

    return {"unit": "per added concurrent hotfix",
            "approvalToSucceededP95Seconds": growth(points(lambda r: r["approvalToSucceededSeconds"]["p95"])),
            "operatorAddedP95Seconds": growth(points(lambda r: r["operatorAddedSeconds"]["p95"])),
            "peakRssMB": growth(points(lambda r: r["peakRssMB"])),
            "cpuSeconds": growth(points(lambda r: r["cpuSeconds"])),
            "apiWrites": growth(points(lambda r: r["requestsTotal"]["writes"])),
            "apiReads": growth(points(lambda r: r["requestsTotal"]["reads"]))}


def main() -> None:
    from tests.support.check_targets import serving

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, AuditedCluster(Path(tmp), nodes=4) as cluster, serving() as target:
        source = operator_source(cluster.workdir)
        install_crds(cluster, source)
        signer = LocalSigner.load_or_create(cluster.workdir / "signing" / "release.key")
        install_policy(cluster, signer, LABEL, {"allowedHosts": [f"127.0.0.1:{target.port}"]})
        image = signed_image(cluster, signer, "scale")
        with running(cluster, source) as operator, Watching(cluster) as watching:
            wait_until("the operator's health endpoint", operator.healthy, 60, operator.check_alive)
            batches = Batches(cluster, operator, watching, target, image)
            singles = [batches.run(1) for _ in range(REFERENCE_RUNS)]
            results = [batches.run(n) for n in SIZES if n > 1]
    single = merge_singles(singles)
    reference = {key: statistics.median(single[key]) for key in ("approvalToSucceededSeconds", "operatorAddedSeconds")}
    rows = [summarise_batch(b, reference) for b in [single, *results]]
    load = {"before": list(load_before), "after": list(os.getloadavg())}
    print_and_write(rows, reference, load, source)


def merge_singles(singles: list[dict[str, Any]]) -> dict[str, Any]:
    """The single-release runs as one row: their latencies pooled; CPU and requests averaged per release."""
    n = len(singles)
    merged: dict[str, Any] = {"hotfixes": 1, "runs": n}
    for key in ("approvalToSucceededSeconds", "operatorAddedSeconds"):
        merged[key] = [s for run in singles for s in run[key]]
    for key in ("wallSeconds", "approvalsToLastSucceededSeconds", "cpuSeconds"):
        merged[key] = statistics.median(run[key] for run in singles)
    merged["peakRssMB"] = max(run["peakRssMB"] for run in singles)
    merged["vmHwmMB"] = max(run["vmHwmMB"] for run in singles)
    req = {k: sum(run["requests"][k] for run in singles) / n for k in ("reads", "writes", "watches")}
    merged["requests"] = {**req, "writesByVerbResource": singles[-1]["requests"]["writesByVerbResource"],
                          "readsByVerbResource": singles[-1]["requests"]["readsByVerbResource"]}
    return merged


def print_and_write(rows: list[dict[str, Any]], reference: dict[str, float], load: dict[str, Any],
                    source: Source) -> None:
    table = [(str(r["hotfixes"]), f"{r['approvalToSucceededSeconds']['p50']:.2f}",
              f"{r['approvalToSucceededSeconds']['p95']:.2f}", f"{r['approvalToSucceededSeconds']['max']:.2f}",
              f"{r['operatorAddedSeconds']['p95']:.2f}", f"{r['p95RatioVsSingle']:.2f}",
              f"{r['operatorAddedP95RatioVsSingle']:.2f}", f"{r['wallSeconds']:.1f}", f"{r['peakRssMB']:.0f}",
              f"{r['cpuSecondsPerHotfix']:.3f}", f"{r['readsPerHotfix']:.1f}", f"{r['writesPerHotfix']:.1f}",
              f"{r['watchesPerHotfix']:.2f}") for r in rows]
    header = ("hotfixes", "p50 s", "p95 s", "max s", "op-added p95 s", "p95/single", "op-added p95/single",
              "wall s", "peak RSS MB", "CPU-s/hotfix", "reads/hf", "writes/hf", "watches/hf")
    results: dict[str, Any] = {"referenceSingleSeconds": reference, "sizes": rows, "loadAverage": load,
                               "replicasPerDeployment": REPLICAS, "referenceRuns": REFERENCE_RUNS,
                               "controlPlaneClientLimits": control_plane_limits(), "operator": source.describe()}
    if len(rows) > 1:
        results["growth"] = growth_of(rows)
    # a run with raised control-plane limits is kept beside the stock one, not over it
    name = "scale-concurrency" if CONTROL_PLANE_QPS is None else f"scale-concurrency-qps{float(CONTROL_PLANE_QPS):g}"
    report(name, "hotfixes at once on one operator (approval -> Succeeded; instant check, bake 0)",
           table, header, results, packages=("kopf", "kubernetes"))
    if len(rows) > 1:
        print_growth(results["growth"])
    print(f"  load average before {load['before']}, after {load['after']}")


def print_growth(found: dict[str, Any]) -> None:
    print(f"\n  growth ({found['unit']}): slope, and exponent b of y ~ n^b (1 linear, > 1 super-linear)")
    for key, value in found.items():
        if isinstance(value, dict):
            exponent = "n/a" if value["exponent"] is None else f"{value['exponent']:.2f}"
            print(f"    {key:34s} {value['slopePerUnit']:>10.4f}   b={exponent}")


if __name__ == "__main__":
    main()
