"""Health checks on the real control plane: passing checks promote; a failing pre-promotion check
leaves the active Service's EndpointSlices on blue throughout; a check failing during the bake rolls
back to blue's pods; flapping targets respect the failure and error limits; a Prometheus value out of
range rolls back and no series is an error; and a check that may not connect somewhere is refused at
Verifying before any request leaves the operator.

The app's answers come from a loopback server the test scripts (kwok pods run nothing), which the
test HotfixPolicy lists in checks.allowedHosts; Debian's prometheus scrapes its /metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotfix_operator.api import POD_TEMPLATE_HASH
from hotfix_operator.core.model import Spec
from localcluster.cluster import OPERATOR_NAMESPACE, LocalCluster
from localcluster.signing import LOCAL_BUILDER, LocalSigner
from observability import LocalPrometheus
from tests.integration.conftest import (
    POLICY_LABEL,
    FileHotfix,
    OperatorProcess,
    approve,
    hotfix_manifest,
    with_local_registry,
)
from tests.kube import Kube, wait_for
from tests.support.chaos import recorded_moves, selector_writes
from tests.support.check_targets import CheckTargets, serving
from tests.support.cutover import APP, condition
from tests.support.releases import SOURCE
from tests.support.traffic import EndpointSampler

NAME = "checkout-hotfix"
TOKEN_SECRET, TOKEN = "synthetic-check-token", "s3cret-synthetic-token"
FAST = {"progressDeadlineSeconds": 60, "bakeSeconds": 2, "scaleDownDelaySeconds": 1}


@pytest.fixture(scope="module")
def targets() -> Iterator[CheckTargets]:
    with serving() as server:
        yield server


@pytest.fixture(scope="module")
def prometheus(targets: CheckTargets, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    with LocalPrometheus.scraping(f"{targets.base}/metrics", tmp_path_factory.mktemp("prometheus")) as prom:
        yield prom


@pytest.fixture(scope="module")
def checks_policy(kube: Kube, signer: LocalSigner, targets: CheckTargets, prometheus: LocalPrometheus) -> Iterator[str]:
    """A HotfixPolicy for namespaces labelled policy=checks: it adds a smoke check of its own to every
    release and allows the loopback targets and the Prometheus explicitly."""
    policy = {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": "checks"},
              "spec": with_local_registry({"namespaceSelector": {"matchLabels": {POLICY_LABEL: "checks"}},
                       "provenance": {"trustedKeys": [{"name": "release", "publicKey": signer.public_pem}],
                                      "requireTransparencyLog": False,
                                      "allowedBuilders": [LOCAL_BUILDER], "allowedSourceRepositories": [SOURCE]},
                       "checks": {
                           "allowedHosts": [f"127.0.0.1:{targets.port}"],
                           "prometheus": [{"name": "main", "address": prometheus.url}],
                           "headerSets": [{"name": "synthetic-auth", "headers": [
                               {"header": "Authorization", "secretKeyRef": {"name": TOKEN_SECRET, "key": "header"}}]}],
                           "prePromotion": [{"name": "policy-smoke", "http": {
                               "url": f"{targets.base}/{{{{ namespace }}}}/smoke"}}]}}, kube.cluster.registry_host)}
    # header values live in a Secret in the operator's namespace, which only the policy can name
    kube.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": TOKEN_SECRET},
                "stringData": {"header": f"Bearer {TOKEN}"}}, OPERATOR_NAMESPACE)
    kube.apply(policy, "default")
    yield "checks"
    kube.kubectl("delete", "hotfixpolicy", "checks", "--wait=false", check=False)


@pytest.fixture
def ns(kube: Kube, quickstart: str, checks_policy: str, targets: CheckTargets) -> str:
    kube.kubectl("label", "namespace", quickstart, f"{POLICY_LABEL}=checks", "--overwrite")
    targets.script(f"{quickstart}/smoke", (200, "ok"))
    return quickstart


def http(name: str, ns: str, targets: CheckTargets, path: str, body: dict[str, str] | None = None,
         **fields: Any) -> dict[str, Any]:
    url = f"{targets.base}/{ns}/{path}?hash={{{{ greenPodHash }}}}&via={{{{ previewService }}}}"
    return {"name": name, "http": {"url": url, **({"body": body} if body else {})}, "intervalSeconds": 1, **fields}


Checks = tuple[dict[str, Any], ...] | list[dict[str, Any]]


def file_with_checks(kube: Kube, file_hotfix: FileHotfix, ns: str, pre: Checks = (), post: Checks = (),
                     **rollout: Any) -> None:
    file_hotfix(ns, rollout={**FAST, **rollout}, checks={"prePromotion": list(pre), "postPromotion": list(post)})
    kube.wait_phase(ns, NAME, "AwaitingApproval", "Rejected")


def sampler(cluster: LocalCluster, ns: str) -> EndpointSampler:
    return EndpointSampler(cluster.kubeconfig, ns, "checkout", NAME)


def check_states(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in obj["status"].get("checks", [])}


def test_passing_checks_promote_and_each_ran_against_green(
    kube: Kube, ns: str, targets: CheckTargets, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    targets.script(f"{ns}/health", (200, '{"status": "ok", "p99": 120}'))
    targets.script(f"{ns}/gate", (202, "hold on"), (200, "go"))
    pre = [http("health", ns, targets, "health", count=2, body={"jsonPath": "$.p99", "op": "<", "value": "250"}),
           {"name": "gate", "webhook": {"url": f"{targets.base}/{ns}/gate"}, "intervalSeconds": 1}]
    post = [http("soak", ns, targets, "health", count=2)]
    file_with_checks(kube, file_hotfix, ns, pre, post)
    approve(kube, ns, NAME)
    done = kube.wait_phase(ns, NAME, "Succeeded", "RolledBack", "Failed", timeout=120)
    assert done["status"]["phase"] == "Succeeded", done["status"]["message"]
    states = check_states(done)
    assert {n: s["phase"] for n, s in states.items()} == {
        "policy-smoke": "Passed", "health": "Passed", "gate": "Passed", "soak": "Passed"}
    assert states["policy-smoke"]["source"] == "policy" and states["health"]["lastValue"] == "120"
    green_hash = done["status"]["blueGreen"]["greenHash"]
    health = targets.under(f"{ns}/health")
    assert health and all(f"hash={green_hash}" in r.query and "via=checkout-preview" in r.query for r in health)
    hooks = targets.under(f"{ns}/gate")
    assert len(hooks) == 2 and hooks[0].json()["greenPodHash"] == green_hash and hooks[0].json()["stage"] == \
        "prePromotion"
    for kind in ("PrePromotionChecks", "PostPromotionChecks"):
        assert condition(done, kind)["status"] == "True", condition(done, kind)


def test_a_header_set_from_the_policy_is_sent_and_its_value_never_reaches_status(
    kube: Kube, ns: str, targets: CheckTargets, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    targets.script(f"{ns}/auth", (200, "ok"))
    check = http("auth", ns, targets, "auth")
    check["http"]["headersFrom"] = "synthetic-auth"
    file_with_checks(kube, file_hotfix, ns, [check])
    approve(kube, ns, NAME)
    done = kube.wait_phase(ns, NAME, "Succeeded", "RolledBack", "Failed", timeout=120)
    assert done["status"]["phase"] == "Succeeded", done["status"]["message"]
    sent = targets.under(f"{ns}/auth")
    assert sent and all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in sent)
    assert TOKEN not in json.dumps(done), "a header value was written into the release"


def test_a_failing_pre_promotion_check_keeps_every_endpoint_on_blue(
    kube: Kube, cluster: LocalCluster, ns: str, targets: CheckTargets, file_hotfix: FileHotfix,
    running_operator: OperatorProcess
) -> None:
    targets.script(f"{ns}/health", (503, '{"status": "degraded"}'))
    blue_ips = kube.pod_ips(ns, APP)
    file_with_checks(kube, file_hotfix, ns, [http("health", ns, targets, "health", count=3, failureLimit=1)])
    with sampler(cluster, ns) as samples:
        approve(kube, ns, NAME)
        done = kube.wait_phase(ns, NAME, "RolledBack", "Succeeded", "Failed", timeout=120)
    assert done["status"]["phase"] == "RolledBack", done["status"]["message"]
    assert "pre-promotion check health (http) failed 2 of 2" in done["status"]["message"]
    assert "last value 503" in done["status"]["message"] and "traffic never left blue" in done["status"]["message"]
    assert done["status"]["timestamps"].get("promoted") is None
    first, second = targets.under(f"{ns}/health")
    assert second.at - first.at >= 1.0, f"measured {second.at - first.at:.3f}s apart; the interval is 1s"
    assert any(s.phase == "PrePromotion" for s in samples.observed), "the sampler never saw the checks run"
    for s in samples.observed:
        assert s.ready and s.ready <= blue_ips, f"{s}: an endpoint that is not blue's"
    assert not kube.apps.list_namespaced_deployment(ns, label_selector="hotfix.dev/role=green").items


def test_pre_promotion_checks_wait_while_the_preview_services_endpoint_slices_list_blue(
    kube: Kube, ns: str, targets: CheckTargets, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    """An EndpointSlice the EndpointSlice controller does not manage (a mirror, a stale copy) still routes
    the preview Service's traffic, here to a blue pod: a check measured now could be answered by blue."""
    targets.script(f"{ns}/health", (200, "ok"))
    blue_ip = sorted(kube.pod_ips(ns, APP))[0]
    stray = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
             "metadata": {"name": "checkout-preview-stray", "namespace": ns,
                          "labels": {"kubernetes.io/service-name": "checkout-preview"}},
             "endpoints": [{"addresses": [blue_ip], "conditions": {"ready": True}}], "ports": [{"port": 8080}]}
    kube.kubectl("apply", "-f", "-", stdin=json.dumps(stray))
    file_with_checks(kube, file_hotfix, ns, [http("health", ns, targets, "health", count=1)])
    approve(kube, ns, NAME)
    waiting = wait_for("the checks to wait for the preview Service", lambda: (
        obj := kube.release(ns, NAME))["status"].get("phase") == "PrePromotion" and "waiting for preview Service "
        "checkout-preview's EndpointSlices to list only green pods" in obj["status"]["message"] and obj, timeout=60)
    time.sleep(2)  # two check intervals: still nothing may be measured, and traffic stays on blue
    assert not targets.under(f"{ns}/health"), "a check was measured through a preview Service that lists blue"
    assert kube.selector(ns, "checkout").get(POD_TEMPLATE_HASH) == waiting["status"]["blueGreen"]["blueHash"]
    kube.kubectl("delete", "endpointslice", "checkout-preview-stray", "-n", ns)
    done = kube.wait_phase(ns, NAME, "Succeeded", "RolledBack", "Failed", timeout=90)
    assert done["status"]["phase"] == "Succeeded", done["status"]["message"]
    assert len(targets.under(f"{ns}/health")) == 1


def test_a_check_failing_during_the_bake_rolls_back_to_blues_pods(
    kube: Kube, cluster: LocalCluster, ns: str, targets: CheckTargets, file_hotfix: FileHotfix,
    running_operator: OperatorProcess
) -> None:
    targets.script(f"{ns}/soak", (200, "ok"), (200, "ok"), (500, "boom"))
    blue_ips = kube.pod_ips(ns, APP)
    file_with_checks(kube, file_hotfix, ns, post=[http("soak", ns, targets, "soak", count=10)], bakeSeconds=60)
    with sampler(cluster, ns) as samples:
        approve(kube, ns, NAME)
        done = kube.wait_phase(ns, NAME, "RolledBack", "Succeeded", "Failed", timeout=120)
    assert done["status"]["phase"] == "RolledBack", done["status"]["message"]
    assert "post-promotion check soak (http) failed 1 of 3" in done["status"]["message"]
    assert done["status"]["timestamps"]["promoted"] is not None
    samples.assert_never_dark()
    last = samples.observed[-1]
    assert last.ready and last.ready <= blue_ips, last
    wait_for("endpoints back on blue's pods", lambda: kube.endpoint_ips(ns, "checkout") == blue_ips)


def test_flapping_targets_pass_within_their_failure_and_error_limits(
    kube: Kube, ns: str, targets: CheckTargets, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    targets.script(f"{ns}/flaky", (500, "oops"), (200, "ok"), (200, "ok"))
    targets.script(f"{ns}/slow", "hang", "hang", (200, "ok"))
    pre = [http("flaky", ns, targets, "flaky", count=3, failureLimit=1),
           http("slow", ns, targets, "slow", count=1, consecutiveErrorLimit=2, timeoutSeconds=1)]
    file_with_checks(kube, file_hotfix, ns, pre)
    approve(kube, ns, NAME)
    done = kube.wait_phase(ns, NAME, "Succeeded", "RolledBack", "Failed", timeout=120)
    assert done["status"]["phase"] == "Succeeded", done["status"]["message"]
    states = check_states(done)
    assert (states["flaky"]["failures"], states["flaky"]["measurements"]) == (1, 3)
    assert (states["slow"]["errors"], states["slow"]["consecutiveErrors"]) == (2, 0)
    assert "no answer within 1s" in states["slow"]["lastError"]


def test_a_prometheus_value_out_of_range_rolls_back_and_no_series_is_an_error(
    kube: Kube, ns: str, targets: CheckTargets, file_hotfix: FileHotfix, running_operator: OperatorProcess,
    prometheus: LocalPrometheus
) -> None:
    series = f'checkout_error_ratio{{namespace="{ns}"}}'
    targets.metrics[series] = 0.2
    wait_for("prometheus to scrape the error ratio", lambda: prometheus.query(series))
    query = 'checkout_error_ratio{namespace="{{ namespace }}"}'
    post = [{"name": "errors", "prometheus": {"address": "main", "query": query, "max": 0.05}, "intervalSeconds": 1}]
    file_with_checks(kube, file_hotfix, ns, post=post, bakeSeconds=30)
    approve(kube, ns, NAME)
    done = kube.wait_phase(ns, NAME, "RolledBack", "Succeeded", "Failed", timeout=120)
    assert done["status"]["phase"] == "RolledBack", done["status"]["message"]
    assert "check errors (prometheus) failed" in done["status"]["message"]
    assert "last value 0.2, needed a value in [-inf, 0.05]" in done["status"]["message"]


def test_a_query_with_no_series_is_an_error_never_a_pass(
    kube: Kube, ns: str, targets: CheckTargets, file_hotfix: FileHotfix, running_operator: OperatorProcess,
    prometheus: LocalPrometheus
) -> None:
    query = 'checkout_error_ratio{namespace="{{ namespace }}", absent="yes"}'
    pre = [{"name": "errors", "prometheus": {"address": "main", "query": query, "max": 0.05}, "intervalSeconds": 1,
            "consecutiveErrorLimit": 1}]
    file_with_checks(kube, file_hotfix, ns, pre)
    approve(kube, ns, NAME)
    done = kube.wait_phase(ns, NAME, "RolledBack", "Succeeded", "Failed", timeout=120)
    assert done["status"]["phase"] == "RolledBack", done["status"]["message"]
    assert "could not be evaluated 2 times in a row" in done["status"]["message"]
    assert "no series" in done["status"]["message"]
    assert check_states(done)["errors"]["phase"] == "Error"


@pytest.mark.parametrize(("case", "url"), [
    ("metadata", "http://169.254.169.254/latest/meta-data/"),
    ("api-server", "API_SERVER/api/v1/secrets"),
    ("loopback-not-listed", "OTHER/health"),
    ("other-namespace", "http://checkout.kube-system.svc:8080/health"),
    ("name-resolving-to-loopback", "http://localhost:OTHER_PORT/health"),
])
def test_a_check_that_may_not_connect_there_is_refused_at_verifying_and_sends_nothing(
    case: str, url: str, kube: Kube, cluster: LocalCluster, ns: str, file_hotfix: FileHotfix,
    running_operator: OperatorProcess, tmp_path: Path
) -> None:
    with serving() as other:  # a listener the policy does not list: nothing may arrive here
        api = kube.core.api_client.configuration.host
        target = url.replace("API_SERVER", api).replace("OTHER_PORT", str(other.port)).replace("OTHER", other.base)
        file_hotfix(ns, rollout=FAST, checks={"prePromotion": [{"name": "probe", "http": {"url": target}}]})
        done = kube.wait_phase(ns, NAME, "Rejected", "AwaitingApproval", timeout=60)
        assert done["status"]["phase"] == "Rejected", done["status"]["message"]
        valid = condition(done, "InputValid")
        assert valid["reason"] == "CheckTargetNotAllowed", valid
        assert "check probe (prePromotion, from the release) may not connect to" in valid["message"]
        assert "Nothing was sent" in valid["message"]
        assert other.requests == [], other.requests
    assert done["status"].get("blueGreen", {}).get("blueHash") is None


def test_a_selector_moved_to_green_behind_the_operators_back_is_set_back_to_blue_and_recorded(
    kube: Kube, cluster: LocalCluster, ns: str, targets: CheckTargets, file_hotfix: FileHotfix,
    running_operator: OperatorProcess,
) -> None:
    """What the operator's own switch, written ahead of the status write that records it, leaves behind if
    the operator stops in between; here someone else's edit makes the same state, while the checks hold."""
    targets.script(f"{ns}/gate", (202, "hold on"))
    file_with_checks(kube, file_hotfix, ns, [{"name": "gate", "webhook": {"url": f"{targets.base}/{ns}/gate"},
                                             "intervalSeconds": 1}])
    approve(kube, ns, NAME)
    held = kube.wait_phase(ns, NAME, "PrePromotion", timeout=60)
    blue_hash, green_hash = held["status"]["blueGreen"]["blueHash"], held["status"]["blueGreen"]["greenHash"]
    kube.kubectl("patch", "service", "checkout", "-n", ns, "--type=merge", "-p",
                 json.dumps({"spec": {"selector": {"pod-template-hash": green_hash}}}))
    wait_for("the operator to set the selector back to blue",
             lambda: kube.selector(ns, "checkout").get("pod-template-hash") == blue_hash, timeout=15)
    noted = [e for e in kube.release(ns, NAME)["status"]["audit"] if e["action"] == "SelectorUnrecorded"]
    assert len(noted) == 1 and f"found on pod-template-hash={green_hash}," in noted[0]["detail"], noted
    assert noted[0]["detail"].endswith(f"setting it to pod-template-hash={blue_hash}"), noted
    assert kube.phase(ns, NAME) == "PrePromotion"  # the checks still decide; nothing was skipped
    warnings = kube.kubectl("get", "events", "-n", ns, "--field-selector", "reason=SelectorUnrecorded", "-o", "name")
    assert warnings.strip(), "no SelectorUnrecorded Event"

    targets.script(f"{ns}/gate", (200, "go"))
    done = kube.wait_phase(ns, NAME, "Succeeded", "RolledBack", "Failed", timeout=90)
    assert done["status"]["phase"] == "Succeeded", done["status"]["message"]
    changes = [w for w in selector_writes(cluster.audit_events(), ns, "checkout", APP) if w.changed]
    moves = recorded_moves(done["status"]["audit"])
    assert tuple(w.selector.get("pod-template-hash") for w in changes) == moves.sequence, (changes, moves)
    # blue, the edit, back to blue, the switch, the folded Deployment's pods, the original selector
    assert moves.sequence[:4] == (blue_hash, green_hash, blue_hash, green_hash) and len(moves.sequence) == 6, moves
    assert moves.sequence[-1] is None


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "checks"


def test_the_check_examples_are_valid_for_the_api_server(kube: Kube, namespace: str) -> None:
    release = yaml.safe_load((EXAMPLES / "hotfix-with-checks.yaml").read_text())
    release["metadata"]["namespace"] = namespace
    kube.kubectl("create", "--dry-run=server", "-f", "-", stdin=json.dumps(release), user="alice")
    kube.kubectl("create", "--dry-run=server", "-f", str(EXAMPLES / "policy-checks.yaml"))
    spec = Spec.model_validate(release["spec"])
    assert [c.provider for c in spec.checks.pre_promotion + spec.checks.post_promotion] == [
        "http", "http", "webhook", "prometheus", "kubernetes"]


@pytest.mark.parametrize(("check", "message"), [
    ({"name": "two", "http": {"url": "http://a"}, "kubernetes": {}}, "exactly one of http, prometheus, webhook"),
    ({"name": "both", "http": {"url": "http://a"}, "count": 2, "durationSeconds": 5}, "count or durationSeconds"),
    ({"name": "body", "http": {"url": "http://a", "body": {"jsonPath": "$.a"}}}, "needs a value"),
    ({"name": "range", "prometheus": {"address": "main", "query": "up"}}, "needs min, max or both"),
    ({"name": "Bad_Name", "http": {"url": "http://a"}}, "spec.checks.prePromotion[0].name"),
])
def test_the_api_server_refuses_a_malformed_check_with_the_reason(
    kube: Kube, namespace: str, hotfix_image: Any, check: dict[str, Any], message: str
) -> None:
    manifest = hotfix_manifest(hotfix_image.reference, checks={"prePromotion": [check]})
    # --validate=false: the API server, not kubectl's client-side check, must be the one refusing
    output = kube.apply(manifest, namespace, user="alice", check=False, validate=False)
    assert "is invalid" in output and message in output, output
    assert "NotFound" in kube.kubectl("get", "hfr", "checkout-hotfix", "-n", namespace, check=False)
