"""The follow-ups' GitHub half: the facts each publishing step renders come from the release and its status."""

from __future__ import annotations

import datetime

import pytest

from hotfix_operator.followup_steps import build_facts, repository_of
from tests.support.followups import CONFIG, DUE, T0, make_release, promoted_status


def test_facts_come_from_the_release_and_its_status() -> None:
    facts = build_facts(make_release(), promoted_status(), CONFIG)
    assert facts.repository == "acme/checkout" and facts.tag == "v4.1.2-hotfix.1"
    assert facts.promoted_at == T0 and facts.postmortem_due_at == DUE
    assert [a.approver for a in facts.approvals] == ["bob"]
    assert facts.approvals[0].at == T0 - datetime.timedelta(minutes=10)
    assert [e.event for e in facts.timeline][-1] == "Traffic switched to the hotfix"


@pytest.mark.parametrize("source", ["github.com/acme/checkout", "https://github.com/acme/checkout.git",
                                    "ghe.example.com/acme/checkout"])
def test_repository_names(source: str) -> None:
    assert repository_of(source) == "acme/checkout"
