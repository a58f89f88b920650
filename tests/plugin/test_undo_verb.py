"""kubectl hotfix undo writes spec.undo in the shape the admission policy checks, and needs a reason."""

from __future__ import annotations

import pytest

from hotfix_operator.plugin.connection import Identity
from hotfix_operator.plugin.decide import undo_patch
from hotfix_operator.plugin.main import parser


def test_an_undo_names_who_and_why() -> None:
    me = Identity("alice", ("system:authenticated",))
    assert undo_patch(me, "p99 doubled") == {"spec": {"undo": {"by": "alice", "reason": "p99 doubled"}}}


def test_undo_needs_a_reason() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["undo", "checkout-hotfix"])
    args = parser().parse_args(["undo", "checkout-hotfix", "--reason", "p99 doubled", "-n", "shop"])
    assert (args.verb, args.name, args.reason) == ("undo", "checkout-hotfix", "p99 doubled")


def test_approve_undo_appends_the_same_entry_to_the_undos_approvals() -> None:
    from hotfix_operator.plugin.decide import approval_entry, approval_patch

    bob = Identity("bob", ("hotfix:approvers", "system:authenticated"))
    entry = approval_entry(bob, "Approve", "the old version is fine", None)
    assert approval_patch(entry, undo=True) == [{"op": "add", "path": "/spec/undo/approvals/-", "value": entry}]
    args = parser().parse_args(["approve", "checkout-hotfix", "--undo", "-n", "shop"])
    assert (args.verb, args.name, args.undo) == ("approve", "checkout-hotfix", True)
    assert parser().parse_args(["approve", "checkout-hotfix"]).undo is False
    assert parser().parse_args(["reject", "checkout-hotfix", "--undo", "--comment", "no"]).undo is True
