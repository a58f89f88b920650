"""The scale benchmarks' plumbing on the real local control plane: a kube-apiserver that audits every request
the operator's service account makes, the operator as a child process whose memory and CPU are read from
/proc, and the audit log counted per kind of request."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import REPO
from localcluster.cluster import LocalCluster, _die_with_parent, free_port
from localcluster.identities import OPERATOR
from scale_stats import request_kind

OPERATOR_USER = OPERATOR.username
# The stock policy's rule (Service writes at Request level, which the chaos test reads) comes first, so it
# still applies to everyone; then every request of the operator's user at Metadata level. A watch is
# written when it starts (ResponseStarted) and when it ends; any other request once, when complete.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
    "rules": [
        {"level": "Request", "verbs": ["update", "patch"], "resources": [{"group": "", "resources": ["services"]}],
         "omitStages": ["RequestReceived", "ResponseStarted"]},
        {"level": "Metadata", "users": [OPERATOR_USER], "omitStages": ["RequestReceived"]},
        {"level": "None"}]}


# The control plane's own clients are rate-limited on their side: kube-controller-manager's and kwok's at 20
# requests per second (burst 30) by default, the scheduler's at 50. Many hotfixes at once queue behind those
# limits (each hotfix's ReplicaSets, pods and their status updates), whatever the operator does.
# SCALE_CONTROL_PLANE_QPS=<n> raises the controller-manager's and the scheduler's to n (burst 2n), as a platform
# team running hundreds of teams' workloads would (kwok has no such flag; it stays at its own); unset, they stay
# stock, and each result says which.
CONTROL_PLANE_QPS = os.environ.get("SCALE_CONTROL_PLANE_QPS")
RATE_LIMITED = ("kube-controller-manager", "kube-scheduler")


def control_plane_limits() -> dict[str, Any]:
    """The client rate limits the control plane's controllers ran with, for the results."""
    if CONTROL_PLANE_QPS is None:
        return {"kube-controller-manager": {"qps": 20, "burst": 30}, "kube-scheduler": {"qps": 50, "burst": 100}}
    qps = float(CONTROL_PLANE_QPS)
    return {name: {"qps": qps, "burst": int(2 * qps)} for name in RATE_LIMITED}


class AuditedCluster(LocalCluster):
    """LocalCluster whose kube-apiserver audits every request of the operator's service account too, and whose
    controllers run with SCALE_CONTROL_PLANE_QPS's client rate limit when it is set."""

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Any:
        if name == "kube-apiserver" and "--audit-policy-file" in argv:
            policy = self.workdir / "data" / "scale-audit-policy.json"
            policy.write_text(json.dumps(AUDIT_POLICY))
            at = argv.index("--audit-policy-file") + 1
            argv = [*argv[:at], str(policy), *argv[at + 1:]]
        if name in RATE_LIMITED and CONTROL_PLANE_QPS is not None:
            qps = float(CONTROL_PLANE_QPS)
            argv = [*argv, f"--kube-api-qps={qps:g}", f"--kube-api-burst={int(2 * qps)}"]
        return super()._spawn(name, argv, env)


@dataclass
class AuditTally:
    """The operator's requests in the audit log after a byte offset (`mark`), counted as the API server saw them."""

    path: Path
    offset: int = 0

    def mark(self) -> int:
        self.offset = self.path.stat().st_size if self.path.exists() else 0
        return self.offset

    def events(self, since: int | None = None) -> list[dict[str, Any]]:
        start = self.offset if since is None else since
        with self.path.open("rb") as log:
            log.seek(start)
            data = log.read()
        events = []
        for line in data.splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("user", {}).get("username") == OPERATOR_USER:
                    events.append(event)
        return events

    def requests(self, since: int | None = None) -> list[dict[str, Any]]:
        """One event per request: a watch when it started, anything else when it completed."""
        return [e for e in self.events(since) if e.get("stage") == ("ResponseStarted" if e.get("verb") == "watch"
                                                                    else "ResponseComplete")]


def counts(requests: list[dict[str, Any]]) -> dict[str, Any]:
    """Reads, writes and watches, and the writes by verb and resource (where the writes go)."""
    kinds = Counter(request_kind(r["verb"]) for r in requests)
    by_resource = Counter(f"{r['verb']} {resource_name(r)}" for r in requests if request_kind(r["verb"]) == "write")
    reads = Counter(f"{r['verb']} {resource_name(r)}" for r in requests if request_kind(r["verb"]) == "read")
    return {"reads": kinds["read"], "writes": kinds["write"], "watches": kinds["watch"],
            "writesByVerbResource": dict(by_resource.most_common()), "readsByVerbResource": dict(reads.most_common())}


def resource_name(request: dict[str, Any]) -> str:
    ref = request.get("objectRef") or {}
    resource = ref.get("resource", request.get("requestURI", "?"))
    return f"{resource}/{ref['subresource']}" if ref.get("subresource") else resource


@dataclass
class ProcStats:
    """Memory and CPU of one process, from /proc."""

    pid: int
    ticks: int = field(default_factory=lambda: os.sysconf("SC_CLK_TCK"))

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / self.ticks  # utime, stime (fields 14, 15 of stat)

    def memory_mb(self) -> dict[str, float]:
        found = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) / 1024
        return found

    def rss_mb(self) -> float:
        return self.memory_mb()["VmRSS"]


@dataclass(frozen=True)
class Source:
    """Which operator code runs: the checkout's working tree, or a commit exported from git (SCALE_OPERATOR_REF,
    e.g. HEAD), so uncommitted work in the checkout does not leak into the numbers."""

    commit: str
    root: Path | None  # holds operator/ and crds/; None: the checkout, whose operator/ the virtualenv installed
    dirty: bool

    @property
    def crds(self) -> Path:
        return (self.root or REPO) / "crds"

    def describe(self) -> dict[str, Any]:
        return {"commit": self.commit, "from": "git archive" if self.root else "working tree",
                "uncommittedChanges": self.dirty}


def operator_source(workdir: Path) -> Source:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True).stdout

    ref = os.environ.get("SCALE_OPERATOR_REF")
    if not ref:
        dirty = bool(git("status", "--porcelain", "--", "operator", "crds").strip())
        return Source(git("rev-parse", "HEAD").strip(), None, dirty)
    commit = git("rev-parse", f"{ref}^{{commit}}").strip()
    out = workdir / f"operator-{commit[:12]}"
    out.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "operator", "crds"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return Source(commit, out, False)


class Operator:
    """hotfix-operator run as its service account (as bench_cutover starts it), with its metrics and Kopf's
    health endpoint on free ports; bound to this process with PR_SET_PDEATHSIG."""

    def __init__(self, cluster: LocalCluster, source: Source | None = None) -> None:
        self.cluster, self.source = cluster, source
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = self.health_port = 0
        self.started = 0.0

    def start(self) -> Operator:
        self.metrics_port, self.health_port = free_port(), free_port()
        log = (self.cluster.workdir / "logs" / "operator.log").open("ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hotfix_operator.cli", "run", "--kubeconfig", str(self.cluster.operator_kubeconfig),
             "--registry-ca-file", str(self.cluster.ca_file), "--metrics-port", str(self.metrics_port),
             "--metrics-address", "127.0.0.1", "--health-port", str(self.health_port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent, cwd=REPO,
            env=self._env())
        log.close()
        return self

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.source is not None and self.source.root is not None:  # ahead of the virtualenv's editable install
            env["PYTHONPATH"] = os.pathsep.join([str(self.source.root / "operator"), env.get("PYTHONPATH", "")])
        return env

    @property
    def stats(self) -> ProcStats:
        assert self.proc is not None
        return ProcStats(self.proc.pid)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def metric(self, name: str) -> float:
        """The sum of a metric's samples on the operator's /metrics (0 when absent)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        return sum(float(line.rpartition(" ")[2]) for line in text.splitlines()
                   if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " "))

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise SystemExit(f"the operator exited; see {self.cluster.workdir / 'logs' / 'operator.log'}")


@contextlib.contextmanager
def running(cluster: LocalCluster, source: Source | None = None) -> Iterator[Operator]:
    operator = Operator(cluster, source).start()
    try:
        yield operator
    finally:
        operator.stop()


def install_crds(cluster: LocalCluster, source: Source) -> None:
    cluster.kubectl("apply", "--server-side", "-f", str(source.crds))
    cluster.kubectl("wait", "--for", "condition=Established", "crd", "--all", "--timeout=30s")


@dataclass
class Sampler:
    """Samples a process's VmRSS every `interval` seconds on a thread, for the peak within a window."""

    stats: ProcStats
    interval: float = 0.2
    peak_mb: float = 0.0
    _stop: bool = False

    def __enter__(self) -> Sampler:
        import threading

        self.peak_mb = self.stats.rss_mb()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop:
            with contextlib.suppress(OSError, KeyError):
                self.peak_mb = max(self.peak_mb, self.stats.rss_mb())
            time.sleep(self.interval)

    def __exit__(self, *_: object) -> None:
        self._stop = True
        self._thread.join(timeout=2)
