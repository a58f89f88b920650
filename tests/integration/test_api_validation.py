"""The API server refuses bad HotfixReleases with the rule's own message (CRD schema + CEL).

Each case is applied as alice, the requester, through kubectl: what a person would see. Who may
write what (filing, approving, aborting as oneself) is the admission policy's, in test_admission.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.integration.conftest import abort, approval, approve, hotfix_manifest
from tests.kube import Kube

DIGEST = "sha256:" + "ab" * 32
IMAGE = f"registry.example.com/shop/checkout@{DIGEST}"


def with_spec(**changes: Any) -> dict[str, Any]:
    manifest = hotfix_manifest(IMAGE)
    for dotted, value in changes.items():
        node = manifest["spec"]
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        if value is None:
            node.pop(leaf)
        else:
            node[leaf] = value
    return manifest


CREATE_CASES = {
    "version pattern": (with_spec(version="4.1"), "version must look like 4.1.2 or 4.1.2-hotfix.1"),
    "version with a v prefix": (with_spec(version="v4.1.2"), "version must look like 4.1.2 or 4.1.2-hotfix.1"),
    "short commit": (with_spec(commitSha="a8b1963"), "commitSha must be the full 40-character lowercase hex"),
    "uppercase commit": (
        with_spec(commitSha="A8B1963C1F0E2D3B4A5968776655443322110099"),
        "commitSha must be the full 40-character lowercase hex",
    ),
    "branch as commit": (with_spec(commitSha="main"), "commitSha must be the full 40-character lowercase hex"),
    "short justification": (
        with_spec(justification="prod is down, fix it"),
        "justification must be at least 50 characters",
    ),
    "padded justification": (with_spec(justification="fix" + " " * 60), "justification must be at least 50 characters"),
    "http ticket": (
        with_spec(ticketUrl="http://tracker.example.com/INCIDENT-123"),
        "ticketUrl must be an https:// link",
    ),
    "ticket not a URL": (with_spec(ticketUrl="INCIDENT-123"), "ticketUrl must be an https:// link"),
    "severity P2": (with_spec(severity="P2"), "severity must be P0 or P1"),
    "risk level": (with_spec(riskLevel="extreme"), "riskLevel must be low, medium or high"),
    "image by tag": (
        with_spec(artifact__image="registry.example.com/shop/checkout:4.1.2"),
        "image must be pinned by digest",
    ),
    "image tag and short digest": (
        with_spec(artifact__image="registry.example.com/shop/checkout@sha256:abc"),
        "image must be pinned by digest",
    ),
    "image without registry": (with_spec(artifact__image=f"checkout@{DIGEST}"), "image must be pinned by digest"),
    "source repository with scheme": (
        with_spec(artifact__sourceRepository="https://github.com/acme/checkout"),
        "sourceRepository must look like github.com/owner/repo",
    ),
    "evidence scheme": (
        with_spec(artifact__evidence="s3://bucket/evidence.tar.gz"),
        "artifact.evidence must be an oci:// or https:// reference",
    ),
    "target name": (with_spec(target__deployment="Checkout_App"), "must be a Kubernetes object name"),
    "preview equals active": (
        with_spec(target__previewService="checkout"),
        "target.previewService must differ from target.service",
    ),
    "approval decision": (
        with_spec(approval={"approvals": [{"approver": "bob", "decision": "LGTM"}]}),
        "decision must be Approve or Reject",
    ),
    "abort as a boolean": (with_spec(abort=True), "spec.abort in body must be of type object"),
    "abort without a reason": (with_spec(abort={"by": "alice"}), "spec.abort.reason: Required value"),
    "bake too long": (with_spec(rollout={"bakeSeconds": 100000}), "spec.rollout.bakeSeconds"),
    "deadline too short": (with_spec(rollout={"progressDeadlineSeconds": 1}), "spec.rollout.progressDeadlineSeconds"),
    "missing commit": (with_spec(commitSha=None), "spec.commitSha: Required value"),
    "missing target": (with_spec(target=None), "spec.target: Required value"),
}


@pytest.mark.parametrize("case", list(CREATE_CASES))
def test_invalid_hotfix_is_refused_on_create_with_the_rules_message(kube: Kube, namespace: str, case: str) -> None:
    manifest, message = CREATE_CASES[case]
    # --validate=false: the API server, not kubectl's client-side check, must be the one refusing
    output = kube.apply(manifest, namespace, user="alice", check=False, validate=False)
    assert "is invalid" in output, output
    assert message in output, output
    assert "NotFound" in kube.kubectl("get", "hfr", "checkout-hotfix", "-n", namespace, check=False)


def test_a_valid_hotfix_is_accepted(kube: Kube, namespace: str) -> None:
    kube.apply(hotfix_manifest(IMAGE), namespace, user="alice")
    obj = kube.release(namespace, "checkout-hotfix")
    # defaults the API server fills in; abort has none: it is absent until someone aborts
    assert "abort" not in obj["spec"]
    assert obj["spec"]["approval"] == {"approvals": []}
    assert obj["spec"]["rollout"]["autoRollback"] is True


UPDATE_CASES = {
    "version": ([{"op": "replace", "path": "/spec/version", "value": "4.1.3"}], "version is immutable"),
    "commit": ([{"op": "replace", "path": "/spec/commitSha", "value": "b" * 40}], "commitSha is immutable"),
    "justification": (
        [{"op": "replace", "path": "/spec/justification", "value": "x" * 60}],
        "justification is immutable",
    ),
    "ticket": (
        [{"op": "replace", "path": "/spec/ticketUrl", "value": "https://tracker.example.com/OTHER-1"}],
        "ticketUrl is immutable",
    ),
    "severity": ([{"op": "replace", "path": "/spec/severity", "value": "P1"}], "severity is immutable"),
    "risk": ([{"op": "replace", "path": "/spec/riskLevel", "value": "low"}], "riskLevel is immutable"),
    "requester": ([{"op": "replace", "path": "/spec/requestedBy", "value": "mallory"}], "requestedBy is immutable"),
    "target": ([{"op": "replace", "path": "/spec/target/deployment", "value": "payments"}], "target is immutable"),
    "image swap": (
        [
            {
                "op": "replace",
                "path": "/spec/artifact/image",
                "value": "registry.example.com/shop/checkout@sha256:" + "cd" * 32,
            }
        ],
        "artifact is immutable",
    ),
    "evidence added later": (
        [{"op": "add", "path": "/spec/artifact/evidence", "value": "https://e.example.com/x"}],
        "artifact is immutable",
    ),
    "rollout": ([{"op": "replace", "path": "/spec/rollout/bakeSeconds", "value": 0}], "rollout settings are immutable"),
    "approval edited": (
        [{"op": "replace", "path": "/spec/approval/approvals/0/decision", "value": "Reject"}],
        "approvals are append-only",
    ),
    "approval removed": ([{"op": "remove", "path": "/spec/approval/approvals/0"}], "approvals are append-only"),
    "abort undone": ([{"op": "remove", "path": "/spec/abort"}], "abort cannot be undone"),
    "abort reason changed": (
        [{"op": "replace", "path": "/spec/abort/reason", "value": "never mind"}],
        "abort cannot be changed or undone",
    ),
    "abort reassigned": (
        [{"op": "replace", "path": "/spec/abort/by", "value": "bob"}],
        "abort cannot be changed or undone",
    ),
    "abort turned into a boolean": (
        [{"op": "replace", "path": "/spec/abort", "value": False}],
        "spec.abort in body must be of type object",
    ),
}


@pytest.mark.parametrize("case", list(UPDATE_CASES))
def test_changes_after_creation_are_refused_except_approvals_and_abort(kube: Kube, namespace: str, case: str) -> None:
    kube.apply(hotfix_manifest(IMAGE), namespace, user="alice")
    approve(kube, namespace, "checkout-hotfix", approver="bob")
    if case.startswith("abort"):
        abort(kube, namespace, "checkout-hotfix", by="alice", reason="the incident resolved itself")
    before = kube.release(namespace, "checkout-hotfix")["spec"]
    patch, message = UPDATE_CASES[case]
    output = kube.kubectl(
        "patch",
        "hfr",
        "checkout-hotfix",
        "-n",
        namespace,
        "--type=json",
        "-p",
        json.dumps(patch),
        user="alice",
        check=False,
    )
    assert "is invalid" in output, output
    assert message in output, output
    assert kube.release(namespace, "checkout-hotfix")["spec"] == before


def test_approvals_can_be_appended_and_abort_set(kube: Kube, namespace: str) -> None:
    kube.apply(hotfix_manifest(IMAGE), namespace, user="alice")
    approve(kube, namespace, "checkout-hotfix", approver="bob")
    approve(kube, namespace, "checkout-hotfix", approver="carol", decision="Reject")
    abort(kube, namespace, "checkout-hotfix", by="alice", reason="the incident resolved itself")
    spec = kube.release(namespace, "checkout-hotfix")["spec"]
    assert spec["approval"]["approvals"] == [approval(kube, "bob"), approval(kube, "carol", decision="Reject")]
    assert spec["abort"] == {"by": "alice", "reason": "the incident resolved itself"}


def test_a_new_hotfix_cannot_be_aborted_already(kube: Kube, namespace: str) -> None:
    output = kube.apply(with_spec(abort={"by": "alice", "reason": "just in case"}), namespace, user="alice",
                        check=False)
    assert "Error from server (Forbidden)" in output, output
    assert "a new HotfixRelease cannot be aborted already" in output, output
    assert "NotFound" in kube.kubectl("get", "hfr", "checkout-hotfix", "-n", namespace, check=False)


def test_a_user_without_rights_cannot_file_or_approve(kube: Kube, namespace: str) -> None:
    output = kube.apply(hotfix_manifest(IMAGE, requestedBy="mallory"), namespace, user="mallory", check=False)
    assert "forbidden" in output.lower(), output
    kube.apply(hotfix_manifest(IMAGE), namespace, user="alice")
    output = kube.kubectl(
        "patch",
        "hfr",
        "checkout-hotfix",
        "-n",
        namespace,
        "--type=json",
        "-p",
        json.dumps([{"op": "add", "path": "/spec/approval/approvals/-", "value": approval(kube, "mallory")}]),
        user="mallory",
        check=False,
    )
    assert 'User "mallory" cannot get resource "hotfixreleases"' in output, output  # RBAC, before admission


def test_printer_columns_show_phase_version_target_approvals(kube: Kube, namespace: str) -> None:
    kube.apply(hotfix_manifest(IMAGE), namespace, user="alice")
    header = kube.kubectl("get", "hfr", "-n", namespace).splitlines()[0]
    assert re.split(r"\s{2,}", header.strip()) == ["NAME", "PHASE", "VERSION", "TARGET", "APPROVALS", "WAITING FOR",
                                                    "AGE"]
    assert "checkout-hotfix" in kube.kubectl("get", "hotfix", "-n", namespace)  # the category


def policy(**provenance: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"allowedBuilders": ["https://ci.example.com/b"],
                            "allowedSourceRepositories": ["github.com/acme/checkout"], **provenance}
    return {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": "invalid-policy"},
            "spec": {"namespaceSelector": {}, "provenance": {k: v for k, v in spec.items() if v is not None}}}


KEY = {"name": "release", "publicKey": "-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----\n"}
POLICY_CASES = {
    "no signer at all": (policy(), "provenance needs at least one trusted key or keyless identity"),
    "keyless without a pinned root": (policy(keylessIdentities=[{"issuer": {"exact": "https://issuer"},
                                                                 "subject": {"exact": "s"}}]),
                                      "keyless identities need a pinned trustedRoot"),
    "a key with two sources": (policy(trustedKeys=[{**KEY, "configMapKeyRef": {"name": "k", "key": "k"}}]),
                               "each trusted key needs exactly one of publicKey, configMapKeyRef or secretKeyRef"),
    "identity both exact and regex": (policy(trustedKeys=[KEY], keylessIdentities=[
        {"issuer": {"exact": "https://issuer", "regex": ".*"}, "subject": {"exact": "s"}}],
        trustedRoot={"configMapKeyRef": {"name": "r", "key": "r"}}), "give exactly one of exact or regex"),
    "no allowed builder": (policy(trustedKeys=[KEY], allowedBuilders=[]), "spec.provenance.allowedBuilders"),
    "github with neither token nor app": ({**policy(trustedKeys=[KEY]), "spec": {
        **policy(trustedKeys=[KEY])["spec"], "github": {"apiUrl": "https://github.example.com/api/v3"}}},
        "github needs exactly one of tokenSecretRef or app"),
}


@pytest.mark.parametrize("case", list(POLICY_CASES))
def test_an_invalid_hotfix_policy_is_refused_with_the_rules_message(kube: Kube, case: str) -> None:
    manifest, message = POLICY_CASES[case]
    output = kube.apply(manifest, "default", check=False, validate=False)
    assert "is invalid" in output, output
    assert message in output, output


def test_a_requester_cannot_write_policies(kube: Kube) -> None:
    output = kube.apply(policy(trustedKeys=[KEY]), "default", user="alice", check=False)
    assert "forbidden" in output.lower()
