"""The notifier's shell: with no receiver in the policy there is nothing to record, so a reconcile that
tells no one writes no status for it."""

from __future__ import annotations

from typing import Any, cast

from hotfix_operator.adapters.policies import PolicyResolver, ResolvedPolicy
from hotfix_operator.core import notify
from hotfix_operator.metrics import Metrics
from hotfix_operator.notifier import Notifier
from tests.core.test_notify import LATER, waiting
from tests.support.releases import release_object


class Policies:
    def __init__(self, receivers: tuple[Any, ...]) -> None:
        self.receivers = receivers

    def for_namespace(self, namespace: str) -> ResolvedPolicy:
        return cast(ResolvedPolicy, self)


def test_with_no_receiver_a_notice_due_changes_no_status() -> None:
    policies = Policies(())
    notifier = Notifier(cast(PolicyResolver, policies), Metrics())
    status = waiting()
    assert notify.pending(release_object(), status, LATER), "a notice is due"
    assert notifier.step(release_object(), status, LATER, policies) is status
