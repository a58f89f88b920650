"""`make dev`: the product on its embedded default, end to end, in one command.

Starts (or reuses) the local control plane and TLS registry in .local/, installs the CRDs, pushes a
small hotfix image, deploys examples/quickstart, runs the operator, files the example HotfixRelease
as alice, approves it as bob and shows it moving phase by phase. The operator then keeps running for
you to try things; Ctrl-C stops it, `make cluster-down` stops the control plane.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import signal
import string
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOCAL = REPO / ".local"
NAMESPACE = "shop"
RELEASE = "checkout-4-1-2-hotfix-1"
TERMINAL = {"Succeeded", "RolledBack", "Rejected", "Failed"}
sys.path.insert(0, str(REPO / "hack"))

from localcluster.cluster import LocalCluster  # noqa: E402
from localcluster.oci import Pusher  # noqa: E402
from localcluster.signing import LOCAL_BUILDER, LocalSigner, slsa_v1_statement  # noqa: E402
from observability import LocalPrometheus, sla_figures, sla_report  # noqa: E402

COMMIT = "a8b1963c1f0e2d3b4a5968776655443322110099"
SOURCE = "github.com/acme/checkout"


def step(n: int, total: int, text: str) -> None:
    print(f"\n\033[1m[{n}/{total}] {text}\033[0m", flush=True)


def run(*argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--once", action="store_true", help="stop the operator after the demo instead of keeping it")
    args = parser.parse_args()
    total = 9

    step(1, total, "local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) + TLS registry")
    env = {**os.environ, "PYTHONPATH": str(REPO / "hack")}
    subprocess.run([sys.executable, "-m", "localcluster", "up", "--dir", str(LOCAL)], check=True, env=env)
    state = json.loads((LOCAL / "cluster.json").read_text())
    cluster = LocalCluster(LOCAL)
    kubectl = cluster.toolchain.kubectl

    def k(*argv: str, user: str | None = None, stdin: str | None = None) -> str:
        config = cluster.user_kubeconfig(user) if user else cluster.kubeconfig
        return run(kubectl, "--kubeconfig", str(config), *argv, input=stdin).stdout

    step(2, total, "CustomResourceDefinitions and roles (crds/)")
    k("apply", "--server-side", "-f", str(REPO / "crds"))
    k("wait", "--for", "condition=Established", "crd", "--all", "--timeout=30s")
    print("  hotfixreleases.hotfix.dev established; roles hotfix-requester (alice) and hotfix-approver (bob, carol)")

    step(3, total, "the operator, as its service account (log: .local/logs/operator.log)")
    log = (LOCAL / "logs" / "operator.log").open("ab")
    operator = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "hotfix-operator"), "run", "--kubeconfig", str(cluster.operator_kubeconfig),
         "--registry-ca-file", state["caFile"], "--metrics-address", "127.0.0.1"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        # Debian's prometheus scrapes the operator for the whole demo (metrics on 127.0.0.1:8080)
        with LocalPrometheus.scraping("http://127.0.0.1:8080/metrics", LOCAL / "prometheus") as prom:
            return demo(k, state, total, operator, args.once, prom)
    finally:
        if operator.poll() is None:
            operator.send_signal(signal.SIGINT)
            try:
                operator.wait(timeout=10)
            except subprocess.TimeoutExpired:
                operator.kill()


def demo(k, state: dict[str, str], total: int, operator: subprocess.Popen[bytes], once: bool,  # type: ignore[no-untyped-def]
         prom: LocalPrometheus) -> int:
    print(f"  running (pid {operator.pid}); metrics on http://127.0.0.1:8080/metrics")
    receiver = Receiver()

    step(4, total, f"the quickstart app in namespace {NAMESPACE} (Deployment checkout x3, Services checkout, "
         "checkout-preview)")
    if NAMESPACE in k("get", "namespaces", "-o", "name"):
        print(f"  removing the previous demo's namespace {NAMESPACE} ...")
        k("delete", "namespace", NAMESPACE, "--timeout=90s")
    k("create", "namespace", NAMESPACE)
    for _ in range(100):
        if "default" in k("get", "serviceaccounts", "-n", NAMESPACE, "-o", "name"):
            break
        time.sleep(0.2)
    k("apply", "-n", NAMESPACE, "-f", str(REPO / "examples" / "quickstart" / "app.yaml"))
    k("rollout", "status", "deployment/checkout", "-n", NAMESPACE, "--timeout=60s")
    print("  " + k("get", "pods", "-n", NAMESPACE, "-o", "wide").replace("\n", "\n  ").rstrip())

    step(5, total, "a hotfix image pushed to the local registry, with SLSA provenance signed by a local key")
    signer = LocalSigner.load_or_create(LOCAL / "signing" / "release.key")
    with Pusher(state["registry"], state["caFile"]) as pusher:
        image = pusher.push_image("shop/checkout", "4.1.2-hotfix.1",
                                  {"app": b"#!/bin/sh\necho checkout 4.1.2-hotfix.1\n"})
        statement = slsa_v1_statement(f"{image.registry}/{image.repository}", image.digest, SOURCE, COMMIT)
        signer.attest(pusher, image.repository, image.digest, statement)
    print(f"  {image.reference}\n  attestation: {image.digest.replace(':', '-')}.att "
          f"(built from {SOURCE}@{COMMIT[:12]})")

    step(6, total, "the HotfixPolicy for namespace shop: trust that key, that builder, that repository")
    k("label", "namespace", NAMESPACE, "hotfix.dev/policy=quickstart", "--overwrite")
    policy = {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": "quickstart"},
              "spec": {"namespaceSelector": {"matchLabels": {"hotfix.dev/policy": "quickstart"}},
                       "provenance": {"trustedKeys": [{"name": "quickstart-release", "publicKey": signer.public_pem}],
                                      "requireTransparencyLog": False,
                                      "allowedBuilders": [LOCAL_BUILDER], "allowedSourceRepositories": [SOURCE],
                                      # where the gate may connect: this registry's shop/ images, and the
                                      # registry itself although it is on loopback
                                      "images": [{"glob": f"{state['registry']}/shop/**"}]},
                       "registry": {"loopbackHosts": [state["registry"]]},
                       # who hears of it: a receiver on loopback that prints what it gets (prefixed "notice")
                       "notifications": {"receivers": [{"name": "demo-receiver", "type": "webhook",
                                                        "urlSecretRef": {"name": "demo-receiver", "key": "url"}}]}}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "demo-receiver", "namespace": "hotfix-system"},
              "stringData": {"url": receiver.url}}
    k("apply", "-f", "-", stdin=json.dumps(secret))
    print("  " + k("apply", "-f", "-", stdin=json.dumps(policy)).strip())

    step(7, total, "alice files the HotfixRelease: kubectl hotfix create -f examples/quickstart/hotfix.yaml")
    manifest = string.Template((REPO / "examples" / "quickstart" / "hotfix.yaml").read_text()).substitute(
        IMAGE=image.reference)
    filed = LOCAL / "hotfix.yaml"
    filed.write_text(manifest)
    print("  alice> " + plugin("alice", "create", "-f", str(filed), "-n", NAMESPACE).stdout.strip())
    last = watch(k, until={"AwaitingApproval"} | TERMINAL, timeout=60)
    if last != "AwaitingApproval":
        return 1

    obj = json.loads(k("get", "hfr", RELEASE, "-n", NAMESPACE, "-o", "json"))
    facts = obj["status"].get("provenance") or {}
    print(f"  provenance verified under policy {obj['status'].get('policy')}: commit {facts.get('commitSha')}, "
          f"builder {facts.get('builderId')},\n  signer {facts.get('signers', [{}])[0].get('signer')}, "
          f"predicates {facts.get('predicateTypes')}")

    step(8, total, "alice tries to approve in bob's name; the API server refuses. bob approves with "
         "kubectl hotfix approve and follows kubectl hotfix status --watch")
    forged = approval_patch("bob", ["hotfix:approvers", "system:authenticated"], "looks fine to me")
    local = LocalCluster(LOCAL)
    refused = subprocess.run([local.toolchain.kubectl, "--kubeconfig", str(local.user_kubeconfig("alice")), "patch",
                              "hfr", RELEASE, "-n", NAMESPACE, "--type=json", "-p", forged],
                             text=True, capture_output=True)
    print("  alice> " + (refused.stderr.strip().splitlines() or ["(accepted?!)"])[-1][:300])
    if refused.returncode == 0:
        return 1
    approved_at = time.monotonic()
    print("  bob>   " + plugin("bob", "approve", RELEASE, "-n", NAMESPACE, "--comment",
                               "diff reviewed; rollback plan is automatic").stdout.strip())
    # drawn live on a terminal, one line per change otherwise; exit 0 on Succeeded
    followed = subprocess.run(plugin_argv("bob", "status", RELEASE, "-n", NAMESPACE, "--watch", "--timeout", "300s"),
                              env=plugin_env())
    elapsed = time.monotonic() - approved_at
    obj = json.loads(k("get", "hfr", RELEASE, "-n", NAMESPACE, "-o", "json"))
    summary(k, obj, elapsed)
    time.sleep(2)  # the last notice is sent in the background
    print("  the receiver got: " + (", ".join(receiver.kinds) or "nothing"))
    if followed.returncode != 0 or obj["status"].get("phase") != "Succeeded":
        return 1
    step(9, total, "the SLA figures, read back from Prometheus with the dashboard's PromQL")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not sla_figures(prom, NAMESPACE).get("succeeded"):
        time.sleep(1)  # one more scrape after Succeeded
    print("\n".join(sla_report(prom, NAMESPACE)))
    if once:
        return 0
    kubectl = f"{LocalCluster(LOCAL).toolchain.kubectl} --kubeconfig {LOCAL / 'kubeconfig'}"
    print("\nThe operator keeps running; Ctrl-C stops it, `make cluster-down` stops the control plane. Try:\n"
          f"  {kubectl} get hfr -A -o wide\n"
          f"  {kubectl} -n {NAMESPACE} get events --sort-by=.lastTimestamp")
    try:
        operator.wait()
    except KeyboardInterrupt:
        print("\nstopping the operator")
    return 0


def plugin_argv(user: str, *argv: str) -> list[str]:
    """`kubectl hotfix ...` as `user`: kubectl finds the plugin (kubectl-hotfix) on PATH, beside Python."""
    cluster = LocalCluster(LOCAL)
    return [cluster.toolchain.kubectl, "hotfix", "--kubeconfig", str(cluster.user_kubeconfig(user)), *argv]


def plugin_env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}


def plugin(user: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return run(*plugin_argv(user, *argv), env=plugin_env())


class Receiver:
    """A notification receiver on loopback that prints each notice as it arrives."""

    def __init__(self) -> None:
        self.kinds: list[str] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                receiver.kinds.append(str(body.get("kind")))
                print(f"  \033[2mnotice {body.get('kind')}: {str(body.get('text'))[:150]}\033[0m", flush=True)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notices"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def approval_patch(approver: str, groups: list[str], comment: str) -> str:
    """The JSON patch an approver sends: their name and groups as the API server knows them."""
    return json.dumps([{"op": "add", "path": "/spec/approval/approvals/-", "value": {
        "approver": approver, "decision": "Approve", "groups": groups, "comment": comment}}])


def watch(k, until: set[str], timeout: float) -> str:  # type: ignore[no-untyped-def]
    """Print each phase and message as it changes; return the phase that ended the watch."""
    deadline = time.monotonic() + timeout
    seen: tuple[str, str] | None = None
    phase = ""
    while time.monotonic() < deadline:
        status = json.loads(k("get", "hfr", RELEASE, "-n", NAMESPACE, "-o", "json")).get("status") or {}
        phase, message = status.get("phase", ""), status.get("message", "")
        if (phase, message) != seen and phase:
            print(f"  {time.strftime('%H:%M:%S')}  {phase:<17} {message}", flush=True)
            seen = (phase, message)
        if phase in until:
            return phase
        time.sleep(0.5)
    print(f"  timed out after {timeout:.0f}s in phase {phase}")
    return phase


def summary(k, obj: dict, elapsed: float) -> None:  # type: ignore[no-untyped-def,type-arg]
    status = obj["status"]
    print(f"\n  {obj['metadata']['name']}: {status['phase']} — incident {status.get('incidentId')}, "
          f"tag {status.get('tag')}, approval -> done in {elapsed:.1f}s")
    for cond in status.get("conditions", []):
        print(f"    {cond['type']:<26} {cond['status']:<6} {cond['reason']}")
    print("  audit trail:")
    for entry in status.get("audit", []):
        print(f"    {entry['time']}  {entry['actor']:<16} {entry['action']:<17} {entry['detail'][:90]}")
    image = k("get", "deployment", "checkout", "-n", NAMESPACE, "-o",
              "jsonpath={.spec.template.spec.containers[0].image}")
    print(f"  Deployment checkout now runs {image}")


if __name__ == "__main__":
    sys.exit(main())
