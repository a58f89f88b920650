"""The Events of one reconcile as the shell posts them (core.actions.one_per_passage)."""

from __future__ import annotations

from hotfix_operator.core.actions import Event, one_per_passage


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
