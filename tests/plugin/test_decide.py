"""Approve, reject and abort write exactly the shape the admission policy checks."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException

from hotfix_operator.plugin.connection import Identity, refusal
from hotfix_operator.plugin.decide import abort_patch, approval_entry, approval_patch

BOB = Identity("bob", ("hotfix:approvers", "system:authenticated"))


def test_an_approval_names_its_author_with_exactly_their_groups() -> None:
    entry = approval_entry(BOB, "Approve", "reviewed the diff", group=None)
    assert entry == {"approver": "bob", "decision": "Approve", "comment": "reviewed the diff",
                     "groups": ["hotfix:approvers", "system:authenticated"]}
    assert approval_patch(entry) == [{"op": "add", "path": "/spec/approval/approvals/-", "value": entry}]
    assert "comment" not in approval_entry(BOB, "Approve", None)
    assert approval_entry(BOB, "Approve", None, group="hotfix-security")["group"] == "hotfix-security"


def test_an_abort_names_who_and_why() -> None:
    assert abort_patch(BOB, "error rate is up") == {"spec": {"abort": {"by": "bob", "reason": "error rate is up"}}}


def api_error(code: int, reason: str, message: str) -> ApiException:
    error = ApiException(status=code, reason=reason)
    error.body = json.dumps({"kind": "Status", "code": code, "reason": reason, "message": message})
    return error


def test_a_refusal_is_one_line_with_the_api_servers_message_and_what_to_do() -> None:
    rbac = refusal(api_error(403, "Forbidden", 'User "mallory" cannot patch resource "hotfixreleases" in API group\n'
                                               '"hotfix.dev" in the namespace "shop"'), "approve shop/x", "shop")
    assert "\n" not in rbac.message
    assert rbac.message.startswith('cannot approve shop/x: the API server refused (403 Forbidden): User "mallory" '
                                   "cannot patch")
    assert rbac.message.endswith("hotfix-approver (approve, reject, abort) in namespace shop")
    policy = refusal(api_error(403, "Forbidden", "alice requested this hotfix and cannot approve or reject it; "
                                                 "ask another approver"), "approve shop/x", "shop")
    assert policy.message.endswith("ask another approver"), "the policy's message already says what to do"
    missing = refusal(api_error(404, "NotFound", 'hotfixreleases.hotfix.dev "x" not found'), "read shop/x", "shop")
    assert missing.message.endswith("kubectl hotfix list -n shop")
    assert refusal(ApiException(status=500, reason="Internal"), "read shop/x", "shop").exit_code == 1
