"""The chart against the real API server: everything it renders passes a server-side dry-run (CRDs,
admission policy, roles, the operator, ServiceMonitor, PrometheusRule, dashboard, default policy),
then `helm install` and `helm upgrade` for real into their own namespace of the session's cluster.

The session's cluster already holds the API and the operator's ClusterRole (applied as plain files by
tests/conftest.py and the local control plane), so the real install leaves those to them
(crds.install=false, rbac.createClusterRole=false); the dry-run checks the chart's own copies."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from localcluster.cluster import LocalCluster
from tests.charts.helm import CHART, EVERYTHING, REPO, render, run_helm
from tests.kube import Kube, wait_for

pytestmark = pytest.mark.cluster
# the release key, from a ConfigMap in the operator's namespace (the chart does not create it)
KEY = {"name": "release", "configMapKeyRef": {"name": "hotfix-signing", "key": "release.pub"}}
PROVENANCE = {"provenance": {"trustedKeys": [KEY], "allowedBuilders": ["https://builder.example.com/ci"],
                             "allowedSourceRepositories": ["github.com/acme/checkout"]},
              "sla": {"targetSeconds": 900}}


@pytest.fixture(scope="module")
def monitoring_crds(cluster: LocalCluster) -> None:
    """The Prometheus Operator's ServiceMonitor and PrometheusRule CRDs, from their pinned Go module."""
    out = subprocess.run(["bash", str(REPO / "hack" / "build-binaries.sh"), "monitoring-crds"], check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    cluster.kubectl("apply", "--server-side", "-f", out)
    cluster.kubectl("wait", "--for", "condition=Established", "crd/servicemonitors.monitoring.coreos.com",
                    "crd/prometheusrules.monitoring.coreos.com", "--timeout=30s")


@pytest.fixture
def chart_namespace(kube: Kube) -> Iterator[str]:
    name = f"chart-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", name)
    yield name
    kube.kubectl("delete", "hotfixpolicy", name, "--ignore-not-found", check=False)
    kube.kubectl("delete", "clusterrolebinding", f"hotfix-operator-{name}", "--ignore-not-found", check=False)
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


def policy_values(namespace: str) -> list[str]:
    # a name and a selector of its own, so the policy governs no other test's namespace
    return ["--set", f"defaultPolicy.name={namespace}",
            "--set-json", f'defaultPolicy.namespaceSelector={{"matchLabels":{{"hotfix.dev/policy":"{namespace}"}}}}',
            "--set-json", f"defaultPolicy.spec={json.dumps(PROVENANCE)}"]


def test_every_rendered_object_passes_a_server_side_dry_run(kube: Kube, monitoring_crds: None,
                                                            chart_namespace: str) -> None:
    provenance = "defaultPolicy.spec.provenance"
    docs = render(chart_namespace, *EVERYTHING, f"defaultPolicy.name={chart_namespace}",
                  f"{provenance}.trustedKeys[0].name=release",
                  f"{provenance}.trustedKeys[0].configMapKeyRef.name=hotfix-signing",
                  f"{provenance}.trustedKeys[0].configMapKeyRef.key=release.pub",
                  f"{provenance}.allowedBuilders[0]=https://builder.example.com/ci",
                  f"{provenance}.allowedSourceRepositories[0]=github.com/acme/checkout")
    kinds = {d["kind"] for d in docs}
    assert {"CustomResourceDefinition", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
            "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount", "Deployment", "Service",
            "ServiceMonitor", "PrometheusRule", "ConfigMap", "HotfixPolicy", "PodDisruptionBudget"} <= kinds
    out = kube.kubectl("apply", "--server-side", "--dry-run=server", "--force-conflicts",
                       "--field-manager=chart-dry-run", "-f", "-",
                       stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    assert out.count("(server dry run)") == len(docs), out


def helm_in(cluster: LocalCluster, *args: str) -> str:
    return run_helm(*args, kubeconfig=Path(cluster.kubeconfig)).stdout


def test_helm_install_then_upgrade_into_a_namespace(cluster: LocalCluster, kube: Kube, monitoring_crds: None,
                                                    chart_namespace: str) -> None:
    ns = chart_namespace
    base = ["--namespace", ns, "--set", "crds.install=false", "--set", "rbac.createClusterRole=false",
            "--set", "defaultPolicy.enabled=true", *policy_values(ns), "--set", "prometheusRule.enabled=true",
            "--set", "metrics.serviceMonitor.enabled=true", "--wait", "--timeout", "120s"]
    helm_in(cluster, "install", "hfo", str(CHART), *base)
    for kind, name in [("deployment", "hotfix-operator"), ("serviceaccount", "hotfix-operator"),
                       ("role", "hotfix-operator"), ("rolebinding", "hotfix-operator"),
                       ("service", "hotfix-operator-metrics"), ("servicemonitor", "hotfix-operator"),
                       ("prometheusrule", "hotfix-operator"), ("poddisruptionbudget", "hotfix-operator")]:
        kube.kubectl("get", kind, name, "-n", ns)
    # the chart's Role lets the operator's service account hold the Lease in its namespace, and only there
    sa = f"system:serviceaccount:{ns}:hotfix-operator"
    for verb in ("create", "get", "update"):
        resource = "leases.coordination.k8s.io" if verb == "create" else "leases.coordination.k8s.io/hotfix-operator"
        assert kube.kubectl("auth", "can-i", verb, resource, "-n", ns, "--as", sa, check=False).startswith("yes")
    assert kube.kubectl("auth", "can-i", "update", "leases.coordination.k8s.io/other", "-n", ns, "--as", sa,
                        check=False).startswith("no")
    replicas = kube.kubectl("get", "deployment", "hotfix-operator", "-n", ns, "-o", "jsonpath={.spec.replicas}")
    assert replicas == "2"
    kube.kubectl("get", "clusterrolebinding", f"hotfix-operator-{ns}")
    policy = json.loads(kube.kubectl("get", "hotfixpolicy", ns, "-o", "json"))
    assert policy["spec"]["sla"] == {"targetSeconds": 900}
    wait_for("operator pod Ready", lambda: "True" in kube.kubectl(
        "get", "pods", "-n", ns, "-l", "app.kubernetes.io/instance=hfo",
        "-o", "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}"))

    helm_in(cluster, "upgrade", "hfo", str(CHART), *base, "--set", "operator.verbose=true",
            "--set", "dashboard.enabled=true", "--set-json", 'defaultPolicy.spec.sla={"targetSeconds":600}')
    status = json.loads(helm_in(cluster, "status", "hfo", "--namespace", ns, "-o", "json"))
    assert (status["version"], status["info"]["status"]) == (2, "deployed")
    args = json.loads(kube.kubectl("get", "deployment", "hotfix-operator", "-n", ns, "-o",
                                   "jsonpath={.spec.template.spec.containers[0].args}"))
    assert "--verbose" in args and f"--operator-namespace={ns}" in args
    kube.kubectl("get", "configmap", "hotfix-operator-dashboard", "-n", ns)
    policy = json.loads(kube.kubectl("get", "hotfixpolicy", ns, "-o", "json"))
    assert policy["spec"]["sla"] == {"targetSeconds": 600}
    helm_in(cluster, "uninstall", "hfo", "--namespace", ns, "--wait")
    assert kube.kubectl("get", "clusterrolebinding", f"hotfix-operator-{ns}", "--ignore-not-found") == ""


def test_what_make_kind_install_installs_passes_a_server_side_dry_run(kube: Kube, chart_namespace: str) -> None:
    """kind and a container engine do not run here: the chart with hack/kind's values is checked on the
    local control plane instead, exactly as `make kind-install` passes them."""
    kind_values = REPO / "hack" / "kind" / "default-policy.yaml"
    out = run_helm("template", "hotfix-operator", str(CHART), "--namespace", chart_namespace, "-f", str(kind_values),
                   "--set", "image.repository=hotfix-operator", "--set", "image.tag=dev",
                   "--set", "image.pullPolicy=Never").stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    policy = next(d for d in docs if d["kind"] == "HotfixPolicy")
    assert policy["spec"]["namespaceSelector"] == {"matchLabels": {"hotfix.dev/policy": "kind"}}
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "hotfix-operator:dev"
    items = docs
    result = kube.kubectl("apply", "--server-side", "--dry-run=server", "--force-conflicts",
                          "--field-manager=kind-dry-run", "-f", "-",
                          stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    assert result.count("(server dry run)") == len(items), result
