"""The local control plane's contract: `up` writes the kubeconfigs, a second cluster runs beside the
first (free ports), `down` stops everything, and killing the owner outright leaves no orphan process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from localcluster.cluster import USERS, LocalCluster
from tests.kube import wait_for

HACK = Path(__file__).resolve().parents[2] / "hack"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes; it only waits for its parent to reap it
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def localcluster(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localcluster", *args],
        cwd=HACK,
        text=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(HACK)},
    )


def test_up_and_down_beside_the_session_cluster(cluster: LocalCluster, tmp_path: Path) -> None:
    up = localcluster("up", "--dir", str(tmp_path))
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        state = json.loads((tmp_path / "cluster.json").read_text())
        assert state["apiServer"] != f"https://127.0.0.1:{cluster.api_port}"
        assert (tmp_path / "kubeconfig").exists()
        for user in [*USERS, "operator"]:
            assert (tmp_path / "users" / f"{user}.kubeconfig").exists()
        second = LocalCluster(tmp_path)
        nodes = second.kubectl("get", "nodes", "-o", "name").stdout.split()
        assert len(nodes) == 3
        pids = list(state["pids"].values())
        assert all(alive(pid) for pid in pids)
    finally:
        down = localcluster("down", "--dir", str(tmp_path))
    assert down.returncode == 0 and "stopped" in down.stdout
    wait_for("every component to exit", lambda: not any(alive(pid) for pid in pids), timeout=15)
    assert cluster.kubectl("get", "nodes").returncode == 0, "the session's cluster is untouched"


def test_killing_the_owner_with_sigkill_leaves_no_orphans(tmp_path: Path) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-m", "localcluster", "up", "--foreground", "--dir", str(tmp_path)],
        cwd=HACK,
        env={**os.environ, "PYTHONPATH": str(HACK)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        state_file = tmp_path / "cluster.json"
        wait_for("the cluster to be up", state_file.exists, timeout=120)
        pids = list(json.loads(state_file.read_text())["pids"].values())
        assert len(pids) == 6  # etcd, apiserver, controller-manager, scheduler, kwok, registry
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        wait_for("every component to die with its owner", lambda: not any(alive(pid) for pid in pids), timeout=15)
    finally:
        if owner.poll() is None:
            owner.kill()
    time.sleep(0.1)


def test_make_crds_installs_the_api_into_the_cluster_it_is_pointed_at(cluster: LocalCluster) -> None:
    repo = HACK.parent
    done = subprocess.run(["make", "-s", "crds", f"LOCAL={cluster.workdir}"], cwd=repo, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ignored" not in done.stderr, done.stderr
    established = cluster.kubectl("get", "crd", "hotfixreleases.hotfix.dev", "hotfixpolicies.hotfix.dev", "-o",
                                  "jsonpath={.items[*].status.conditions[?(@.type=='Established')].status}").stdout
    assert established.split() == ["True", "True"]


def test_one_component_restarts_alone_and_the_rest_keeps_its_state(cluster: LocalCluster) -> None:
    others = {p.name: p.popen.pid for p in cluster.processes if p.name not in ("kube-apiserver",
                                                                              "kube-controller-manager")}
    cluster.kubectl("create", "configmap", "survives-restart", "-n", "default", "--from-literal=k=v")
    try:
        port = cluster.api_port
        away = cluster.restart("kube-apiserver")
        assert cluster.api_port == port and 0 < away < 90
        assert cluster.kubectl("get", "configmap", "survives-restart", "-n", "default", "-o",
                               "jsonpath={.data.k}").stdout == "v", "etcd kept the data"
        cluster.restart("kube-controller-manager")
        assert {p.name: p.popen.pid for p in cluster.processes if p.name in others} == others, \
            "etcd, the scheduler, kwok and the registry were not touched"
        cluster.check_alive()
    finally:
        cluster.kubectl("delete", "configmap", "survives-restart", "-n", "default", check=False)


def test_a_paused_controller_manager_does_nothing_until_resumed(cluster: LocalCluster) -> None:
    ns = "default"
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "paused-probe"},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "paused-probe"}},
                           "template": {"metadata": {"labels": {"app": "paused-probe"}},
                                        "spec": {"containers": [{"name": "c", "image": "example.com/x:1"}]}}}}
    try:
        with cluster.paused("kube-controller-manager"):
            cluster.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(deployment))
            time.sleep(2)
            rs = cluster.kubectl("get", "rs", "-n", ns, "-l", "app=paused-probe", "-o", "name").stdout
            assert rs == "", "no ReplicaSet while the deployment controller is frozen"
        wait_for("the ReplicaSet once resumed", lambda: cluster.kubectl(
            "get", "rs", "-n", ns, "-l", "app=paused-probe", "-o", "name").stdout.strip(), timeout=30)
    finally:
        cluster.kubectl("delete", "deployment", "paused-probe", "-n", ns, "--wait=false", check=False)
