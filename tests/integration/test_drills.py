"""Drills (spec.drill) on the real control plane: the real path up to the pre-promotion checks, with
the active Service's EndpointSlices on blue throughout (sampled), green removed and the original
selectors restored at the end, DrillPassed with each stage's time against the SLA budget; a failing
pre-promotion check ends DrillFailed; `kubectl hotfix drill` files one as alice.

The checks' answers come from a loopback server the test scripts (kwok pods run nothing), which the
drills HotfixPolicy lists in checks.allowedHosts (as tests/integration/test_checks.py does)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcluster.cluster import LocalCluster
from localcluster.oci import PushedImage
from localcluster.signing import LOCAL_BUILDER, LocalSigner
from tests.integration.conftest import POLICY_LABEL, FileHotfix, OperatorProcess, with_local_registry
from tests.kube import Kube, wait_for
from tests.support.check_targets import CheckTargets, serving
from tests.support.cutover import APP
from tests.support.releases import COMMIT, SOURCE
from tests.support.traffic import EndpointSampler

NAME = "checkout-drill"
FAST = {"progressDeadlineSeconds": 60, "bakeSeconds": 2, "scaleDownDelaySeconds": 1}
PLUGIN = Path(sys.executable).parent / "kubectl-hotfix"
ENDED = ("DrillPassed", "DrillFailed", "Succeeded", "RolledBack", "Rejected", "Failed")


@pytest.fixture(scope="module")
def targets() -> Iterator[CheckTargets]:
    with serving() as server:
        yield server


@pytest.fixture(scope="module")
def drills_policy(kube: Kube, signer: LocalSigner, targets: CheckTargets) -> Iterator[str]:
    """A HotfixPolicy for namespaces labelled policy=drills: the test's signing key, the loopback check
    targets allowed, and the default drill rule (approvals not required)."""
    policy = {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": "drills"},
              "spec": with_local_registry({"namespaceSelector": {"matchLabels": {POLICY_LABEL: "drills"}},
                       "provenance": {"trustedKeys": [{"name": "release", "publicKey": signer.public_pem}],
                                      "requireTransparencyLog": False,
                                      "allowedBuilders": [LOCAL_BUILDER], "allowedSourceRepositories": [SOURCE]},
                       "checks": {"allowedHosts": [f"127.0.0.1:{targets.port}"]}}, kube.cluster.registry_host)}
    kube.apply(policy, "default")
    yield "drills"
    kube.kubectl("delete", "hotfixpolicy", "drills", "--wait=false", check=False)


@pytest.fixture
def ns(kube: Kube, quickstart: str, drills_policy: str) -> str:
    kube.kubectl("label", "namespace", quickstart, f"{POLICY_LABEL}=drills", "--overwrite")
    return quickstart


def health(ns: str, targets: CheckTargets, count: int = 3) -> dict[str, Any]:
    url = f"{targets.base}/{ns}/health?hash={{{{ greenPodHash }}}}&via={{{{ previewService }}}}"
    return {"name": "health", "http": {"url": url}, "intervalSeconds": 1, "count": count}


def selectors(kube: Kube, ns: str) -> dict[str, dict[str, str]]:
    return {name: kube.selector(ns, name) for name in ("checkout", "checkout-preview")}


def greens(kube: Kube, ns: str) -> list[Any]:
    return list(kube.apps.list_namespaced_deployment(ns, label_selector="hotfix.dev/role=green").items)


def test_a_drill_checks_green_beside_blue_removes_it_and_reports_its_stages(
    kube: Kube, cluster: LocalCluster, ns: str, targets: CheckTargets, file_hotfix: FileHotfix,
    running_operator: OperatorProcess
) -> None:
    targets.script(f"{ns}/health", (200, "ok"))
    blue_ips, before = kube.pod_ips(ns, APP), selectors(kube, ns)
    with EndpointSampler(cluster.kubeconfig, ns, "checkout", NAME) as samples:
        file_hotfix(ns, NAME, drill=True, rollout=FAST, checks={"prePromotion": [health(ns, targets)]})
        done = kube.wait_phase(ns, NAME, *ENDED, timeout=120)
    status = done["status"]
    assert status["phase"] == "DrillPassed", status["message"]
    # the real path, no approval (the policy's default for drills), stopped before any switch
    # (from the audit trail: with an instant check, PrePromotion can last less than a sampling interval)
    entered = [e["action"] for e in status["audit"]]
    assert "PrePromotion" in entered and "DrillEnding" in entered and "Promoted" not in entered, entered
    assert "Promoted" not in {s.phase for s in samples.observed}
    assert any(e["action"] == "DrillApprovalSkipped" for e in status["audit"])
    assert status["timestamps"].get("promoted") is None and "tag" not in status
    assert [c["phase"] for c in status["checks"]] == ["Passed"]
    green_hash = status["blueGreen"]["greenHash"]
    assert all(f"hash={green_hash}" in r.query and "via=checkout-preview" in r.query
               for r in targets.under(f"{ns}/health"))
    # every sampled instant: only blue's pods behind the active Service
    assert any(s.green_exists for s in samples.observed), "the sampler never saw green"
    for s in samples.observed:
        assert s.ready and s.ready <= blue_ips, f"{s}: an endpoint that is not blue's"
    samples.assert_never_dark()
    # green gone, both Services exactly as they were
    assert not greens(kube, ns) and selectors(kube, ns) == before
    wait_for("endpoints on blue's pods", lambda: kube.endpoint_ips(ns, "checkout") == blue_ips)
    # stage times against the 30-minute budget
    stages = {st["name"]: st for st in status["drill"]["stages"]}
    assert {n: st["budgetSeconds"] for n, st in stages.items()} == {
        "detection": 300, "fix": 600, "review": 300, "gatesAndDeployment": 480, "verification": 120}
    assert "seconds" not in stages["detection"] and "not measured" in stages["detection"]["note"]
    assert stages["review"]["seconds"] == 0
    for name in ("gatesAndDeployment", "verification"):  # whole seconds: either can take under one here
        assert stages[name]["seconds"] >= 0 and stages[name]["withinBudget"] is True, stages[name]
    assert status["drill"]["outcome"] == "Passed"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


def test_a_drill_whose_pre_promotion_check_fails_ends_drill_failed(
    kube: Kube, cluster: LocalCluster, ns: str, targets: CheckTargets, file_hotfix: FileHotfix,
    running_operator: OperatorProcess
) -> None:
    targets.script(f"{ns}/health", (503, "degraded"))
    blue_ips, before = kube.pod_ips(ns, APP), selectors(kube, ns)
    with EndpointSampler(cluster.kubeconfig, ns, "checkout", NAME) as samples:
        file_hotfix(ns, NAME, drill=True, rollout=FAST, checks={"prePromotion": [health(ns, targets, 2)]})
        done = kube.wait_phase(ns, NAME, *ENDED, timeout=120)
    status = done["status"]
    assert status["phase"] == "DrillFailed", status["message"]
    assert "pre-promotion check health (http) failed" in status["message"]
    assert status["drill"]["outcome"] == "Failed" and status["drill"]["reason"] == "CheckFailed"
    assert "RollingBack" not in {s.phase for s in samples.observed}
    for s in samples.observed:
        assert s.ready and s.ready <= blue_ips, f"{s}: an endpoint that is not blue's"
    assert not greens(kube, ns) and selectors(kube, ns) == before


def test_kubectl_hotfix_drill_files_one_as_alice(
    kube: Kube, cluster: LocalCluster, ns: str, hotfix_image: PushedImage, running_operator: OperatorProcess
) -> None:
    assert PLUGIN.exists(), f"{PLUGIN} is missing: pip install -e . installs the console script"
    done = subprocess.run(
        [str(PLUGIN), "--kubeconfig", str(cluster.user_kubeconfig("alice")), "drill", NAME, "-n", ns,
         "--target", "checkout", "--container", "app", "--preview-service", "checkout-preview",
         "--image", hotfix_image.reference, "--commit", COMMIT, "--source-repo", SOURCE,
         "--progress-deadline-seconds", "60"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"hotfixrelease.hotfix.dev/{NAME} drill created in {ns} as alice"), done.stdout
    obj = kube.wait_phase(ns, NAME, *ENDED, timeout=120)
    assert obj["spec"]["drill"] is True and obj["spec"]["requestedBy"] == "alice"
    assert obj["status"]["phase"] == "DrillPassed", obj["status"]["message"]
    assert not greens(kube, ns)
