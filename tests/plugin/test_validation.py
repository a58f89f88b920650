"""The plugin's local check uses the CRD's own schema and rules: a valid release passes, and every
mistake is named with its field and the CRD's message, before anything is sent."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hotfix_operator.plugin.validation import Problem, check_manifest, compile_rule, crd_schema, unchecked_rules
from tests.support.releases import release_spec


def manifest(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixRelease", "metadata": {"name": "checkout-hotfix"},
            "spec": release_spec(**spec)}


def fields(problems: list[Problem]) -> dict[str, str]:
    return {p.field: p.message for p in problems}


def test_a_valid_release_has_no_problems() -> None:
    assert check_manifest(manifest()) == []


def test_every_rule_the_crd_has_for_a_new_release_is_checked_here() -> None:
    """A new CEL rule of a shape this module cannot read would be left to the API server: say so here."""
    assert unchecked_rules() == []


def test_the_schema_is_the_packaged_crd() -> None:
    assert crd_schema()["properties"]["spec"]["required"][:2] == ["version", "commitSha"]


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("version", "4.1", "version must look like 4.1.2 or 4.1.2-hotfix.1"),
    ("commitSha", "a8b1963", "commitSha must be the full 40-character lowercase hex commit SHA"),
    ("justification", "  too short  ", "justification must be at least 50 characters"),
    ("ticketUrl", "http://tracker.example.com/INC-1", "ticketUrl must be an https:// link"),
    ("ticketUrl", "https://", "ticketUrl must be an https:// link"),
    ("severity", "P2", "severity must be P0 or P1"),
    ("riskLevel", "huge", "riskLevel must be low, medium or high"),
])
def test_a_cel_rule_is_named_with_the_crds_own_message(field: str, value: str, expected: str) -> None:
    problems = fields(check_manifest(manifest(**{field: value})))
    assert problems[f"spec.{field}"].startswith(expected), problems


def test_image_by_tag_and_a_source_url_are_refused_in_the_artifact() -> None:
    spec = release_spec()
    spec["artifact"] = {"image": "registry.example.com/shop/checkout:4.1.2", "sourceRepository": "https://github.com/a/b"}
    problems = fields(check_manifest(manifest(artifact=spec["artifact"])))
    assert "pinned by digest" in problems["spec.artifact.image"]
    assert "no scheme" in problems["spec.artifact.sourceRepository"]


def test_target_names_and_a_preview_equal_to_the_active_service() -> None:
    problems = fields(check_manifest(manifest(target={"deployment": "Checkout", "service": "checkout",
                                                     "previewService": "checkout", "container": "app"})))
    assert "must be a Kubernetes object name" in problems["spec.target.deployment"]
    assert problems["spec.target"] == "target.previewService must differ from target.service (the active Service)"


def test_schema_mistakes_name_the_field_and_the_bound() -> None:
    m = manifest(rollout={"bakeSeconds": -1, "progressDeadlineSeconds": 5000, "autoRollback": "yes"})
    del m["spec"]["requestedBy"]
    problems = fields(check_manifest(m))
    assert problems["spec.requestedBy"] == "is required"
    assert problems["spec.rollout.bakeSeconds"] == "must be at least 0"
    assert problems["spec.rollout.progressDeadlineSeconds"] == "must be at most 3600"
    assert problems["spec.rollout.autoRollback"] == "must be a boolean, not str"


def test_a_field_the_api_would_drop_is_named_with_the_likely_one() -> None:
    m = manifest()
    m["spec"]["artifact"]["evidnce"] = "oci://registry.example.com/e@sha256:" + "0" * 64
    m["spec"]["ticketURL"] = "https://x.example.com/1"
    problems = fields(check_manifest(m))
    assert problems["spec.artifact.evidnce"] == "is not a field of this API (did you mean evidence?)"
    assert problems["spec.ticketURL"] == "is not a field of this API (did you mean ticketUrl?)"


def test_the_name_and_kind_are_checked() -> None:
    m = manifest()
    m["metadata"]["name"] = "Checkout_Hotfix"
    m["kind"] = "Deployment"
    problems = fields(check_manifest(m))
    assert "not a Kubernetes object name" in problems["metadata.name"]
    assert problems["kind"] == "must be HotfixRelease, not 'Deployment'"


def test_transition_rules_do_not_apply_to_a_new_release() -> None:
    assert compile_rule("self == oldSelf") is None
    assert compile_rule("!has(oldSelf.abort) || has(self.abort)") is None


def test_rule_shapes() -> None:
    digits = compile_rule("self.matches('^[0-9]+\\\\.[0-9]+$')")
    assert digits is not None and digits("4.1") and not digits("4x1")
    prefix = compile_rule("self.startsWith('oci://') || self.startsWith('https://')")
    assert prefix is not None and prefix("https://e") and not prefix("http://e")
    assert compile_rule("size(self) > 3") is None, "an unknown shape is left to the API server"


def test_the_check_does_not_change_the_manifest() -> None:
    m = manifest()
    before = copy.deepcopy(m)
    check_manifest(m)
    assert m == before


def test_rules_on_which_fields_are_set() -> None:
    one = compile_rule("(has(self.http) ? 1 : 0) + (has(self.prometheus) ? 1 : 0) == 1")
    assert one is not None and one({"http": {}}) and not one({}) and not one({"http": {}, "prometheus": {}})
    not_both = compile_rule("!(has(self.count) && has(self.durationSeconds))")
    assert not_both is not None and not_both({"count": 1}) and not not_both({"count": 1, "durationSeconds": 2})
    either = compile_rule("has(self.jsonPath) != has(self.regex)")
    assert either is not None and either({"regex": "x"}) and not either({})
