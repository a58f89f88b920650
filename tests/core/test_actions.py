"""The Events of one reconcile as the shell posts them (core.actions.one_per_passage), and which actions the
shell confirms on live reads first (core.actions.removes_protection)."""

from __future__ import annotations

from hotfix_operator.api import POD_TEMPLATE_HASH
from hotfix_operator.core.actions import (
    DeleteDeployment,
    Event,
    SetServiceSelector,
    one_per_passage,
    removes_protection,
)


def test_a_reconcile_that_passes_several_phases_tells_where_it_ended_and_what_it_passed() -> None:
    told = one_per_passage([Event("Normal", "Verifying", "verifying provenance"),
                            Event("Normal", "AwaitingApproval", "needs 1 approval")])
    assert told == (Event("Normal", "AwaitingApproval", "needs 1 approval (after Verifying: verifying provenance)"),)


def test_a_warning_is_never_folded_into_another_event() -> None:
    warning = Event("Warning", "SlaBreached", "the SLA was missed")
    switching, folding = Event("Normal", "Promoted", "switching"), Event("Normal", "Finalizing", "folding")
    assert one_per_passage([switching, warning, folding]) == (switching, warning, folding)


def test_each_actor_keeps_their_own_event() -> None:
    by_bob = Event("Normal", "Approved", "approved by bob", "bob")
    told = one_per_passage([Event("Normal", "Verifying", "v"), Event("Normal", "AwaitingApproval", "a"), by_bob])
    assert told == (Event("Normal", "AwaitingApproval", "a (after Verifying: v)"), by_bob)


def test_a_single_event_and_none_pass_unchanged() -> None:
    one = Event("Normal", "Accepted", "checking the target")
    assert one_per_passage([one]) == (one,)
    assert one_per_passage([]) == ()


def test_deleting_green_or_unpinning_the_active_service_is_confirmed_live_but_unpinning_the_preview_is_not() -> None:
    app, pinned = {"app": "checkout"}, {"app": "checkout", POD_TEMPLATE_HASH: "abc"}
    assert removes_protection([DeleteDeployment("checkout-hotfix-1", "uid")], "checkout")
    assert removes_protection([SetServiceSelector("checkout", app, "restore")], "checkout")
    assert not removes_protection([SetServiceSelector("checkout", pinned, "switch")], "checkout")
    assert not removes_protection([SetServiceSelector("checkout-preview", app, "restore the preview")], "checkout")
