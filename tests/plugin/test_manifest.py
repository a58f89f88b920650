"""The manifest `create` builds from flags or a file, and what admission would refuse at creation."""

from __future__ import annotations

from hotfix_operator.plugin.manifest import admission_problems, build, default_name, fill_requester, with_flag_hints
from hotfix_operator.plugin.validation import Problem
from tests.support.releases import release_spec

FLAGS = {"version": "4.1.2-hotfix.1", "deployment": "checkout", "image": "r.example.com/a/b@sha256:" + "0" * 64,
         "bake_seconds": 5}


def test_flags_build_the_spec_and_the_name_comes_from_deployment_and_version() -> None:
    m = build(None, FLAGS, None, "shop", auto_rollback=False)
    assert m["apiVersion"] == "hotfix.dev/v1alpha1" and m["kind"] == "HotfixRelease"
    assert m["metadata"] == {"name": "checkout-4-1-2-hotfix-1", "namespace": "shop"}
    assert m["spec"]["target"] == {"deployment": "checkout"}
    assert m["spec"]["artifact"]["image"].endswith("0" * 64)
    assert m["spec"]["rollout"] == {"bakeSeconds": 5, "autoRollback": False}


def test_flags_override_a_file_and_the_files_name_is_kept() -> None:
    base = {"metadata": {"name": "from-file"}, "spec": release_spec()}
    m = build(base, {"severity": "P1"}, None, "shop", None)
    assert m["metadata"]["name"] == "from-file"
    assert m["spec"]["severity"] == "P1"
    assert m["spec"]["commitSha"] == base["spec"]["commitSha"]
    assert base["spec"]["severity"] == "P0", "the file's content is not changed"


def test_default_name_is_a_kubernetes_name() -> None:
    assert default_name({"target": {"deployment": "Checkout"}, "version": "4.1.2"}) == "checkout-4-1-2"
    assert default_name({"version": "4.1.2"}) is None


def test_requested_by_is_you_unless_the_manifest_says_someone_else_which_admission_refuses() -> None:
    m = build({"spec": release_spec()}, {}, "x", "shop", None)
    del m["spec"]["requestedBy"]
    fill_requester(m, "bob")
    assert m["spec"]["requestedBy"] == "bob"
    assert list(admission_problems(m, "bob")) == []
    m["spec"]["requestedBy"] = "alice"
    [problem] = admission_problems(m, "bob")
    assert problem == Problem("spec.requestedBy", "must be your own user name, bob, not alice: leave it out and "
                                                  "kubectl hotfix fills it in")


def test_a_new_release_carries_no_approvals_and_no_abort() -> None:
    m = build({"spec": release_spec(approvals=(("bob", "Approve"),), abort={"by": "alice", "reason": "x"})},
              {}, "x", "shop", None)
    assert {p.field for p in admission_problems(m, "alice")} == {"spec.approval.approvals", "spec.abort"}


def test_a_missing_field_names_its_flag() -> None:
    assert with_flag_hints([Problem("spec.commitSha", "is required"), Problem("spec.x", "is required")]) == [
        Problem("spec.commitSha", "is required (--commit)"), Problem("spec.x", "is required")]
