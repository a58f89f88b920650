"""The admission policy must be installed exactly as shipped: every shipped field live and equal (the
API server may add defaults beside them), the binding denying through it and not narrowed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hotfix_operator.adapters.authorization import admission_differences, contains, shipped_admission

pytestmark = pytest.mark.unit
SHIPPED = shipped_admission()


def live() -> tuple[dict[str, Any], dict[str, Any]]:
    """What the API server returns for the shipped objects: the same, plus its defaults."""
    policy, binding = copy.deepcopy(SHIPPED)
    policy["spec"]["matchConstraints"] |= {"matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {}}
    policy["spec"]["matchConstraints"]["resourceRules"][0]["scope"] = "*"
    binding["spec"]["matchResources"] = {"matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {}}
    return policy, binding


def test_the_shipped_policy_with_server_defaults_is_accepted() -> None:
    assert admission_differences(*live(), SHIPPED) == []


def test_a_missing_policy_or_binding_is_named() -> None:
    policy, binding = live()
    assert admission_differences(None, binding, SHIPPED) == [
        "ValidatingAdmissionPolicy hotfix-operator-approvals is missing"]
    assert admission_differences(policy, None, SHIPPED) == [
        "ValidatingAdmissionPolicyBinding hotfix-operator-approvals is missing"]


def test_a_loosened_rule_is_caught() -> None:
    policy, binding = live()
    policy["spec"]["validations"][6]["expression"] = "true"
    assert admission_differences(policy, binding, SHIPPED) == [
        "ValidatingAdmissionPolicy hotfix-operator-approvals has a different spec.validations"]
    policy, binding = live()
    del policy["spec"]["validations"][-1]
    assert "has a different spec.validations" in admission_differences(policy, binding, SHIPPED)[0]


def test_a_binding_that_only_warns_or_is_narrowed_is_caught() -> None:
    policy, binding = live()
    binding["spec"]["validationActions"] = ["Warn"]
    assert "does not Deny" in admission_differences(policy, binding, SHIPPED)[0]
    policy, binding = live()
    binding["spec"]["matchResources"]["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": "x"}}
    assert admission_differences(policy, binding, SHIPPED) == [
        "ValidatingAdmissionPolicyBinding hotfix-operator-approvals is narrowed (namespaceSelector)"]


def test_contains_compares_lists_whole_and_maps_by_shipped_keys() -> None:
    assert contains({"a": 1, "b": 2}, {"a": 1})
    assert not contains({"a": 1}, {"a": 1, "b": 2})
    assert not contains([1, 2, 3], [1, 2])
    assert contains([{"x": 1, "y": 0}], [{"x": 1}])
