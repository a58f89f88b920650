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
