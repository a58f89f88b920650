"""Who may approve, asked of the API server: the admission policy that proves who wrote each
approval must be installed exactly as shipped, and each approver's right is re-checked with a
SubjectAccessReview (with the groups admission proved) at the moment the approval is counted."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hotfix_operator.adapters.kube_rest import KubeRest, cluster_path
from hotfix_operator.api import API_GROUP, PLURAL
from hotfix_operator.core.governance import AdmissionCheck
from hotfix_operator.core.model import Approval

log = logging.getLogger(__name__)
INSTALL_HINT = "crds/admission.yaml"


def shipped_admission() -> tuple[dict[str, Any], dict[str, Any]]:
    """The ValidatingAdmissionPolicy and its binding exactly as shipped in crds/admission.yaml."""
    text = (resources.files("hotfix_operator") / "data" / "admission.yaml").read_text()
    policy, binding = (d for d in yaml.safe_load_all(text) if d)
    return policy, binding


def contains(live: Any, shipped: Any) -> bool:
    """Every field shipped is live with the same value; the API server may add defaults beside them."""
    if isinstance(shipped, Mapping):
        return isinstance(live, Mapping) and all(k in live and contains(live[k], v) for k, v in shipped.items())
    if isinstance(shipped, list):
        return isinstance(live, list) and len(live) == len(shipped) and all(
            contains(a, b) for a, b in zip(live, shipped, strict=True))
    return bool(live == shipped)


def admission_differences(policy: dict[str, Any] | None, binding: dict[str, Any] | None,
                          shipped: tuple[dict[str, Any], dict[str, Any]]) -> list[str]:
    """What is missing or altered, in words a cluster administrator can act on. Pure."""
    want_policy, want_binding = shipped
    name = want_policy["metadata"]["name"]
    problems = []
    if policy is None:
        problems.append(f"ValidatingAdmissionPolicy {name} is missing")
    else:
        for key in ("failurePolicy", "matchConstraints", "variables", "validations"):
            if not contains(policy.get("spec", {}).get(key), want_policy["spec"][key]):
                problems.append(f"ValidatingAdmissionPolicy {name} has a different spec.{key}")
    if binding is None:
        problems.append(f"ValidatingAdmissionPolicyBinding {want_binding['metadata']['name']} is missing")
    else:
        spec = binding.get("spec", {})
        if spec.get("policyName") != name or "Deny" not in (spec.get("validationActions") or []):
            problems.append(f"ValidatingAdmissionPolicyBinding {want_binding['metadata']['name']} does not Deny "
                            f"through policy {name}")
        narrowed = {k: v for k, v in (spec.get("matchResources") or {}).items() if k != "matchPolicy" and v}
        if narrowed or spec.get("paramRef"):
            problems.append(f"ValidatingAdmissionPolicyBinding {want_binding['metadata']['name']} is narrowed "
                            f"({', '.join(sorted(narrowed)) or 'paramRef'})")
    return problems


def fingerprint(policy: dict[str, Any] | None, binding: dict[str, Any] | None) -> str:
    """Which policy and binding objects these are: deleting and re-creating one, or editing it, changes it."""
    def one(obj: dict[str, Any] | None) -> str:
        if obj is None:
            return "missing"
        meta = obj.get("metadata", {})
        return f"{meta.get('uid')}/{meta.get('generation')}"
    return f"policy {one(policy)}; binding {one(binding)}"


class ApprovalAuthority:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.rest = KubeRest(api)
        self.shipped = shipped_admission()
        # the reads and reviews of one approval check are independent: issued together, it waits for one
        self._pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="authority")

    def check(self, namespace: str, approvals: Sequence[Approval]) -> tuple[AdmissionCheck, dict[str, bool] | None]:
        """The admission policy as shipped, and whether each approval's author still holds `approve` in
        `namespace` with the groups admission proved: all asked at once, so an approval waits for one round
        trip, not two. The rights are None when the policy is not as shipped: they would not count."""
        policy_f = self._pool.submit(self._read, "validatingadmissionpolicies", self.shipped[0]["metadata"]["name"])
        binding_f = self._pool.submit(self._read, "validatingadmissionpolicybindings",
                                      self.shipped[1]["metadata"]["name"])
        asked = [(a.approver, self._pool.submit(self._may_approve, namespace, a)) for a in approvals]
        try:
            policy, binding = policy_f.result(), binding_f.result()
        except ApiException as exc:
            unread = f"cannot read the admission policy ({exc.status} {exc.reason})"
            return AdmissionCheck(ok=False, message=unread), None
        problems = admission_differences(policy, binding, self.shipped)
        if problems:
            log.warning("approvals are not counted: %s; install %s", "; ".join(problems), INSTALL_HINT)
            return AdmissionCheck(ok=False, message="; ".join(problems), fingerprint=fingerprint(policy, binding)), None
        rights = {who: allowed for who, future in asked if (allowed := future.result()) is not None}
        return AdmissionCheck(ok=True, message="", fingerprint=fingerprint(policy, binding)), rights

    def _read(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            return self.rest.get(cluster_path("admissionregistration.k8s.io/v1", plural, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _may_approve(self, namespace: str, approval: Approval) -> bool | None:
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
            "user": approval.approver, **({"groups": list(approval.groups)} if approval.groups else {}),
            "resourceAttributes": {"group": API_GROUP, "resource": PLURAL, "verb": "approve",
                                   "namespace": namespace}}}
        try:
            answer = self.rest.write("POST", cluster_path("authorization.k8s.io/v1", "subjectaccessreviews"), review)
        except ApiException as exc:
            log.warning("SubjectAccessReview for %s failed: %s", approval.approver, exc.reason)
            return None  # unknown: not counted this time
        return bool((answer.get("status") or {}).get("allowed"))
