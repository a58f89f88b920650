"""Who may file, approve and abort a HotfixRelease is decided by the API server from the caller's
authenticated identity and RBAC (crds/admission.yaml), never from a name typed into the object.

Every case acts as a real local identity through its kubeconfig (people: client certificates whose
O entries are their groups; service accounts: certificates issued the way the API server names
them) and reads the API server's own answer: the status code, the reason and the message. A refused
write must leave the release exactly as it was. No test needs the operator: admission alone decides."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster.identities import SECURITY_GROUP, SERVICE_ACCOUNTS
from tests.integration.conftest import abort, approval, approve, hotfix_manifest
from tests.kube import Kube
from tests.support.api_as import Answer, ApiAs

ApiFor = Callable[[str], ApiAs]

NAME = "checkout-hotfix"
IMAGE = "registry.example.com/shop/checkout@sha256:" + "ab" * 32
FLUX = SERVICE_ACCOUNTS["kustomize-controller"].username
THROUGH = "hotfix.dev/requested-through"
POLICY = "ValidatingAdmissionPolicy 'hotfix-operator-approvals' with binding 'hotfix-operator-approvals' denied request"
GITOPS = Path(__file__).resolve().parents[2] / "examples" / "gitops"


def forbidden(answer: Answer, message: str) -> None:
    """The policy refused with exactly `message` (HTTP 403, reason Forbidden)."""
    assert (answer.code, answer.reason) == (403, "Forbidden"), answer
    assert answer.message == f'hotfixreleases.hotfix.dev "{NAME}" is forbidden: {POLICY}: {message}', answer.message


def rbac_forbidden(answer: Answer, user: str, verb: str, namespace: str) -> None:
    """RBAC refused before admission was asked."""
    assert (answer.code, answer.reason) == (403, "Forbidden"), answer
    assert answer.message == (f'hotfixreleases.hotfix.dev "{NAME}" is forbidden: User "{user}" cannot {verb} resource '
                              f'"hotfixreleases" in API group "hotfix.dev" in the namespace "{namespace}"')


def invalid(answer: Answer, rule_message: str) -> None:
    """The CRD's own rule refused it (HTTP 422, reason Invalid), before admission was asked."""
    assert (answer.code, answer.reason) == (422, "Invalid"), answer
    assert rule_message in answer.message, answer.message


def release(requested_by: str = "alice", through: str | None = None, **spec: Any) -> dict[str, Any]:
    manifest = hotfix_manifest(IMAGE, NAME, requestedBy=requested_by, **spec)
    if through:
        manifest["metadata"]["annotations"] = {THROUGH: through}
    return manifest


def add(*entries: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"op": "add", "path": "/spec/approval/approvals/-", "value": entry} for entry in entries]


def abort_by(by: str) -> dict[str, Any]:
    return {"spec": {"abort": {"by": by, "reason": "error rate is up"}}}


class Release:
    """One filed release and what a refusal must leave of it."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace
        self.before = self.now()

    def now(self) -> dict[str, Any]:
        obj = self.kube.release(self.namespace, NAME)
        return {"spec": obj["spec"], THROUGH: (obj["metadata"].get("annotations") or {}).get(THROUGH)}

    def unchanged(self) -> None:
        assert self.now() == self.before


def nothing_filed(kube: Kube, namespace: str) -> None:
    assert "NotFound" in kube.kubectl("get", "hfr", NAME, "-n", namespace, check=False)


@pytest.fixture
def filed(kube: Kube, namespace: str) -> Release:
    """alice's release, filed by alice through kubectl."""
    kube.apply(release(), namespace, user="alice")
    return Release(kube, namespace)


@pytest.fixture
def filed_by_flux_for_carol(kube: Kube, namespace: str, api_as: ApiFor) -> Release:
    """A release that kustomize-controller filed from Git for carol (so alice is not its requester)."""
    created = api_as("kustomize-controller").create(namespace, release("carol", through=FLUX))
    assert created.code == 201, created
    return Release(kube, namespace)


class TestFiling:
    def test_a_requester_files_only_in_her_own_name(self, kube: Kube, namespace: str, api_as: ApiFor) -> None:
        forbidden(api_as("alice").create(namespace, release("bob")),
                  "spec.requestedBy must be your own user name, alice, not bob (an identity allowed to "
                  f"request-on-behalf files for someone else by annotating the release {THROUGH}: alice)")
        nothing_filed(kube, namespace)

    def test_the_annotation_does_not_help_without_the_verb(self, kube: Kube, namespace: str, api_as: ApiFor) -> None:
        forbidden(api_as("alice").create(namespace, release("bob", through="alice")),
                  "spec.requestedBy must be your own user name, alice, not bob: filing for someone else needs the "
                  f"verb request-on-behalf on hotfixreleases in {namespace} (the hotfix-gitops-requester role)")
        nothing_filed(kube, namespace)

    def test_the_annotation_names_the_caller(self, kube: Kube, namespace: str, api_as: ApiFor) -> None:
        forbidden(api_as("alice").create(namespace, release("alice", through="bob")),
                  f"the annotation {THROUGH} must name you, alice")
        nothing_filed(kube, namespace)

    def test_a_new_release_carries_no_approvals(self, kube: Kube, namespace: str, api_as: ApiFor) -> None:
        with_approval = release(approval={"approvals": [approval(kube, "bob")]})
        forbidden(api_as("alice").create(namespace, with_approval),
                  "a new HotfixRelease cannot carry approvals; approvers add theirs after it is filed")
        nothing_filed(kube, namespace)

    @pytest.mark.parametrize("through", [None, "system:serviceaccount:argocd:argocd-application-controller"],
                             ids=["without the annotation", "with an annotation naming someone else"])
    def test_a_gitops_tool_files_for_someone_else_only_through_its_own_annotation(
            self, kube: Kube, namespace: str, api_as: ApiFor, through: str | None) -> None:
        forbidden(api_as("kustomize-controller").create(namespace, release("alice", through=through)),
                  f"spec.requestedBy must be your own user name, {FLUX}, not alice (an identity allowed to "
                  f"request-on-behalf files for someone else by annotating the release {THROUGH}: {FLUX})")
        nothing_filed(kube, namespace)

    def test_a_gitops_tool_files_for_alice_with_its_annotation(self, kube: Kube, namespace: str,
                                                               api_as: ApiFor) -> None:
        created = api_as("kustomize-controller").create(namespace, release("alice", through=FLUX))
        assert created.code == 201, created
        assert Release(kube, namespace).now() == {"spec": created.body["spec"], THROUGH: FLUX}
        assert created.body["spec"]["requestedBy"] == "alice"

    @pytest.mark.parametrize("patch", [{"metadata": {"annotations": {THROUGH: "alice"}}},
                                       {"metadata": {"annotations": {THROUGH: None}}}], ids=["changed", "removed"])
    def test_the_annotation_cannot_change_after_filing(self, filed_by_flux_for_carol: Release, api_as: ApiFor,
                                                       patch: dict[str, Any]) -> None:
        forbidden(api_as("kustomize-controller").patch(filed_by_flux_for_carol.namespace, NAME, patch),
                  f"the annotation {THROUGH} is set at creation and cannot change")
        filed_by_flux_for_carol.unchanged()


BOB_GROUPS = ["hotfix:approvers", "system:authenticated"]  # his certificate's O entries, and every user's group
CAROL_GROUPS = ["hotfix:approvers", SECURITY_GROUP, "system:authenticated"]
BOB_GROUPS_REFUSAL = ("an approval records the groups of its author exactly as the API server sees them; for bob that "
                      'is groups: "hotfix:approvers", "system:authenticated" (kubectl auth whoami shows them)')
SERVICE_ACCOUNT_APPROVAL = "service accounts (GitOps tools, CI jobs) cannot approve or reject a hotfix; a person must"
# case -> (who sends it, whose approval it is, what else the entry says, the refusal)
APPROVAL_REFUSALS: dict[str, tuple[str, str, dict[str, Any], str]] = {
    "the requester approves her own": (
        "alice", "alice", {}, "alice requested this hotfix and cannot approve or reject it; ask another approver"),
    "the requester appends an approval in bob's name": (
        "alice", "bob", {}, "an approval must name its author: you are alice, so set approver: alice"),
    "an approver writes another approver's name": (
        "bob", "carol", {}, "an approval must name its author: you are bob, so set approver: bob"),
    "a CI service account that may patch approves": ("ci-deployer", "ci-deployer", {}, SERVICE_ACCOUNT_APPROVAL),
    "the GitOps service account approves": ("kustomize-controller", "kustomize-controller", {},
                                            SERVICE_ACCOUNT_APPROVAL),
    "an approver claims a group he is not in": (
        "dave", "dave", {"group": SECURITY_GROUP},
        f"you approve as a member of {SECURITY_GROUP}, but the API server does not place dave in that group"),
    "an approval lists groups that are not the caller's": (
        "bob", "bob", {"groups": CAROL_GROUPS}, BOB_GROUPS_REFUSAL),
    "an approval lists no groups": ("bob", "bob", {"groups": None}, BOB_GROUPS_REFUSAL),
}


class TestApproving:
    @pytest.mark.parametrize("case", list(APPROVAL_REFUSALS))
    def test_an_approval_not_in_the_callers_own_name_and_groups_is_refused(
            self, kube: Kube, filed: Release, api_as: ApiFor, case: str) -> None:
        caller, author, changes, message = APPROVAL_REFUSALS[case]
        entry = {**approval(kube, author), **changes}
        entry = {k: v for k, v in entry.items() if v is not None}
        forbidden(api_as(caller).patch(filed.namespace, NAME, add(entry)), message)
        filed.unchanged()

    def test_someone_without_any_role_cannot_approve(self, kube: Kube, filed: Release, api_as: ApiFor) -> None:
        rbac_forbidden(api_as("mallory").patch(filed.namespace, NAME, add(approval(kube, "mallory"))),
                       "mallory", "patch", filed.namespace)
        filed.unchanged()

    def test_a_requester_without_the_approve_verb_cannot_approve_someone_elses(
            self, kube: Kube, filed_by_flux_for_carol: Release, api_as: ApiFor) -> None:
        ns = filed_by_flux_for_carol.namespace
        forbidden(api_as("alice").patch(ns, NAME, add(approval(kube, "alice"))),
                  f"alice may not approve HotfixReleases in {ns}: approving needs the verb approve on hotfixreleases "
                  "(the hotfix-approver role)")
        filed_by_flux_for_carol.unchanged()

    def test_one_approval_per_request(self, kube: Kube, filed: Release, api_as: ApiFor) -> None:
        forbidden(api_as("bob").patch(filed.namespace, NAME, add(approval(kube, "bob"), approval(kube, "carol"))),
                  "add one approval per request, your own")
        filed.unchanged()

    def test_bobs_own_approval_is_accepted(self, kube: Kube, filed: Release, api_as: ApiFor) -> None:
        accepted = api_as("bob").patch(filed.namespace, NAME, add(approval(kube, "bob")))
        assert accepted.code == 200, accepted
        assert filed.now()["spec"]["approval"]["approvals"] == [
            {"approver": "bob", "decision": "Approve", "comment": "reviewed the diff",
             "groups": BOB_GROUPS}]

    def test_carol_approves_as_security(self, kube: Kube, filed: Release, api_as: ApiFor) -> None:
        accepted = api_as("carol").patch(filed.namespace, NAME, add(approval(kube, "carol", group=SECURITY_GROUP)))
        assert accepted.code == 200, accepted
        assert filed.now()["spec"]["approval"]["approvals"] == [
            {"approver": "carol", "decision": "Approve", "comment": "reviewed the diff", "group": SECURITY_GROUP,
             "groups": CAROL_GROUPS}]

    @pytest.mark.parametrize("change", [
        [{"op": "remove", "path": "/spec/approval/approvals/0"}],
        [{"op": "replace", "path": "/spec/approval/approvals/0/decision", "value": "Reject"}],
    ], ids=["removed", "edited"])
    def test_an_approval_cannot_be_withdrawn_or_edited(self, kube: Kube, filed: Release, api_as: ApiFor,
                                                       change: list[dict[str, Any]]) -> None:
        assert api_as("bob").patch(filed.namespace, NAME, add(approval(kube, "bob"))).code == 200
        filed.before = filed.now()
        invalid(api_as("bob").patch(filed.namespace, NAME, change),
                "approvals are append-only: an approval cannot be changed or withdrawn (set spec.abort to stop the "
                "release)")
        filed.unchanged()

    def test_the_image_cannot_change_after_approval(self, kube: Kube, filed: Release, api_as: ApiFor) -> None:
        assert api_as("bob").patch(filed.namespace, NAME, add(approval(kube, "bob"))).code == 200
        filed.before = filed.now()
        swap = [{"op": "replace", "path": "/spec/artifact/image", "value": IMAGE.replace("ab" * 32, "cd" * 32)}]
        invalid(api_as("alice").patch(filed.namespace, NAME, swap),
                "artifact is immutable; the approved image cannot be swapped — create a new HotfixRelease")
        filed.unchanged()


class TestAborting:
    def test_someone_without_any_role_cannot_abort(self, filed: Release, api_as: ApiFor) -> None:
        rbac_forbidden(api_as("mallory").patch(filed.namespace, NAME, abort_by("mallory")),
                       "mallory", "patch", filed.namespace)
        filed.unchanged()

    def test_abort_names_the_caller(self, filed: Release, api_as: ApiFor) -> None:
        forbidden(api_as("alice").patch(filed.namespace, NAME, abort_by("bob")),
                  "abort.by must be your own user name, alice")
        filed.unchanged()

    @pytest.mark.parametrize("account", ["kustomize-controller", "ci-deployer"])
    def test_a_service_account_cannot_abort(self, filed: Release, api_as: ApiFor, account: str) -> None:
        username = SERVICE_ACCOUNTS[account].username
        forbidden(api_as(account).patch(filed.namespace, NAME, abort_by(username)),
                  f"{username} may not abort this hotfix: only its requester (alice) or an approver can, "
                  "and never a service account")
        filed.unchanged()

    @pytest.mark.parametrize("by", ["alice", "bob"], ids=["the requester", "an approver"])
    def test_the_requester_or_an_approver_aborts(self, filed: Release, api_as: ApiFor, by: str) -> None:
        accepted = api_as(by).patch(filed.namespace, NAME, abort_by(by))
        assert accepted.code == 200, accepted
        assert filed.now()["spec"]["abort"] == {"by": by, "reason": "error rate is up"}


def gitops(path: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((GITOPS / path).read_text()) if doc]


def flux_annotated(manifest: dict[str, Any]) -> dict[str, Any]:
    """The release as kustomize-controller applies it: spec.commonMetadata's annotations set on it."""
    kustomization = next(d for d in gitops("flux-kustomization.yaml") if d["kind"] == "Kustomization")
    annotations = kustomization["spec"]["commonMetadata"]["annotations"]
    return {**manifest, "metadata": {**manifest["metadata"], "annotations": annotations}}


class TestTheGitOpsExample:
    def test_flux_files_the_example_release_for_its_requester(self, kube: Kube, namespace: str) -> None:
        (committed,) = gitops("hotfixes/checkout-4-1-2-hotfix-1.yaml")
        dry_run = ["apply", "--server-side", "--dry-run=server", "--field-manager=kustomize-controller",
                   "-n", namespace, "-f", "-"]
        as_flux = kube.kubectl(*dry_run, stdin=json.dumps(flux_annotated(committed)), user="kustomize-controller")
        assert as_flux.strip() == "hotfixrelease.hotfix.dev/checkout-4-1-2-hotfix-1 serverside-applied (server dry run)"
        # the committed file alone names alice, not the tool: the annotation is what lets the tool file it
        refused = kube.kubectl(*dry_run, stdin=json.dumps(committed), user="kustomize-controller", check=False)
        assert f"spec.requestedBy must be your own user name, {FLUX}, not alice" in refused, refused
        assert kube.kubectl("get", "hfr", "-n", namespace, "-o", "name") == ""

    def test_approvals_and_abort_added_with_kubectl_patch_survive_flux_reapplying_git(
            self, kube: Kube, namespace: str) -> None:
        """What Flux relies on: server-side apply leaves alone fields Git lacks that another manager owns."""
        (committed,) = gitops("hotfixes/checkout-4-1-2-hotfix-1.yaml")
        name = committed["metadata"]["name"]
        apply = ["apply", "--server-side", "--force-conflicts", "--field-manager=kustomize-controller",
                 "-n", namespace, "-f", "-"]
        kube.kubectl(*apply, stdin=json.dumps(flux_annotated(committed)), user="kustomize-controller")
        approve(kube, namespace, name, approver="bob")
        abort(kube, namespace, name, by="alice", reason="the incident resolved itself")
        kube.kubectl(*apply, stdin=json.dumps(flux_annotated(committed)), user="kustomize-controller")
        live = kube.release(namespace, name)
        assert live["spec"]["approval"]["approvals"] == [approval(kube, "bob")]
        assert live["spec"]["abort"] == {"by": "alice", "reason": "the incident resolved itself"}
        owners = {m["manager"]: m["fieldsV1"].get("f:spec", {}) for m in live["metadata"]["managedFields"]}
        # kubectl patch writes as manager kubectl-patch, which Flux never takes over (README.md)
        assert {"f:approval", "f:abort"} <= owners["kubectl-patch"].keys()
        assert not {"f:approval", "f:abort"} & owners["kustomize-controller"].keys()

    def test_the_tools_are_told_to_leave_approvals_and_aborts_alone(self) -> None:
        """Argo CD's and Flux's CRDs are not installed here: these are read as YAML, field by field."""
        paths = ["/spec/approval", "/spec/abort"]
        (application,) = gitops("argocd-application.yaml")
        assert application["spec"]["ignoreDifferences"] == [
            {"group": "hotfix.dev", "kind": "HotfixRelease", "jsonPointers": paths}]
        assert "RespectIgnoreDifferences=true" in application["spec"]["syncPolicy"]["syncOptions"]
        assert application["spec"]["syncPolicy"]["automated"] == {"selfHeal": True, "prune": False}
        kustomization = next(d for d in gitops("flux-kustomization.yaml") if d["kind"] == "Kustomization")
        assert kustomization["spec"]["ignore"] == [
            {"paths": paths, "target": {"group": "hotfix.dev", "kind": "HotfixRelease"}}]
        assert kustomization["spec"]["prune"] is False
        listed = gitops("hotfixes/kustomization.yaml")[0]["resources"]
        assert sorted(listed) == sorted(p.name for p in (GITOPS / "hotfixes").glob("*.yaml")
                                        if p.name != "kustomization.yaml")

    def test_each_tool_is_bound_to_the_role_under_the_name_its_annotation_gives(self, kube: Kube) -> None:
        (application,) = gitops("argocd-application.yaml")
        claimed = {
            application["spec"]["source"]["kustomize"]["commonAnnotations"][THROUGH],
            flux_annotated(gitops("hotfixes/checkout-4-1-2-hotfix-1.yaml")[0])["metadata"]["annotations"][THROUGH],
        }
        bindings = gitops("rbac.yaml")
        bound = {f"system:serviceaccount:{s['namespace']}:{s['name']}" for b in bindings for s in b["subjects"]}
        assert bound == claimed and FLUX in bound
        assert {b["roleRef"]["name"] for b in bindings} == {"hotfix-gitops-requester"}
        out = kube.kubectl("apply", "--dry-run=server", "-f", str(GITOPS / "rbac.yaml"))
        assert out.count("(server dry run)") == 2, out
