"""How much time the operator adds: control-plane warm start, and on the quickstart app the time from
approval to traffic on green and to Succeeded, with the example's bake/scale-down and with both at 0.

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

from common import REPO, report, s, summarise
from localcluster.cluster import LocalCluster
from localcluster.oci import Pusher
from localcluster.signing import LOCAL_BUILDER, LocalSigner, slsa_v1_statement

RUNS = int(os.environ.get("HOTFIX_BENCH_RUNS", "3"))
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
    policy = {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": "bench"},
              "spec": {"namespaceSelector": {"matchLabels": {"hotfix.dev/policy": "bench"}},
                       "provenance": {"trustedKeys": [{"name": "bench", "publicKey": signer.public_pem}],
                                      "requireTransparencyLog": False, "allowedBuilders": [LOCAL_BUILDER],
                                      "allowedSourceRepositories": [SOURCE]}}}
    kubectl("apply", "-f", "-", stdin=json.dumps(policy))
    for run in range(runs):
        ns = f"bench-{bake}-{run}"
        kubectl("create", "namespace", ns)
        kubectl("label", "namespace", ns, "hotfix.dev/policy=bench")
        while kubectl("get", "sa", "default", "-n", ns, check=False).returncode:
            time.sleep(0.1)
        kubectl("apply", "-n", ns, "-f", str(APP))
        kubectl("rollout", "status", "deployment/checkout", "-n", ns, "--timeout=60s")
        with Pusher(cluster.registry_host, cluster.ca_file) as pusher:
            image = pusher.push_image("shop/checkout", f"bench-{bake}-{run}", {"app": f"{bake}-{run}".encode()})
            signer.attest(pusher, image.repository, image.digest, slsa_v1_statement(
                f"{image.registry}/{image.repository}", image.digest, SOURCE, COMMIT))
        manifest = {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixRelease", "metadata": {"name": "hf"},
                    "spec": {"version": "4.1.2-hotfix.1", "commitSha": COMMIT, "justification": "x" * 60,
                             "ticketUrl": "https://tracker.example.com/INCIDENT-1", "severity": "P0",
                             "riskLevel": "low", "requestedBy": "alice",
                             "target": {"deployment": "checkout", "service": "checkout", "container": "app",
                                        "previewService": "checkout-preview"},
                             "artifact": {"image": image.reference, "sourceRepository": SOURCE},
                             "rollout": {"bakeSeconds": bake, "scaleDownDelaySeconds": scale_down}}}
        kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(manifest), user="alice")
        wait_phase(cluster, ns, {"AwaitingApproval"})
        patch = ('[{"op":"add","path":"/spec/approval/approvals/-","value":{"approver":"bob","decision":"Approve",'
                 '"groups":["hotfix:approvers","system:authenticated"]}}]')
        approved = time.monotonic()
        kubectl("patch", "hfr", "hf", "-n", ns, "--type=json", "-p", patch, user="bob")
        wait_phase(cluster, ns, {"Promoted", "Finalizing", "Succeeded"})
        to_green.append(time.monotonic() - approved)
        phase = wait_phase(cluster, ns, {"Succeeded", "RolledBack", "Failed"})
        if phase != "Succeeded":
            raise SystemExit(f"benchmark hotfix ended {phase}")
        to_done.append(time.monotonic() - approved)
    return to_green, to_done


def wait_phase(cluster: LocalCluster, ns: str, phases: set[str], timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        phase = cluster.kubectl("get", "hfr", "hf", "-n", ns, "-o", "jsonpath={.status.phase}").stdout
        if phase in phases:
            return phase
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {phases} in {ns}")


def main() -> None:
    starts = warm_starts(RUNS)
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(Path(tmp)) as cluster:
        cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
        cluster.kubectl("wait", "--for", "condition=Established", "crd", "--all", "--timeout=30s")
        log = (cluster.workdir / "logs" / "operator.log").open("wb")
        operator = subprocess.Popen([sys.executable, "-m", "hotfix_operator.cli", "run", "--kubeconfig",
                                     str(cluster.operator_kubeconfig), "--registry-ca-file", str(cluster.ca_file),
                                     "--metrics-port", "0"], stdout=log, stderr=subprocess.STDOUT)
        try:
            green_0, done_0 = cutovers(cluster, RUNS, bake=0, scale_down=0)
            green_q, done_q = cutovers(cluster, RUNS, bake=10, scale_down=5)
        finally:
            operator.terminate()
            operator.wait(timeout=15)
    results = {"controlPlaneWarmStartSeconds": summarise(starts),
               "approvalToTrafficOnGreenSeconds": {"bake0": summarise(green_0), "quickstart": summarise(green_q)},
               "approvalToSucceededSeconds": {"bake0": summarise(done_0), "quickstart": summarise(done_q)}}
    rows = [("control plane warm start (etcd..kwok + registry, ready)", s(results["controlPlaneWarmStartSeconds"][
                 "median"]), s(max(starts))),
            ("approval -> traffic on green, bake 0", s(summarise(green_0)["median"]), s(max(green_0))),
            ("approval -> Succeeded, bake 0 / scale-down 0", s(summarise(done_0)["median"]), s(max(done_0))),
            ("approval -> traffic on green, quickstart", s(summarise(green_q)["median"]), s(max(green_q))),
            ("approval -> Succeeded, quickstart (bake 10 s, scale-down 5 s)", s(summarise(done_q)["median"]),
             s(max(done_q)))]
    report("cutover", f"cutover on the real local control plane ({RUNS} runs each)", rows,
           ("measure", "median", "max"), results, packages=("kopf", "kubernetes"))


if __name__ == "__main__":
    main()
