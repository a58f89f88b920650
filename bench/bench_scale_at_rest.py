"""Years of records: 100, 1,000 and 5,000 completed HotfixReleases present, then the operator restarted.

    make bench-scale-at-rest        (SCALE_RECORDS=100,1000,5000, SCALE_IDLE_SECONDS=30 by default)

One release is run to Succeeded on the operator, which is then stopped; the completed releases are copies of
it (scale_records), spread over ten namespaces that each run the quickstart app. Sizes are cumulative: copies
are added with the operator stopped, then it is started again and measured:
  health endpoint         process start -> Kopf's /healthz answers 200
  ready                   process start -> a release filed the moment /healthz answers has its first status
                          (the operator has listed its watches and reconciles new work)
  records reconciled      process start -> the last request the operator made about a completed release
                          (kube-apiserver audit log); 0 when it makes none
  writes to completed     create/update/patch/delete of a completed release by the operator since its start
  GETs of completed       reads of one completed release by name since its start (each reconcile begins with one)
  idle CPU                utime+stime over SCALE_IDLE_SECONDS from ready, as a fraction of one core
  RSS                     VmRSS at the end of the idle window, and VmHWM (the peak since start)
"""

from __future__ import annotations

import datetime
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import report
from localcluster.signing import LocalSigner
from scale_cluster import AuditedCluster, AuditTally, Operator, Source, counts, install_crds, operator_source
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
from scale_records import Template, copy_records, read_release
from scale_stats import growth

SIZES = [int(n) for n in os.environ.get("SCALE_RECORDS", "100,1000,5000").split(",")]
IDLE_SECONDS = float(os.environ.get("SCALE_IDLE_SECONDS", "30"))
RECORD_NAMESPACES = [f"records-{i}" for i in range(10)]
LABEL = "rest"
UNDO_WINDOW_SECONDS = 3
WRITES = frozenset({"create", "update", "patch", "delete"})


def run_template(cluster: AuditedCluster, source: Source, image: Any) -> Template:
    """One release to Succeeded on the operator; its finished body is the template of every record."""
    with Watching(cluster) as watching:
        operator = Operator(cluster, source).start()
        try:
            wait_until("the operator's health endpoint", operator.healthy, 60, operator.check_alive)
            file_all(cluster, [release_manifest(image, "records-template", None)])
            wait_until("the template release awaiting approval", lambda: watching.fleet.at(
                "records-template", "AwaitingApproval") is not None, 120, operator.check_alive)
            approve_all(cluster, ["records-template"])
            wait_until("the template release finished", lambda: watching.fleet.count(
                ["records-template"], FINISHED) == 1, 180, operator.check_alive)
            # a record is old: its undo window (UNDO_WINDOW_SECONDS here) has closed, which the operator writes
            wait_until("the template's undo window closed", lambda: bool(read_release(
                cluster, "records-template", "hf")["status"].get("undoWindowClosed")), 120, operator.check_alive)
            # and its daemon's last write is done (an operator that labels a finished release writes once more)
            quiet(lambda: read_release(cluster, "records-template", "hf")["metadata"]["resourceVersion"], 3.0)
        finally:
            operator.stop()
    body = read_release(cluster, "records-template", "hf")
    if body["status"]["phase"] != "Succeeded":
        raise SystemExit(f"the template release ended {body['status']['phase']}")
    return Template(body)


def quiet(version: Callable[[], str], seconds: float, timeout: float = 60) -> None:
    """Returns once `version()` has not changed for `seconds`."""
    last, since, deadline = version(), time.monotonic(), time.monotonic() + timeout
    while time.monotonic() - since < seconds and time.monotonic() < deadline:
        time.sleep(0.2)
        now = version()
        if now != last:
            last, since = now, time.monotonic()


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Top-level status fields (and metadata annotations, finalizers) that differ: what a write changed."""
    diff = {f"status.{k}": {"before": before["status"].get(k), "after": after["status"].get(k)}
            for k in before["status"].keys() | after["status"].keys()
            if before["status"].get(k) != after["status"].get(k)}
    for key in ("annotations", "finalizers", "labels"):
        if before["metadata"].get(key) != after["metadata"].get(key):
            diff[f"metadata.{key}"] = {"before": before["metadata"].get(key), "after": after["metadata"].get(key)}
    return diff


def about_record(request: dict[str, Any], records: set[tuple[str, str]]) -> bool:
    ref = request.get("objectRef") or {}
    return ref.get("resource") == "hotfixreleases" and (ref.get("namespace"), ref.get("name")) in records


def restart(cluster: AuditedCluster, source: Source, records: set[tuple[str, str]], new_ns: str,
            image: Any) -> dict[str, Any]:
    tally = AuditTally(cluster.audit_log)
    tally.mark()
    sample = sorted(records)[0]
    before = read_release(cluster, *sample)
    with Watching(cluster) as watching:
        wall_start = time.time()
        operator = Operator(cluster, source).start()
        try:
            started = operator.started
            wait_until("the operator's health endpoint", operator.healthy, 120, operator.check_alive)
            healthy = time.monotonic()
            file_all(cluster, [release_manifest(image, new_ns, None)])
            wait_until("the new release's first status", lambda: bool(watching.fleet.seen.get(new_ns)), 600,
                       operator.check_alive)
            ready = min(watching.fleet.seen[new_ns].values())
            stats = operator.stats
            cpu_ready = stats.cpu_seconds()
            time.sleep(IDLE_SECONDS)
            idle = stats.cpu_seconds() - cpu_ready
            memory = stats.memory_mb()
            reconciles = operator.metric("hotfix_reconcile_duration_seconds_count")
        finally:
            operator.stop()
    after = read_release(cluster, *sample)
    requests = tally.requests()
    about = [r for r in requests if about_record(r, records)]
    last = max((stage_time(r) for r in about), default=None)
    return {
        "completedReleases": len(records), "healthEndpointSeconds": healthy - started, "readySeconds": ready - started,
        "recordsReconciledSeconds": 0.0 if last is None else max(0.0, last - wall_start),
        "writesToCompleted": sum(1 for r in about if r["verb"] in WRITES),
        "getsOfCompleted": sum(1 for r in about if r["verb"] == "get"),
        "getsPerCompleted": sum(1 for r in about if r["verb"] == "get") / len(records),
        "idleCpuSeconds": idle, "idleCpuCoreFraction": idle / IDLE_SECONDS, "idleWindowSeconds": IDLE_SECONDS,
        "cpuSecondsStartToReady": cpu_ready,
        "rssMB": memory["VmRSS"], "vmHwmMB": memory["VmHWM"], "reconcilesSinceStart": reconciles,
        "requestsSinceStart": counts(requests), "oneRecordChanged": changed(before, after)}


def stage_time(request: dict[str, Any]) -> float:
    return datetime.datetime.fromisoformat(request["stageTimestamp"].replace("Z", "+00:00")).timestamp()


def main() -> None:
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, AuditedCluster(Path(tmp)) as cluster:
        source = operator_source(cluster.workdir)
        install_crds(cluster, source)
        signer = LocalSigner.load_or_create(cluster.workdir / "signing" / "release.key")
        install_policy(cluster, signer, LABEL, None, undo_window_seconds=UNDO_WINDOW_SECONDS)
        image = signed_image(cluster, signer, "records")
        new = [f"records-new-{i}" for i in range(len(SIZES))]
        prepare_namespaces(cluster, [*RECORD_NAMESPACES, "records-template", *new], LABEL, 1)
        template = run_template(cluster, source, image)
        records: list[tuple[str, str]] = []
        for size, new_ns in zip(SIZES, new, strict=True):
            added = [(RECORD_NAMESPACES[i % len(RECORD_NAMESPACES)], f"record-{i:05d}")
                     for i in range(len(records), size)]
            started = time.monotonic()
            copy_records(cluster, template, added)
            print(f"  {len(added)} completed releases written in {time.monotonic() - started:.1f}s", flush=True)
            records += added
            rows.append(restart(cluster, source, set(records), new_ns, image))
            print(f"  {size}: ready {rows[-1]['readySeconds']:.1f}s", flush=True)
    write(rows, {"before": list(load_before), "after": list(os.getloadavg())}, source)


def write(rows: list[dict[str, Any]], load: dict[str, Any], source: Source) -> None:
    table = [(str(r["completedReleases"]), f"{r['healthEndpointSeconds']:.2f}", f"{r['readySeconds']:.2f}",
              f"{r['recordsReconciledSeconds']:.1f}", str(r["writesToCompleted"]), f"{r['getsPerCompleted']:.2f}",
              f"{r['idleCpuCoreFraction'] * 100:.1f}%", f"{r['rssMB']:.0f}", f"{r['vmHwmMB']:.0f}",
              f"{r['reconcilesSinceStart']:.0f}") for r in rows]
    header = ("completed", "healthz s", "ready s", "records reconciled s", "writes to completed",
              "GETs/completed", f"idle CPU ({IDLE_SECONDS:.0f}s)", "RSS MB", "peak RSS MB", "reconciles")
    results: dict[str, Any] = {"sizes": rows, "loadAverage": load, "operator": source.describe()}
    if len(rows) > 1:
        def points(key: str) -> list[tuple[float, float]]:
            return [(r["completedReleases"], float(r[key])) for r in rows]

        results["growth"] = {"unit": "per added completed release", "readySeconds": growth(points("readySeconds")),
                             "rssMB": growth(points("rssMB")), "vmHwmMB": growth(points("vmHwmMB")),
                             "idleCpuSeconds": growth(points("idleCpuSeconds")),
                             "getsOfCompleted": growth(points("getsOfCompleted")),
                             "reconcilesSinceStart": growth(points("reconcilesSinceStart"))}
    report("scale-at-rest", "completed HotfixReleases present; the operator restarted", table, header, results,
           packages=("kopf", "kubernetes"))
    if "growth" in results:
        from bench_scale_concurrency import print_growth

        print_growth(results["growth"])
    print(f"  load average before {load['before']}, after {load['after']}")


if __name__ == "__main__":
    main()
