"""Fixtures for the operator on the real control plane: the operator as a real process (so a test
can kill it), a fresh namespace per test with the quickstart app, a real image in the registry, and
approving and aborting as the local identities do it (in their own name, with their real groups)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster.cluster import LocalCluster, _die_with_parent, free_port
from localcluster.oci import PushedImage, Pusher
from localcluster.signing import LOCAL_BUILDER, LocalSigner, slsa_v1_statement
from tests.kube import Kube, wait_for
from tests.support.api_as import ApiAs
from tests.support.releases import COMMIT, SOURCE, release_spec

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = list(yaml.safe_load_all((REPO / "examples" / "quickstart" / "app.yaml").read_text()))


class OperatorProcess:
    """`hotfix-operator run` as the operator's service account, restartable."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.log_path = cluster.workdir / "logs" / "operator.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0

    def start(self) -> None:
        self.metrics_port = free_port()
        argv = [
            sys.executable,
            "-m",
            "hotfix_operator.cli",
            "run",
            "--kubeconfig",
            str(self.cluster.operator_kubeconfig),
            "--registry-ca-file",
            str(self.cluster.ca_file),
            "--metrics-port",
            str(self.metrics_port),
            "--metrics-address",
            "127.0.0.1",
        ]
        with self.log_path.open("ab") as out:
            self.popen = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
                env={**os.environ},
            )

    def kill(self) -> None:
        """SIGKILL: no chance to clean up or write anything, like a crashed or evicted pod."""
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def pause(self) -> None:
        """SIGSTOP: the operator holds its connections and does nothing, like a starved or stalled pod."""
        assert self.popen is not None and self.popen.poll() is None
        self.popen.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGCONT)
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def operator(cluster: LocalCluster) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(cluster)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def running_operator(operator: OperatorProcess) -> OperatorProcess:
    """The session's operator, restarted if an earlier test killed it."""
    if operator.popen is None or operator.popen.poll() is not None:
        operator.start()
    return operator


POLICY_LABEL = "hotfix.dev/policy"


@pytest.fixture(scope="session")
def signer(cluster: LocalCluster) -> LocalSigner:
    return LocalSigner.load_or_create(cluster.workdir / "signing" / "release.key")


def local_registry_rules(registry_host: str) -> dict[str, Any]:
    """What a test HotfixPolicy says about where the gate may connect: images and evidence in shop/
    repositories of registries on the local registry's loopback address (any port: tests also name
    registries that are down, or answer in plain HTTP), which must be listed because it is loopback."""
    host = registry_host.rsplit(":", 1)[0]
    return {"images": [{"glob": f"{host}:*/shop/**"}],
            "evidence": [{"glob": f"oci://{host}:*/shop/**"}],
            "registry": {"loopbackHosts": [host]}}


def with_local_registry(spec: dict[str, Any], registry_host: str) -> dict[str, Any]:
    """A HotfixPolicy spec with `local_registry_rules` merged in (provenance.images/evidence, registry)."""
    rules = local_registry_rules(registry_host)
    return {**spec, "provenance": {**spec["provenance"], "images": rules["images"], "evidence": rules["evidence"]},
            "registry": {**(spec.get("registry") or {}), **rules["registry"]}}


@pytest.fixture(scope="session")
def test_policy(kube: Kube, cluster: LocalCluster, signer: LocalSigner) -> str:
    """The HotfixPolicy that governs every test namespace (label hotfix.dev/policy=test)."""
    spec = {"namespaceSelector": {"matchLabels": {POLICY_LABEL: "test"}},
            "provenance": {"trustedKeys": [{"name": "release", "publicKey": signer.public_pem}],
                           "requireTransparencyLog": False,  # a local key has no Rekor entry
                           "allowedBuilders": [LOCAL_BUILDER],
                           "allowedSourceRepositories": [SOURCE]}}
    policy = {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": "test"},
              "spec": with_local_registry(spec, cluster.registry_host)}
    kube.apply(policy, "default")
    return "test"


def push_signed(cluster: LocalCluster, signer: LocalSigner, tag: str, content: bytes,
                commit: str = COMMIT) -> PushedImage:
    with Pusher(cluster.registry_host, cluster.ca_file) as pusher:
        image = pusher.push_image("shop/checkout", tag, {"app": content})
        statement = slsa_v1_statement(f"{image.registry}/{image.repository}", image.digest, SOURCE, commit)
        signer.attest(pusher, image.repository, image.digest, statement)
    return image


@pytest.fixture(scope="session")
def hotfix_image(cluster: LocalCluster, signer: LocalSigner, test_policy: str) -> PushedImage:
    """The hotfix image, with SLSA v1 provenance for COMMIT signed by the policy's trusted key."""
    return push_signed(cluster, signer, "4.1.2-hotfix.1", b"checkout 4.1.2-hotfix.1\n")


@pytest.fixture
def namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)
    kube.kubectl("create", "namespace", name)
    kube.kubectl("label", "namespace", name, f"{POLICY_LABEL}=test")
    wait_for(
        "default service account",
        lambda: kube.kubectl("get", "sa", "default", "-n", name, check=False).startswith("NAME"),
    )
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def quickstart(kube: Kube, namespace: str) -> str:
    """The quickstart app (Deployment checkout x3, Services checkout and checkout-preview), rolled out."""
    kube.apply(QUICKSTART, namespace)

    def ready() -> bool:
        dep = kube.apps.read_namespaced_deployment("checkout", namespace)
        return (dep.status.available_replicas or 0) == 3 and len(kube.endpoint_ips(namespace, "checkout")) == 3

    wait_for("quickstart rolled out with 3 endpoints", ready)
    return namespace


def hotfix_manifest(image: str, name: str = "checkout-hotfix", **spec_overrides: Any) -> dict[str, Any]:
    return {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixRelease", "metadata": {"name": name},
            "spec": release_spec(image, **spec_overrides)}


@dataclass(frozen=True)
class Identity:
    """A local identity as the API server authenticates it (`kubectl auth whoami`)."""

    username: str
    groups: tuple[str, ...]


_WHOAMI: dict[tuple[Path, str], Identity] = {}


def whoami(kube: Kube, user: str) -> Identity:
    """The user name and groups the API server sees for `user`'s kubeconfig, asked once per user."""
    key = (kube.cluster.workdir, user)
    if key not in _WHOAMI:
        info = json.loads(kube.kubectl("auth", "whoami", "-o", "json", user=user))["status"]["userInfo"]
        _WHOAMI[key] = Identity(info["username"], tuple(info.get("groups", ())))
    return _WHOAMI[key]


def approval(kube: Kube, approver: str, decision: str = "Approve", group: str | None = None,
             comment: str = "reviewed the diff") -> dict[str, Any]:
    """The approval `approver` writes: their own name and exactly their groups, as admission requires."""
    me = whoami(kube, approver)
    entry: dict[str, Any] = {"approver": me.username, "decision": decision, "comment": comment,
                             "groups": list(me.groups)}
    if group:
        entry["group"] = group
    return entry


def approve(kube: Kube, namespace: str, name: str, approver: str = "bob", decision: str = "Approve",
            group: str | None = None) -> None:
    """Append `approver`'s approval as `approver`, through kubectl (a JSON patch, so nothing else changes)."""
    patch = [{"op": "add", "path": "/spec/approval/approvals/-", "value": approval(kube, approver, decision, group)}]
    kube.kubectl("patch", "hfr", name, "-n", namespace, "--type=json", "-p", json.dumps(patch), user=approver)


def abort(kube: Kube, namespace: str, name: str, by: str = "bob", reason: str = "stopping the rollout by hand") -> None:
    """Set spec.abort as `by` (the requester or an approver), naming `by` as admission requires."""
    patch = {"spec": {"abort": {"by": whoami(kube, by).username, "reason": reason}}}
    kube.kubectl("patch", "hfr", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch), user=by)


@pytest.fixture(scope="session")
def api_as(cluster: LocalCluster) -> Iterator[Callable[[str], ApiAs]]:
    """The API server as a local identity (a user or a service account) sees it, one client per identity."""
    clients: dict[str, ApiAs] = {}

    def client_for(user: str) -> ApiAs:
        if user not in clients:
            clients[user] = ApiAs(cluster.user_kubeconfig(user))
        return clients[user]

    yield client_for
    for each in clients.values():
        each.close()


FileHotfix = Callable[..., dict[str, Any]]


@pytest.fixture
def file_hotfix(kube: Kube, hotfix_image: PushedImage) -> FileHotfix:
    """Apply a HotfixRelease as alice (the requester), through kubectl and the real admission chain."""

    def file(namespace: str, name: str = "checkout-hotfix", **spec: Any) -> dict[str, Any]:
        manifest = hotfix_manifest(hotfix_image.reference, name, **spec)
        kube.apply(manifest, namespace, user="alice")
        return manifest

    return file
