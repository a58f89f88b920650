"""What the chart renders, checked without a cluster: the API comes from crds/ unchanged, the alerts
and dashboard from their committed files, the release namespace everywhere, the operator's pod
hardened (read-only root, writable /tmp, probes on the port it serves), and the schema refuses bad values."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.charts.helm import CHART, EVERYTHING, REPO, by_kind, render, run_helm

pytestmark = pytest.mark.unit
KEEP = {"helm.sh/resource-policy": "keep"}


def test_lint_is_clean_with_every_switch_on() -> None:
    args = ["lint", str(CHART), "--strict"]
    for value in EVERYTHING:
        args += ["--set", value]
    run_helm(*args)


@pytest.mark.parametrize(("value", "message"), [
    ("image.digest=sha256:abc", "/image/digest"),
    ("metricsPort=0", "/metricsPort"),
    ("tmpSizeLimit=lots", "/tmpSizeLimit"),
    ("unknownKey=1", "unknownKey"),
    ("replicaCount=0", "/replicaCount"),
    ("leaderElection.leaseSeconds=2", "/leaderElection/leaseSeconds"),
    ("leaderElection.leaseName=Shard_A", "/leaderElection/leaseName"),
])
def test_the_schema_refuses_bad_values(value: str, message: str) -> None:
    done = run_helm("lint", str(CHART), "--set", value, check=False)
    assert done.returncode != 0
    assert message in done.stdout + done.stderr


def test_rendered_api_objects_are_the_repository_crds_directory() -> None:
    shipped = [d for f in sorted((REPO / "crds").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    docs = render()
    kinds = {d["kind"] for d in shipped}
    rendered = [d for d in docs if d["kind"] in kinds and d["metadata"]["name"] in {s["metadata"]["name"]
                                                                                   for s in shipped}]
    for doc in rendered:
        if doc["kind"] == "CustomResourceDefinition":
            assert doc["metadata"].pop("annotations") == KEEP  # uninstall must not delete every HotfixRelease
    key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
    assert sorted(rendered, key=key) == sorted(shipped, key=key)
    assert not by_kind(render("hotfix-ops", "crds.install=false"), "CustomResourceDefinition")


def test_the_plain_clusterrole_file_is_what_the_chart_renders() -> None:
    plain = yaml.safe_load((CHART / "templates" / "clusterrole.yaml").read_text())
    rendered = [d for d in by_kind(render(), "ClusterRole") if d["metadata"]["name"] == "hotfix-operator"]
    assert rendered == [plain]
    off = render("hotfix-ops", "rbac.createClusterRole=false")
    assert not [d for d in by_kind(off, "ClusterRole") if d["metadata"]["name"] == "hotfix-operator"]


def test_everything_lands_in_the_release_namespace() -> None:
    docs = render("ops-elsewhere", *EVERYTHING)
    assert "hotfix-system" not in json.dumps(docs)
    namespaced = [d for d in docs if "namespace" in d["metadata"]]
    assert {d["metadata"]["namespace"] for d in namespaced} == {"ops-elsewhere"}
    (binding,) = by_kind(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "hotfix-operator", "namespace": "ops-elsewhere"}]
    (deployment,) = by_kind(docs, "Deployment")
    assert "--operator-namespace=ops-elsewhere" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def test_the_pod_is_hardened_with_a_writable_tmp_and_probes_on_the_health_port() -> None:
    (deployment,) = by_kind(render("hotfix-ops", "healthPort=9090"), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}} in pod["volumes"]
    assert "--health-port=9090" in container["args"]
    assert {"name": "health", "containerPort": 9090} in container["ports"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_alerts_dashboard_and_default_policy_come_from_their_files_and_values() -> None:
    docs = render("hotfix-ops", *EVERYTHING, "defaultPolicy.spec.sla.targetSeconds=900")
    (rule,) = by_kind(docs, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    (dashboard,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == "hotfix-operator-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    committed = json.loads((CHART / "dashboards" / "hotfix-operator.json").read_text())
    assert json.loads(dashboard["data"]["hotfix-operator.json"]) == committed
    (monitor,) = by_kind(docs, "ServiceMonitor")
    (service,) = [d for d in by_kind(docs, "Service") if d["metadata"]["name"] == "hotfix-operator-metrics"]
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "hotfix-operator"  # the alerts' job
    (policy,) = by_kind(docs, "HotfixPolicy")
    assert policy["spec"] == {"namespaceSelector": {"matchLabels": {"hotfix.dev/policy": "default"}},
                              "sla": {"targetSeconds": 900}}
    assert "post-install" in policy["metadata"]["annotations"]["helm.sh/hook"]
    off = render()
    assert not [d for d in off if d["kind"] in {"PrometheusRule", "ServiceMonitor", "HotfixPolicy"}]


def _operator(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    (deployment,) = by_kind(docs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return deployment, container


def test_two_replicas_by_default_with_leader_election_identity_from_the_pod_name_and_a_disruption_budget() -> None:
    docs = render("hotfix-ops")
    deployment, container = _operator(docs)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    args = container["args"]
    for arg in ("--leader-elect", "--lease-name=hotfix-operator", "--lease-namespace=hotfix-ops", "--lease-seconds=15"):
        assert arg in args, args
    assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in container["env"]
    (budget,) = by_kind(docs, "PodDisruptionBudget")
    assert budget["metadata"]["namespace"] == "hotfix-ops"
    assert budget["spec"] == {"maxUnavailable": 1, "selector": deployment["spec"]["selector"]}
    spread = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = spread["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"] == deployment["spec"]["selector"]


def test_the_role_allows_creating_the_lease_and_reading_and_renewing_only_it() -> None:
    docs = render("hotfix-ops", "leaderElection.leaseName=shard-a")
    (role,) = by_kind(docs, "Role")
    leases = [r for r in role["rules"] if r["apiGroups"] == ["coordination.k8s.io"]]
    assert leases == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
                      {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["shard-a"],
                       "verbs": ["get", "update"]}]
    _, container = _operator(docs)
    assert "--lease-name=shard-a" in container["args"]
    # the plain Role the local control plane applies allows what the tests' elected operators use
    plain = yaml.safe_load_all((CHART / "templates" / "role.yaml").read_text())
    (plain_role,) = [d for d in plain if d and d["kind"] == "Role"]
    assert {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
            "verbs": ["get", "create", "update"]} in plain_role["rules"]


def test_one_replica_is_allowed_with_or_without_leader_election_and_has_no_budget() -> None:
    docs = render("hotfix-ops", "replicaCount=1")
    deployment, container = _operator(docs)
    assert deployment["spec"]["replicas"] == 1
    assert "--leader-elect" in container["args"]  # a rolling update still hands over through the Lease
    assert not by_kind(docs, "PodDisruptionBudget")
    assert "affinity" not in deployment["spec"]["template"]["spec"]
    plain = render("hotfix-ops", "replicaCount=1", "leaderElection.enabled=false")
    deployment, container = _operator(plain)
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert not [a for a in container["args"] if a.startswith("--lease") or a == "--leader-elect"]
    assert "POD_NAME" not in {e["name"] for e in container["env"]}
    (role,) = by_kind(plain, "Role")
    assert not [r for r in role["rules"] if r["apiGroups"] == ["coordination.k8s.io"]]


def test_several_replicas_without_leader_election_are_refused() -> None:
    done = run_helm("template", "hfo", str(CHART), "--set", "leaderElection.enabled=false", check=False)
    assert done.returncode != 0
    assert "replicaCount 2 needs leaderElection.enabled=true" in done.stderr
    assert "set replicaCount=1" in done.stderr


def test_the_budget_can_be_switched_off_and_own_affinity_wins() -> None:
    docs = render("hotfix-ops", "podDisruptionBudget.enabled=false", "affinity.nodeAffinity.x=y")
    assert not by_kind(docs, "PodDisruptionBudget")
    deployment, _ = _operator(docs)
    assert deployment["spec"]["template"]["spec"]["affinity"] == {"nodeAffinity": {"x": "y"}}
