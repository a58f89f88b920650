"""Operators run with `--leader-elect` on the local control plane, and what the API server says about them:
the Lease's holder, and the writes to Services its audit log holds (each with the replica's user agent)."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

from kubernetes import client

from localcluster.cluster import LocalCluster, _die_with_parent, free_port
from tests.kube import Kube

LEASE_NAMESPACE = "hotfix-system"
LEASE_SECONDS = 8  # renewed every 2.7 s; the leader fences itself 5.3 s after its last renewal


class ElectedOperator:
    """`hotfix-operator run --leader-elect` with an identity of its own, its own log, optionally sharded."""

    def __init__(self, cluster: LocalCluster, identity: str, lease: str | None,
                 namespaces: tuple[str, ...] = (), verbose: bool = False, lease_seconds: int = LEASE_SECONDS) -> None:
        self.cluster, self.lease_seconds = cluster, lease_seconds
        self.popen: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0
        self.identity, self.lease, self.namespaces, self.verbose = identity, lease, namespaces, verbose
        self.health_port = free_port()
        self.log_path = cluster.workdir / "logs" / f"operator-{identity}.log"

    @property
    def user_agent(self) -> str:
        return f"hotfix-operator ({self.identity})"

    def start(self) -> None:
        self.metrics_port = free_port()
        argv = [sys.executable, "-m", "hotfix_operator.cli", "run", "--kubeconfig",
                str(self.cluster.operator_kubeconfig), "--registry-ca-file", str(self.cluster.ca_file),
                "--metrics-port", str(self.metrics_port), "--metrics-address", "127.0.0.1",
                "--health-port", str(self.health_port), "--leader-elect", "--identity", self.identity,
                "--lease-seconds", str(self.lease_seconds),
                "--lease-namespace", LEASE_NAMESPACE]
        argv += ["--lease-name", self.lease] if self.lease else []
        argv += [f"--namespace={ns}" for ns in self.namespaces]
        argv += ["--verbose"] if self.verbose else []
        with self.log_path.open("ab") as out:
            self.popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          preexec_fn=_die_with_parent, env={**os.environ})

    def kill(self) -> None:
        """SIGKILL: no chance to clean up or write anything, like a crashed or evicted pod."""
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        """SIGTERM, as the kubelet stops a pod; SIGKILL after 20 s."""
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def leader_gauge(self) -> float | None:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).read().decode()
        except OSError:
            return None
        values = [line.split()[-1] for line in text.splitlines() if line.startswith("hotfix_leader ")]
        return float(values[0]) if values else None

    def healthz(self) -> tuple[int, str]:
        """/healthz on the health port: the standby's own answer, then Kopf's once this process leads."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, ""
        except OSError:
            return 0, ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def lease_of(kube: Kube, name: str) -> client.V1Lease | None:
    try:
        return client.CoordinationV1Api(kube.api).read_namespaced_lease(name, LEASE_NAMESPACE)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def holder(kube: Kube, name: str) -> str | None:
    lease = lease_of(kube, name)
    return lease.spec.holder_identity if lease is not None and lease.spec is not None else None


def service_writes(cluster: LocalCluster, namespace: str) -> list[dict[str, Any]]:
    """Every completed update or patch of a Service in `namespace`, from the kube-apiserver's audit log."""
    return [e for e in cluster.audit_events() if e.get("stage") == "ResponseComplete"
            and (e.get("objectRef") or {}).get("namespace") == namespace
            and (e.get("objectRef") or {}).get("resource") == "services"]


def audit_time(event: dict[str, Any]) -> datetime.datetime:
    return datetime.datetime.fromisoformat(str(event["requestReceivedTimestamp"]).replace("Z", "+00:00"))
