"""A real local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
kwok (fake nodes whose pods are scheduled, get IPs and turn Ready), plus a TLS OCI registry.

Every process is a child of the process that calls `start()` and is bound to it with
PR_SET_PDEATHSIG, so nothing outlives its owner, even when the owner is killed with SIGKILL.
Ports are chosen free at start, so two clusters can run side by side.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcluster.identities import OPERATOR, SERVICE_ACCOUNTS, identity_manifests, role_bindings
from localcluster.identities import USERS as USERS  # re-exported: tests list the users' kubeconfigs
from localcluster.pki import CertificateAuthority, KeyPair
from localcluster.toolchain import Toolchain

OPERATOR_NAMESPACE = OPERATOR.namespace
OPERATOR_SERVICE_ACCOUNT = OPERATOR.name
KWOK_NODES = 3
POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL it when its parent dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(message: str) -> None:
    print(f"[cluster] {message}", flush=True)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    # how it was started, so it can be started again alone
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class LocalCluster:
    """One control plane rooted at `workdir` (certs, data, logs, kubeconfigs)."""

    workdir: Path
    nodes: int = KWOK_NODES
    with_registry: bool = True
    toolchain: Toolchain = field(default_factory=Toolchain.from_cache)
    processes: list[Process] = field(default_factory=list)
    api_port: int = 0
    registry_port: int = 0

    # -- paths other tooling relies on --------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    def user_kubeconfig(self, user: str) -> Path:
        return self.workdir / "users" / f"{user}.kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "pki" / "ca.crt"

    @property
    def registry_host(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    @property
    def operator_kubeconfig(self) -> Path:
        return self.user_kubeconfig("operator")

    @property
    def audit_log(self) -> Path:
        """The kube-apiserver's audit log (JSON lines): every update and patch of a Service, with its request
        body and response code (hack/localcluster/audit-policy.yaml). A restart appends to it."""
        return self.workdir / "logs" / "kube-apiserver-audit.log"

    def audit_events(self) -> list[dict[str, Any]]:
        """The audit log's events so far, in the order the API server wrote them."""
        try:
            text = self.audit_log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        events = []
        for line in text.splitlines():
            with contextlib.suppress(ValueError):  # a line being written as we read
                events.append(json.loads(line))
        return events

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> LocalCluster:
        started = time.monotonic()
        for sub in ("data", "logs", "users"):
            shutil.rmtree(self.workdir / sub, ignore_errors=True)
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        try:
            ca = CertificateAuthority(self.workdir / "pki")
            self._start_etcd()
            self._start_apiserver(ca)
            self._write_kubeconfigs(ca)
            self._start_controllers(ca)
            self._bootstrap()
            if self.with_registry:
                self._start_registry(ca)
            self._wait_nodes_ready()
        except BaseException:
            self.stop()
            raise
        log(f"control plane ready in {time.monotonic() - started:.1f}s: kubeconfig {self.kubeconfig}")
        self._write_state()
        return self

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.popen.poll() is None:
                proc.popen.terminate()
        deadline = time.monotonic() + 10
        for proc in reversed(self.processes):
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
        self.processes.clear()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- faults, for tests: one component restarted or frozen while the rest runs ----------------

    def component(self, name: str) -> Process:
        for proc in self.processes:
            if proc.name == name:
                return proc
        raise KeyError(f"no component {name!r}; running: {', '.join(p.name for p in self.processes)}")

    def restart(self, name: str) -> float:
        """Stop one component (SIGTERM, as a rolling restart would) and start it again with the same
        flags and ports; returns the seconds it was away. Call from the thread that started the cluster:
        PR_SET_PDEATHSIG binds a child to the thread that forked it."""
        old = self.component(name)
        started = time.monotonic()
        if old.popen.poll() is None:
            old.popen.send_signal(signal.SIGCONT)  # a frozen process cannot act on SIGTERM
            old.popen.terminate()
            try:
                old.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                old.popen.kill()
                old.popen.wait()
        self.processes.remove(old)
        fresh = self._spawn(name, old.argv, old.env)
        if name == "kube-apiserver":
            self._wait_apiserver()
        elif "--secure-port" in fresh.argv:
            # controller-manager and scheduler serve /healthz unauthenticated on their own self-signed port
            port = fresh.argv[fresh.argv.index("--secure-port") + 1]
            insecure = ssl._create_unverified_context()
            self._wait(name, lambda: urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=insecure,
                                                            timeout=1).status == 200)
        else:
            self._wait(name, lambda: fresh.popen.poll() is None)
        log(f"{name} restarted in {time.monotonic() - started:.1f}s")
        self._write_state()
        return time.monotonic() - started

    def pause(self, name: str) -> None:
        """SIGSTOP one component: it holds its connections and does nothing, like a stalled process."""
        self.component(name).popen.send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.component(name).popen.send_signal(signal.SIGCONT)

    @contextlib.contextmanager
    def paused(self, name: str) -> Iterator[None]:
        self.pause(name)
        try:
            yield
        finally:
            self.resume(name)

    def check_alive(self) -> None:
        for proc in self.processes:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")

    # -- components ---------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        log_path = self.workdir / "logs" / f"{name}.log"
        out = log_path.open("ab")
        popen = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent, env={**os.environ, **(env or {})}, cwd=self.workdir,
        )
        out.close()
        proc = Process(name, popen, log_path, argv, env)
        self.processes.append(proc)
        return proc

    def _wait(self, what: str, ready: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if ready():
                    return
            except (OSError, ValueError, subprocess.SubprocessError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{what} not ready after {timeout:.0f}s")

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self._etcd_url = f"http://127.0.0.1:{client}"
        self._spawn("etcd", [
            self.toolchain.etcd, "--data-dir", str(self.workdir / "data" / "etcd"),
            "--listen-client-urls", self._etcd_url, "--advertise-client-urls", self._etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"default=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync", "--log-level", "warn", "--quota-backend-bytes", str(2 * 1024**3),
        ])
        self._wait("etcd", lambda: b"true" in urllib.request.urlopen(f"{self._etcd_url}/health", timeout=1).read())

    def _start_apiserver(self, ca: CertificateAuthority) -> None:
        self.api_port = free_port()
        serving = ca.issue("apiserver", "kube-apiserver", server=True,
                           dns_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
                           ip_addresses=("127.0.0.1", "10.96.0.1"))
        sa = ca.service_account_keys()
        self._spawn("kube-apiserver", [
            self.toolchain.kube_apiserver,
            "--etcd-servers", self._etcd_url,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(self.api_port),
            "--tls-cert-file", str(serving.cert), "--tls-private-key-file", str(serving.key),
            "--client-ca-file", str(ca.cert_path),
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-account-key-file", str(sa.cert), "--service-account-signing-key-file", str(sa.key),
            "--service-cluster-ip-range", SERVICE_CIDR,
            "--authorization-mode", "RBAC",
            "--allow-privileged=true", "--profiling=false", "--event-ttl=2h",
            "--cert-dir", str(self.workdir / "data" / "apiserver-certs"),
            "--audit-policy-file", str(HERE / "audit-policy.yaml"),
            "--audit-log-path", str(self.audit_log), "--audit-log-format", "json", "--audit-log-maxsize", "0",
        ])
        self._admin = ca.issue("admin", "admin", organizations=("system:masters",))
        self._ca_path = ca.cert_path
        self._wait_apiserver()

    def _wait_apiserver(self) -> None:
        context = ssl.create_default_context(cafile=str(self._ca_path))
        context.load_cert_chain(str(self._admin.cert), str(self._admin.key))
        url = f"https://127.0.0.1:{self.api_port}/readyz"
        self._wait("kube-apiserver", lambda: urllib.request.urlopen(url, context=context, timeout=2).status == 200,
                   timeout=90)

    def _kubeconfig_for(self, path: Path, user: str, pair: KeyPair, ca: CertificateAuthority) -> None:
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "hotfix-local",
            "clusters": [{"name": "hotfix-local", "cluster": {
                "server": f"https://127.0.0.1:{self.api_port}", "certificate-authority": str(ca.cert_path)}}],
            "users": [{"name": user, "user": {
                "client-certificate": str(pair.cert), "client-key": str(pair.key)}}],
            "contexts": [{"name": "hotfix-local", "context": {"cluster": "hotfix-local", "user": user}}],
        }
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)

    def _write_kubeconfigs(self, ca: CertificateAuthority) -> None:
        self._kubeconfig_for(self.kubeconfig, "admin", self._admin, ca)
        components = {
            "kube-controller-manager": ca.issue("controller-manager", "system:kube-controller-manager"),
            "kube-scheduler": ca.issue("scheduler", "system:kube-scheduler"),
            "kwok": ca.issue("kwok", "kwok", organizations=("system:masters",)),
        }
        for name, pair in components.items():
            self._kubeconfig_for(self.workdir / "data" / f"{name}.kubeconfig", name, pair, ca)
        for user, groups in USERS.items():
            pair = ca.issue(f"user-{user}", user, organizations=groups)
            self._kubeconfig_for(self.user_kubeconfig(user), user, pair, ca)
        # The operator and the other service accounts: a client certificate whose CN is the service
        # account's user name is the same identity to RBAC and admission, without expiring tokens.
        for name, account in SERVICE_ACCOUNTS.items():
            pair = ca.issue(f"user-{name}", account.username, organizations=account.groups)
            self._kubeconfig_for(self.user_kubeconfig(name), account.username, pair, ca)

    def _start_controllers(self, ca: CertificateAuthority) -> None:
        sa = ca.service_account_keys()
        data = self.workdir / "data"
        self._spawn("kube-controller-manager", [
            self.toolchain.kube_controller_manager,
            "--kubeconfig", str(data / "kube-controller-manager.kubeconfig"),
            "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", str(free_port()),
            "--service-account-private-key-file", str(sa.key), "--root-ca-file", str(ca.cert_path),
            "--use-service-account-credentials=true",
            "--controllers", "*,-nodeipam,-route,-service,-cloud-node-lifecycle,-persistentvolume-binder",
            "--concurrent-deployment-syncs", "10", "--concurrent-replicaset-syncs", "10",
        ])
        self._spawn("kube-scheduler", [
            self.toolchain.kube_scheduler,
            "--kubeconfig", str(data / "kube-scheduler.kubeconfig"),
            "--authentication-kubeconfig", str(data / "kube-scheduler.kubeconfig"),
            "--authorization-kubeconfig", str(data / "kube-scheduler.kubeconfig"),
            "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", str(free_port()),
        ])
        self._spawn("kwok", [
            self.toolchain.kwok,
            "--kubeconfig", str(data / "kwok.kubeconfig"),
            "--config", str(HERE / "kwok-stages.yaml"),
            "--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
            "--cidr", POD_CIDR, "--node-ip", "10.240.0.1",
            "--node-lease-duration-seconds", "40",
            "--server-address", f"127.0.0.1:{free_port()}",
        ])

    def kubectl(self, *args: str, user: str | None = None, stdin: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        kubeconfig = self.user_kubeconfig(user) if user else self.kubeconfig
        return subprocess.run([self.toolchain.kubectl, "--kubeconfig", str(kubeconfig), *args],
                              input=stdin, text=True, capture_output=True, check=check, timeout=120)

    def _bootstrap(self) -> None:
        nodes = [
            {"apiVersion": "v1", "kind": "Node", "metadata": {
                "name": f"kwok-node-{i}",
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {"kubernetes.io/hostname": f"kwok-node-{i}", "kubernetes.io/os": "linux", "type": "kwok",
                           "topology.kubernetes.io/zone": f"zone-{i % 3}"}},
             "status": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": "250"},
                        "capacity": {"cpu": "64", "memory": "256Gi", "pods": "250"}}}
            for i in range(self.nodes)
        ]
        manifests = [*nodes, *identity_manifests()]
        self._wait("kube-apiserver RBAC bootstrap",
                   lambda: self.kubectl("get", "clusterrole", "admin", check=False).returncode == 0)
        self.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}))
        # Shipped roles (requester, approver, GitOps requester, operator) come from the repository and are
        # bound here to the local identities (localcluster.identities).
        templates = REPO / "charts" / "hotfix-operator" / "templates"
        self.kubectl("apply", "-f", str(REPO / "crds" / "rbac.yaml"), "-f", str(templates / "clusterrole.yaml"),
                     "-f", str(templates / "role.yaml"))
        self.kubectl("apply", "-f", "-",
                     stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": role_bindings()}))

    def _wait_nodes_ready(self) -> None:
        def ready() -> bool:
            out = self.kubectl("get", "nodes", "-o",
                               "jsonpath={range .items[*]}{.status.conditions[?(@.type=='Ready')].status}{' '}{end}",
                               check=False).stdout.split()
            return len(out) == self.nodes and all(s == "True" for s in out)

        self._wait("kwok nodes", ready)
        self._wait("default service account",
                   lambda: self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0)

    def _start_registry(self, ca: CertificateAuthority) -> None:
        self.registry_port = free_port()
        serving = ca.issue("registry", "registry", server=True, dns_names=("localhost",), ip_addresses=("127.0.0.1",))
        config = self.workdir / "data" / "registry.yml"
        config.write_text(json.dumps({
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.workdir / "data" / "registry")},
                        "delete": {"enabled": True}},
            "http": {"addr": self.registry_host, "tls": {"certificate": str(serving.cert), "key": str(serving.key)},
                     "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }))
        self._spawn("registry", [self.toolchain.registry, "serve", str(config)])
        context = ssl.create_default_context(cafile=str(ca.cert_path))
        self._wait("registry", lambda: urllib.request.urlopen(
            f"https://{self.registry_host}/v2/", context=context, timeout=1).status == 200)

    def _write_state(self) -> None:
        state = {"apiServer": f"https://127.0.0.1:{self.api_port}",
                 "registry": self.registry_host if self.with_registry else None,
                 "caFile": str(self.ca_file), "kubeconfig": str(self.kubeconfig),
                 "pids": {p.name: p.popen.pid for p in self.processes}}
        (self.workdir / "cluster.json").write_text(json.dumps(state, indent=2))

