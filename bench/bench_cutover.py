"""How much time the operator adds: control-plane warm start, and on the quickstart app the time from
approval to traffic on green and to Succeeded, with the example's bake/scale-down and with both at 0;
and how fast an undo puts the previous version back (spec.undo -> EndpointSlices on it, instant checks).

    make bench-cutover          (RUNS=3 by default; HOTFIX_BENCH_RUNS to change)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from argo_rollouts import measure_promote_to_switch
from argo_rollouts import version as argo_version
from common import REPO, ms, report, s, summarise
from cutover_timeline import TransitionSamples, run_transitions
from localcluster.cluster import LocalCluster
from localcluster.oci import PushedImage, Pusher
from localcluster.signing import LOCAL_BUILDER, LocalSigner, slsa_v1_statement
from undo_timeline import UndoSamples, run_undos

RUNS = int(os.environ.get("HOTFIX_BENCH_RUNS", "3"))
TRANSITION_RUNS = int(os.environ.get("HOTFIX_BENCH_TRANSITION_RUNS", "20"))
COMMIT = "a8b1963c1f0e2d3b4a5968776655443322110099"
SOURCE = "github.com/acme/checkout"
APP = REPO / "examples" / "quickstart" / "app.yaml"


def warm_starts(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.monotonic()
            cluster = LocalCluster(Path(tmp)).start()
            times.append(time.monotonic() - started)
            cluster.stop()
    return times


def cutovers(cluster: LocalCluster, runs: int, bake: int, scale_down: int) -> tuple[list[float], list[float]]:
    to_green, to_done = [], []
    signer = LocalSigner.load_or_create(cluster.workdir / "signing" / "release.key")
    kubectl = cluster.kubectl
    kubectl("apply", "-f", "-", stdin=json.dumps(bench_policy(signer, "bench", registry_host=cluster.registry_host)))
    for run in range(runs):
        ns = f"bench-{bake}-{run}"
        image = prepare(cluster, signer, ns, "bench", f"bench-{bake}-{run}")
        kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(hotfix(image, bake, scale_down)), user="alice")
        approved = approve(cluster, ns)
        wait_phase(cluster, ns, {"Promoted", "Finalizing", "Succeeded"})
        to_green.append(time.monotonic() - approved)
        phase = wait_phase(cluster, ns, {"Succeeded", "RolledBack", "Failed"})
        if phase != "Succeeded":
            raise SystemExit(f"benchmark hotfix ended {phase}")
        to_done.append(time.monotonic() - approved)
    return to_green, to_done


def bench_policy(signer: LocalSigner, name: str, checks: dict[str, Any] | None = None, *,
                 registry_host: str) -> dict[str, Any]:
    """A HotfixPolicy for namespaces labelled hotfix.dev/policy=<name>, trusting the bench's local key, for
    images in the local registry's shop/ repositories (on loopback, so listed)."""
    spec: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": {"hotfix.dev/policy": name}},
        "provenance": {"trustedKeys": [{"name": "bench", "publicKey": signer.public_pem}],
                       "requireTransparencyLog": False, "allowedBuilders": [LOCAL_BUILDER],
                       "allowedSourceRepositories": [SOURCE], "images": [{"glob": f"{registry_host}/shop/**"}]},
        "registry": {"loopbackHosts": [registry_host]}}
    if checks:
        spec["checks"] = checks
    return {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": name}, "spec": spec}


def prepare(cluster: LocalCluster, signer: LocalSigner, ns: str, policy_label: str, tag: str) -> PushedImage:
    """A namespace under the policy with the quickstart app rolled out, and a signed image to ship."""
    kubectl = cluster.kubectl
    kubectl("create", "namespace", ns)
    kubectl("label", "namespace", ns, f"hotfix.dev/policy={policy_label}")
    while kubectl("get", "sa", "default", "-n", ns, check=False).returncode:
        time.sleep(0.1)
    kubectl("apply", "-n", ns, "-f", str(APP))
    kubectl("rollout", "status", "deployment/checkout", "-n", ns, "--timeout=60s")
    with Pusher(cluster.registry_host, cluster.ca_file) as pusher:
        image = pusher.push_image("shop/checkout", tag, {"app": tag.encode()})
        signer.attest(pusher, image.repository, image.digest, slsa_v1_statement(
            f"{image.registry}/{image.repository}", image.digest, SOURCE, COMMIT))
    return image


def hotfix(image: PushedImage, bake: int, scale_down: int, checks: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = {"version": "4.1.2-hotfix.1", "commitSha": COMMIT, "justification": "x" * 60,
            "ticketUrl": "https://tracker.example.com/INCIDENT-1", "severity": "P0", "riskLevel": "low",
            "requestedBy": "alice",
            "target": {"deployment": "checkout", "service": "checkout", "container": "app",
                       "previewService": "checkout-preview"},
            "artifact": {"image": image.reference, "sourceRepository": SOURCE},
            "rollout": {"bakeSeconds": bake, "scaleDownDelaySeconds": scale_down}}
    if checks:
        spec["checks"] = checks
    return {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixRelease", "metadata": {"name": "hf"}, "spec": spec}


def approve(cluster: LocalCluster, ns: str) -> float:
    """bob approves once the release awaits approval; returns when the API server accepted it."""
    wait_phase(cluster, ns, {"AwaitingApproval"})
    patch = ('[{"op":"add","path":"/spec/approval/approvals/-","value":{"approver":"bob","decision":"Approve",'
             '"groups":["hotfix:approvers","system:authenticated"]}}]')
    cluster.kubectl("patch", "hfr", "hf", "-n", ns, "--type=json", "-p", patch, user="bob")
    return time.monotonic()


def wait_phase(cluster: LocalCluster, ns: str, phases: set[str], timeout: float = 180, poll: float = 0.05) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        phase = cluster.kubectl("get", "hfr", "hf", "-n", ns, "-o", "jsonpath={.status.phase}").stdout
        if phase in phases:
            return phase
        time.sleep(poll)
    raise SystemExit(f"timed out waiting for {phases} in {ns}")


def start_operator(cluster: LocalCluster) -> subprocess.Popen[bytes]:
    cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    cluster.kubectl("wait", "--for", "condition=Established", "crd", "--all", "--timeout=30s")
    log = (cluster.workdir / "logs" / "operator.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "hotfix_operator.cli", "run", "--kubeconfig",
                             str(cluster.operator_kubeconfig), "--registry-ca-file", str(cluster.ca_file),
                             "--metrics-port", "0"], stdout=log, stderr=subprocess.STDOUT)


def transition_rows(t: TransitionSamples) -> tuple[list[tuple[str, ...]], dict[str, Any]]:
    measures = [
        ("approval -> green created", "approvalToGreenCreated", t.approval_to_green_created),
        ("green available -> first check", "greenAvailableToFirstCheck", t.green_available_to_first_check),
        ("checks passed -> switch (active selector on green)", "checksPassedToSwitch", t.checks_passed_to_switch),
        ("green available -> switch, no checks", "greenAvailableToSwitchNoChecks", t.green_available_to_switch),
        ("bake over (EndpointSlices on green, bake 0) -> fold", "bakeOverToFold", t.bake_over_to_fold),
        ("approval -> Succeeded, instant checks, bake 0", "approvalToSucceeded", t.approval_to_succeeded)]
    rows, results = [], {}
    for title, key, values in measures:
        stats = summarise(values)
        results[f"{key}Seconds"] = stats
        rows.append((title, str(stats["n"]), ms(stats["median"]), ms(stats["p95"]), ms(stats["max"])))
    return rows, results


UNDO_TARGET_P95_SECONDS = 2.0


def undo_rows(u: UndoSamples, before: tuple[float, float, float]) -> tuple[list[tuple[str, ...]], dict[str, Any]]:
    measures = [
        ("undo: spec.undo -> EndpointSlices only on the previous version", "undoToTrafficOnPrevious",
         u.undo_to_previous),
        ("undo: spec.undo -> helper Deployment created", "undoToHelperCreated", u.undo_to_helper_created),
        ("undo: helper available -> active selector on it (checks run between)", "helperAvailableToSelector",
         u.helper_available_to_selector),
        ("undo: selector on helper -> EndpointSlices on it (controller-manager)", "selectorToEndpoints",
         u.selector_to_endpoints),
        ("undo: spec.undo -> Undone (bake 0, scale-down 0)", "undoToUndone", u.undo_to_undone)]
    rows, results = [], {}
    for title, key, values in measures:
        stats = summarise(values)
        results[f"{key}Seconds"] = stats
        rows.append((title, str(stats["n"]), ms(stats["median"]), ms(stats["p95"]), ms(stats["max"])))
    p95 = results["undoToTrafficOnPreviousSeconds"]["p95"]
    results["targetP95Seconds"] = UNDO_TARGET_P95_SECONDS
    results["targetMet"] = p95 <= UNDO_TARGET_P95_SECONDS
    results["checks"] = "one pre-promotion http check, answered at once by a loopback target"
    results["loadAverage"] = {"beforeUndos": list(before), "afterEachRun1m": [a[0] for a in u.load_average],
                              "cores": os.cpu_count()}
    return rows, results


def main() -> None:
    starts = warm_starts(RUNS)
    transitions = TransitionSamples()
    undos = UndoSamples()
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(Path(tmp)) as cluster:
        operator = start_operator(cluster)
        try:
            green_0, done_0 = cutovers(cluster, RUNS, bake=0, scale_down=0)
            green_q, done_q = cutovers(cluster, RUNS, bake=10, scale_down=5)
            run_transitions(cluster, TRANSITION_RUNS, True, transitions, sys.modules[__name__])
            run_transitions(cluster, TRANSITION_RUNS, False, transitions, sys.modules[__name__])
            undo_load = os.getloadavg()
            run_undos(cluster, TRANSITION_RUNS, undos, sys.modules[__name__])
        finally:
            operator.terminate()
            operator.wait(timeout=15)
        # the baseline, on the same control plane in the same run, after the operator has stopped
        argo = measure_promote_to_switch(cluster, TRANSITION_RUNS)
    rows, transition_results = transition_rows(transitions)
    argo_stats = summarise(argo)
    transition_results["argoRolloutsPromoteToSwitchSeconds"] = {**argo_stats, "version": argo_version()}
    rows.append((f"Argo Rollouts {argo_version()}: promote -> switch (baseline)", str(argo_stats["n"]),
                 ms(argo_stats["median"]), ms(argo_stats["p95"]), ms(argo_stats["max"])))
    rows_undo, undo_results = undo_rows(undos, undo_load)
    rows += rows_undo
    results = {"controlPlaneWarmStartSeconds": summarise(starts),
               "approvalToTrafficOnGreenSeconds": {"bake0": summarise(green_0), "quickstart": summarise(green_q)},
               "approvalToSucceededSeconds": {"bake0": summarise(done_0), "quickstart": summarise(done_q)},
               "transitions": transition_results, "undo": undo_results}
    rows += [("control plane warm start (etcd..kwok + registry, ready)", str(len(starts)), s(summarise(starts)[
                 "median"]), "", s(max(starts))),
             ("approval -> traffic on green, quickstart", str(RUNS), s(summarise(green_q)["median"]), "",
              s(max(green_q))),
             ("approval -> Succeeded, quickstart (bake 10 s, scale-down 5 s)", str(RUNS),
              s(summarise(done_q)["median"]), "", s(max(done_q)))]
    report("cutover", "cutover on the real local control plane: the operator's reaction at each transition, "
           "timed from watches", rows, ("measure", "n", "p50", "p95", "max"), results, packages=("kopf", "kubernetes"))


if __name__ == "__main__":
    main()
