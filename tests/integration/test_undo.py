"""Undo after success on the real control plane: spec.undo puts the version that ran before back through
the blue-green path in reverse (traffic judged on the EndpointSlices the controller-manager computes);
refused undos change nothing; a killed operator still ends Undone with the published record told once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from localcluster.cluster import LocalCluster
from localcluster.signing import LocalSigner
from tests.integration.conftest import POLICY_LABEL, FileHotfix, OperatorProcess, approval, approve, whoami
from tests.integration.github_fixtures import (  # noqa: F401  (fixtures)
    GitHubNamespace,
    followup_operator,
    github,
    github_namespace,
    github_spec,
    seeder,
    signed_image_for,
)
from tests.kube import Kube, wait_for
from tests.publishing.builders import CheckoutSeeder
from tests.support.api_as import Answer, ApiAs
from tests.support.check_targets import CheckTargets, serving
from tests.support.cutover import APP, assert_original_shape, condition, pods_by_hash
from tests.support.github_server import LoopbackGitHub
from tests.support.traffic import EndpointSampler

NAME = "checkout-hotfix"
ROLLOUT = {"progressDeadlineSeconds": 60, "bakeSeconds": 4, "scaleDownDelaySeconds": 1}
ApiFor = Callable[[str], ApiAs]


def undo_by(by: str, reason: str = "p99 latency doubled since the hotfix") -> dict[str, Any]:
    return {"spec": {"undo": {"by": by, "reason": reason}}}


def undo(kube: Kube, namespace: str, by: str = "alice", reason: str = "p99 latency doubled since the hotfix") -> None:
    """Set spec.undo as `by` (the requester or an approver), naming `by` as admission requires."""
    patch = undo_by(whoami(kube, by).username, reason)
    kube.kubectl("patch", "hfr", NAME, "-n", namespace, "--type=merge", "-p", json.dumps(patch), user=by)


def succeeded(kube: Kube, namespace: str, file_hotfix: FileHotfix, **spec: Any) -> dict[str, Any]:
    file_hotfix(namespace, rollout=ROLLOUT, **spec)
    kube.wait_phase(namespace, NAME, "AwaitingApproval")
    approve(kube, namespace, NAME)
    done = kube.wait_phase(namespace, NAME, "Succeeded", "RolledBack", "Failed", "Rejected")
    assert done["status"]["phase"] == "Succeeded", done["status"]["message"]
    return done


def image_of(kube: Kube, namespace: str) -> str:
    return str(kube.apps.read_namespaced_deployment("checkout", namespace).spec.template.spec.containers[0].image)


def deployments(kube: Kube, namespace: str) -> list[str]:
    return sorted(d.metadata.name for d in kube.apps.list_namespaced_deployment(namespace).items)


def refused(answer: Answer, code: int, message: str) -> None:
    assert answer.code == code, answer
    assert message in answer.message, answer.message


def test_an_undo_after_success_puts_the_previous_version_back_through_the_same_safe_path(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    ns = quickstart
    previous = image_of(kube, ns)
    done = succeeded(kube, ns, file_hotfix)
    hotfix = done["spec"]["artifact"]["image"]
    assert image_of(kube, ns) == hotfix
    bg = done["status"]["blueGreen"]
    assert (bg["blueImage"], bg["blueRevision"]) == (previous, "1")  # recorded at Deploying
    with EndpointSampler(kube.cluster.kubeconfig, ns, "checkout", NAME) as sampler:
        undo(kube, ns, "alice")
        on_previous = wait_for("traffic on the previous version", lambda: (
            obj if (obj := kube.release(ns, NAME))["status"].get("undo", {}).get("times", {}).get("switched")
            else None), timeout=60)
        helper = on_previous["status"]["undo"]["blueGreen"]
        previous_ips = pods_by_hash(kube, ns)[helper["greenHash"]]
        assert len(previous_ips) == 3
        assert kube.endpoint_ips(ns, "checkout") == previous_ips, "the active Service serves the previous pods"
        pods = kube.core.list_namespaced_pod(ns, label_selector=f"pod-template-hash={helper['greenHash']}").items
        assert {p.spec.containers[0].image for p in pods} == {previous}
        assert kube.pod_ips(ns, {**APP, "pod-template-hash": helper["blueHash"]}), "the hotfix is kept warm"
        finished = kube.wait_phase(ns, NAME, "Undone", "UndoFailed", timeout=90)
    sampler.assert_never_dark()
    status = finished["status"]
    assert status["phase"] == "Undone", status["message"]
    assert_original_shape(kube, ns, previous)
    assert status["blueGreen"] == bg, "the forward record (what the evidence was built from) is untouched"
    assert status["undo"]["previousImage"] == previous and status["undo"]["by"] == "alice"
    actions = [a["action"] for a in status["audit"]]
    assert actions[actions.index("Succeeded"):] == [
        "Succeeded", "Undoing", "PreviousAvailable", "TrafficSwitched", "UndoBakePassed", "TrafficSwitched", "Undone"]
    assert condition(finished, "Undone")["status"] == "True"
    assert condition(finished, "Ready")["status"] == "True"
    events = kube.core.list_namespaced_event(ns, field_selector="involvedObject.kind=HotfixRelease").items
    assert any(e.reason == "UndoRequested" and e.message.startswith("alice:") for e in events), "names undo.by"
    assert any(e.reason == "Undone" and "undone for alice" in e.message for e in events)
    metrics = httpx.get(f"http://127.0.0.1:{running_operator.metrics_port}/metrics", timeout=5).text
    assert f'hotfix_undos_total{{namespace="{ns}",outcome="Undone"}} 1.0' in metrics
    assert f'hotfix_undo_to_previous_seconds_count{{namespace="{ns}"}} 1.0' in metrics


def test_undos_the_api_server_refuses_change_nothing(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess, api_as: ApiFor
) -> None:
    ns = quickstart
    file_hotfix(ns, rollout=ROLLOUT)
    kube.wait_phase(ns, NAME, "AwaitingApproval")
    refused(api_as("alice").patch(ns, NAME, undo_by("alice")), 422,
            "spec.undo can be set only once the hotfix has Succeeded; to stop a release under way, set spec.abort")
    approve(kube, ns, NAME)
    done = kube.wait_phase(ns, NAME, "Succeeded", "RolledBack", "Failed", "Rejected")
    hotfix = done["spec"]["artifact"]["image"]
    # mallory holds no role at all: RBAC refuses before admission is asked
    refused(api_as("mallory").patch(ns, NAME, undo_by("mallory")), 403, 'User "mallory" cannot patch resource')
    refused(api_as("alice").patch(ns, NAME, undo_by("bob")), 403, "undo.by must be your own user name, alice")
    assert "undo" not in kube.release(ns, NAME)["spec"]
    undo(kube, ns, "bob")  # an approver may
    kube.wait_phase(ns, NAME, "Undoing", "Undone", "UndoFailed")
    # twice: changed, withdrawn
    refused(api_as("bob").patch(ns, NAME, undo_by("bob", "another reason")), 422,
            "undo is set once and cannot be changed")
    refused(api_as("bob").patch(ns, NAME, [{"op": "remove", "path": "/spec/undo"}]), 422,
            "undo cannot be withdrawn once set")
    assert kube.release(ns, NAME)["spec"]["undo"]["reason"] == "p99 latency doubled since the hotfix"
    finished = kube.wait_phase(ns, NAME, "Undone", "UndoFailed", timeout=90)
    assert finished["status"]["phase"] == "Undone"
    assert hotfix != image_of(kube, ns)


def test_a_new_release_cannot_carry_an_undo(kube: Kube, namespace: str, file_hotfix: FileHotfix) -> None:
    with pytest.raises(AssertionError, match="a new HotfixRelease cannot be undone already"):
        file_hotfix(namespace, undo={"by": "alice", "reason": "never mind"})


@pytest.fixture
def short_window(kube: Kube, namespace: str, test_policy: str) -> Iterator[str]:
    """A HotfixPolicy like the test one whose undo window is 6 s, governing `namespace` alone."""
    base = kube.custom.get_cluster_custom_object("hotfix.dev", "v1alpha1", "hotfixpolicies", test_policy)
    name = f"undo-{namespace}"[:63]
    spec = {**base["spec"], "namespaceSelector": {"matchLabels": {POLICY_LABEL: name}},
            "undo": {"windowSeconds": 6}}
    kube.apply({"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": name},
                "spec": spec}, "default")
    kube.kubectl("label", "namespace", namespace, f"{POLICY_LABEL}={name}", "--overwrite")
    yield namespace
    kube.kubectl("delete", "hotfixpolicy", name, "--wait=false", check=False)


def test_an_undo_after_the_window_is_refused_by_the_operator_and_changes_nothing(
    kube: Kube, short_window: str, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    ns = quickstart
    done = succeeded(kube, ns, file_hotfix)
    assert done["status"]["undoWindowSeconds"] == 6
    hotfix = done["spec"]["artifact"]["image"]
    # the operator cannot mark the window closed while it is stopped, so only it can refuse this undo
    running_operator.pause()
    try:
        time.sleep(7)
        undo(kube, ns, "alice")
    finally:
        running_operator.resume()
    refusal = wait_for("the operator's judgement of the undo", lambda: (
        obj if condition(obj := kube.release(ns, NAME), "Undone") else None))
    status = refusal["status"]
    assert condition(refusal, "Undone")["reason"] == "UndoWindowClosed", status
    assert status["phase"] == "Succeeded" and status["undo"]["decision"] == "Refused"
    message = condition(refusal, "Undone")["message"]
    assert "undo by alice refused" in message and "file a new HotfixRelease" in message
    time.sleep(2)
    assert image_of(kube, ns) == hotfix and deployments(kube, ns) == ["checkout"]
    assert kube.selector(ns, "checkout") == APP
    assert [a["action"] for a in kube.release(ns, NAME)["status"]["audit"]].count("UndoRefused") == 1


def test_once_the_window_closed_the_api_server_refuses_an_undo(
    kube: Kube, short_window: str, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess,
    api_as: ApiFor
) -> None:
    ns = quickstart
    succeeded(kube, ns, file_hotfix)
    wait_for("the window marked closed", lambda: kube.release(ns, NAME)["status"].get("undoWindowClosed"), timeout=30)
    refused(api_as("alice").patch(ns, NAME, undo_by("alice")), 422, "the undo window of this hotfix has closed; "
            "file a new HotfixRelease")
    assert "undo" not in kube.release(ns, NAME)["spec"]


@pytest.fixture
def undo_approvals(kube: Kube, namespace: str, test_policy: str) -> Iterator[str]:
    """A HotfixPolicy like the test one that wants one approval for an undo, governing `namespace` alone."""
    base = kube.custom.get_cluster_custom_object("hotfix.dev", "v1alpha1", "hotfixpolicies", test_policy)
    name = f"undo-approvals-{namespace}"[:63]
    spec = {**base["spec"], "namespaceSelector": {"matchLabels": {POLICY_LABEL: name}},
            "undo": {"approvalsRequired": 1}}
    kube.apply({"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": name},
                "spec": spec}, "default")
    kube.kubectl("label", "namespace", namespace, f"{POLICY_LABEL}={name}", "--overwrite")
    yield namespace
    kube.kubectl("delete", "hotfixpolicy", name, "--wait=false", check=False)


def add_undo_approval(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"op": "add", "path": "/spec/undo/approvals/-", "value": entry}]


def test_an_undo_the_policy_wants_approved_waits_for_an_approver_other_than_its_requester(
    kube: Kube, undo_approvals: str, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess,
    api_as: ApiFor
) -> None:
    ns = quickstart
    previous = image_of(kube, ns)
    done = succeeded(kube, ns, file_hotfix)
    assert done["status"]["undoApprovalsRequired"] == 1
    hotfix = done["spec"]["artifact"]["image"]
    refused(api_as("alice").patch(ns, NAME, {"spec": {"undo": {**undo_by("alice")["spec"]["undo"],
                                                              "approvals": [approval(kube, "bob")]}}}), 403,
            "spec.undo is set without approvals; approvers add theirs to spec.undo.approvals once it is set")
    undo(kube, ns, "alice")
    waiting = wait_for("the undo waiting for its approval", lambda: (
        obj if condition(obj := kube.release(ns, NAME), "UndoApproved") else None), timeout=30)
    status = waiting["status"]
    assert status["phase"] == "Succeeded" and status["undo"]["decision"] == "AwaitingApproval", status
    hint = condition(waiting, "UndoApproved")
    assert hint["reason"] == "UndoNeedsApproval", hint
    assert f"kubectl hotfix approve {NAME} -n {ns} --undo" in hint["message"]
    assert status["waitingFor"] == "1 approval(s) of the undo from someone other than alice"
    # forged, self and duplicate approvals: each refused by the API server, nothing changes
    refused(api_as("mallory").patch(ns, NAME, add_undo_approval(approval(kube, "mallory"))), 403,
            'User "mallory" cannot patch resource')
    refused(api_as("alice").patch(ns, NAME, add_undo_approval(approval(kube, "bob"))), 403,
            "an undo approval must name its author: you are alice, so set approver: alice")
    refused(api_as("alice").patch(ns, NAME, add_undo_approval(approval(kube, "alice"))), 403,
            "alice requested this undo and cannot approve or reject it; ask another approver")
    refused(api_as("bob").patch(ns, NAME, add_undo_approval(approval(kube, "bob"))
                                + add_undo_approval(approval(kube, "carol"))), 403,
            "add one undo approval per request, your own")
    refused(api_as("bob").patch(ns, NAME, add_undo_approval({**approval(kube, "bob"), "groups": ["hotfix:admins"]})),
            403, "an undo approval records the groups of its author exactly as the API server sees them")
    time.sleep(2)
    assert kube.release(ns, NAME)["spec"]["undo"]["approvals"] == []
    assert kube.release(ns, NAME)["status"]["phase"] == "Succeeded"
    assert image_of(kube, ns) == hotfix and deployments(kube, ns) == ["checkout"]
    # bob approves the undo with the plugin, as himself
    plugin = Path(sys.executable).parent / "kubectl-hotfix"
    ran = subprocess.run([str(plugin), "--kubeconfig", str(kube.cluster.user_kubeconfig("bob")), "approve", NAME,
                          "-n", ns, "--undo", "--comment", "the old version is known good"],
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert "undo approved by bob" in ran.stdout
    finished = kube.wait_phase(ns, NAME, "Undone", "UndoFailed", timeout=90)
    status = finished["status"]
    assert status["phase"] == "Undone", status["message"]
    assert_original_shape(kube, ns, previous)
    assert status["undo"]["approvedBy"] == ["bob"] and "waitingFor" not in status
    assert condition(finished, "UndoApproved")["status"] == "True"
    undoing = next(a for a in status["audit"] if a["action"] == "Undoing")
    assert undoing["actor"] == "bob" and "approved by bob" in undoing["detail"]
    assert [a["action"] for a in status["audit"]].count("UndoApproved") == 1


@pytest.fixture
def checked_policy(kube: Kube, namespace: str, test_policy: str) -> Iterator[tuple[str, CheckTargets]]:
    """A HotfixPolicy like the test one that lets checks reach a loopback target, governing `namespace` alone."""
    with serving() as target:
        base = kube.custom.get_cluster_custom_object("hotfix.dev", "v1alpha1", "hotfixpolicies", test_policy)
        name = f"undo-checks-{namespace}"[:63]
        spec = {**base["spec"], "namespaceSelector": {"matchLabels": {POLICY_LABEL: name}},
                "checks": {"allowedHosts": [f"127.0.0.1:{target.port}"]}}
        kube.apply({"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": name},
                    "spec": spec}, "default")
        kube.kubectl("label", "namespace", namespace, f"{POLICY_LABEL}={name}", "--overwrite")
        yield namespace, target
        kube.kubectl("delete", "hotfixpolicy", name, "--wait=false", check=False)


def test_a_post_promotion_check_failing_during_the_undos_bake_leaves_the_hotfix_serving(
    kube: Kube, checked_policy: tuple[str, CheckTargets], quickstart: str, file_hotfix: FileHotfix,
    running_operator: OperatorProcess
) -> None:
    ns, target = quickstart, checked_policy[1]
    # the same check answers the hotfix's green with 200 and the previous version's helper with 500
    target.script(f"{ns}/checkout-hotfix-", (200, "ok"))
    target.script(f"{ns}/checkout-undo-", (200, "ok"), (500, "errors doubled"))
    post = [{"name": "errors", "http": {"url": f"{target.base}/{ns}/{{{{ greenDeployment }}}}"}, "count": 3,
             "intervalSeconds": 1}]
    done = succeeded(kube, ns, file_hotfix, checks={"postPromotion": post})
    hotfix = done["spec"]["artifact"]["image"]
    hotfix_hash = done["status"]["blueGreen"]["foldedHash"]
    with EndpointSampler(kube.cluster.kubeconfig, ns, "checkout", NAME) as sampler:
        undo(kube, ns, "alice")
        finished = kube.wait_phase(ns, NAME, "Undone", "UndoFailed", timeout=90)
    sampler.assert_never_dark()
    status = finished["status"]
    assert status["phase"] == "UndoFailed", status["message"]
    assert "post-promotion check errors (http) failed" in status["message"]
    assert "moving traffic back to the hotfix" in status["message"]
    assert status["undo"]["times"].get("switched"), "the check failed during the undo's bake, after the switch"
    # production is as the hotfix left it: its image, its pods behind the active Service, no helper
    assert image_of(kube, ns) == hotfix and deployments(kube, ns) == ["checkout"]
    assert kube.selector(ns, "checkout") == APP
    wait_for("the hotfix's pods serving", lambda: kube.endpoint_ips(ns, "checkout") == pods_by_hash(kube, ns).get(
        hotfix_hash), timeout=30)
    checks = {c["name"]: c for c in status["undo"]["checks"]}
    assert checks["errors"]["phase"] == "Failed" and checks["errors"]["stage"] == "postPromotion"
    assert [c["phase"] for c in status["checks"]] == ["Passed"], "the hotfix's own run is kept"
    assert len(target.under(f"{ns}/checkout-undo-")) >= 2
    assert condition(finished, "UndoChecks")["status"] == "False"


UPDATE_RELEASE = ("PATCH", "/repos/{owner}/{repo}/releases/{release_id}")
CREATE_COMMENT = ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
UNDO_MARKER = "<!-- hotfix-operator: undone -->"


@pytest.fixture
def on_github(kube: Kube, signer: LocalSigner, github: LoopbackGitHub, seeder: CheckoutSeeder,  # noqa: F811
              quickstart: str) -> Iterator[GitHubNamespace]:
    yield from github_namespace(kube, signer, github, seeder, quickstart)


def test_killing_the_operator_mid_undo_still_ends_undone_with_the_release_notes_and_post_mortem_told_once(
    kube: Kube, cluster: LocalCluster, signer: LocalSigner, on_github: GitHubNamespace,
    followup_operator: OperatorProcess,  # noqa: F811
) -> None:
    ns, gh, repo = on_github.namespace, on_github.github, on_github.repo
    previous = image_of(kube, ns)
    on_github.file_hotfix(kube, signed_image_for(cluster, signer, repo, "undo-killed"))
    kube.wait_phase(ns, NAME, "AwaitingApproval")
    approve(kube, ns, NAME)
    kube.wait_phase(ns, NAME, "Succeeded", "Failed", "RolledBack", timeout=120)
    wait_for("the release published", lambda: condition(kube.release(ns, NAME), "Released").get("status") == "True",
             timeout=120)
    notes_writes, comment_writes = gh.writes(*UPDATE_RELEASE), gh.writes(*CREATE_COMMENT)
    undo(kube, ns, "alice", "checkout errors doubled an hour after the hotfix")
    # SIGKILL it at each step of the undo as it is first seen, and right after the notes and the post-mortem
    # pull request's comment are written
    killed: set[str] = set()
    deadline = time.monotonic() + 180
    while True:
        assert time.monotonic() < deadline, kube.release(ns, NAME)["status"].get("message")
        status = kube.release(ns, NAME)["status"]
        step = (status.get("undo") or {}).get("step", "")
        mark = f"{status['phase']}/{step}"
        if gh.writes(*UPDATE_RELEASE) > notes_writes and "notes" not in killed:
            mark = "notes"
        if gh.writes(*CREATE_COMMENT) > comment_writes and "comment" not in killed:
            mark = "comment"
        if mark not in killed and mark != "Succeeded/":
            killed.add(mark)
            followup_operator.kill()
            followup_operator.start()
        now = kube.release(ns, NAME)
        if all(condition(now, c).get("status") == "True" for c in ("UndoPublished", "UndoPostmortemNoted")):
            break
        time.sleep(0.05)
    assert {"Undoing/Previous", "Undoing/Switch", "notes", "comment"} <= killed, killed
    done = kube.wait_phase(ns, NAME, "Undone", "UndoFailed", timeout=60)
    assert done["status"]["phase"] == "Undone", done["status"]["message"]
    assert_original_shape(kube, ns, previous)
    time.sleep(3)  # a restarted operator has had time to repeat anything it would
    hosted = repo.hosted
    releases = [r for r in hosted.releases.values() if r.tag_name == "v4.1.2-hotfix.1"]
    assert len(releases) == 1
    body = releases[0].body or ""
    assert body.count(UNDO_MARKER) == 1, body
    assert "by alice because:** checkout errors doubled an hour after the hotfix" in body
    assert f"`{previous}` again" in body
    assert hosted.git.resolve("refs/tags/v4.1.2-hotfix.1^{commit}") == repo.hotfix_commit, "the tag stays"
    status = kube.release(ns, NAME)["status"]
    assert [a["action"] for a in status["audit"]].count("UndoNoted") == 1
    # the post-mortem placeholder's pull request is told once, with the same line
    number = status["postmortem"]["number"]
    told = [c for c in hosted.comments if c.issue_number == number]
    assert len(told) == 1, [c.body for c in told]
    assert told[0].body.startswith(UNDO_MARKER) and "by alice because:** checkout errors doubled" in told[0].body
    assert status["postmortem"]["undoComment"].endswith(f"/pull/{number}#issuecomment-{told[0].id}")
    assert [a["action"] for a in status["audit"]].count("UndoPostmortemNoted") == 1
