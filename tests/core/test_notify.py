"""core.notify: what people hear of, once per event per receiver, and retries that back off."""

from __future__ import annotations

import datetime

from hotfix_operator.api import ConditionType, Phase
from hotfix_operator.core.conditions import set_condition
from hotfix_operator.core.model import Status, Timestamps
from hotfix_operator.core.notice_model import Kind
from hotfix_operator.core.notify import Outcome, dedupe_key, happened, payload, plan
from tests.support.releases import T0, release_object

RELEASE = release_object()
LATER = T0 + datetime.timedelta(minutes=3)


def waiting() -> Status:
    return Status(phase=Phase.AWAITING_APPROVAL, waiting_for="1 approval (any approver)", incident_id="INC-1",
                  sla_deadline=T0 + datetime.timedelta(minutes=30))


def test_what_happened_is_read_from_status() -> None:
    assert happened(RELEASE, waiting(), LATER) == (Kind.APPROVAL_NEEDED,)
    done = Status(phase=Phase.SUCCEEDED, timestamps=Timestamps(approved=LATER, promoted=LATER))
    assert happened(RELEASE, done, LATER) == (Kind.APPROVED, Kind.PROMOTED, Kind.SUCCEEDED)
    late = waiting().model_copy(update={"conditions": set_condition((), ConditionType.SLA_BREACHED, "True", "x",
                                                                     "late", generation=1, now=LATER)})
    assert Kind.SLA_BREACHED in happened(RELEASE, late, LATER)


def test_the_sla_is_at_risk_after_80_percent_of_it_without_traffic_on_the_hotfix() -> None:
    assert Kind.SLA_AT_RISK not in happened(RELEASE, waiting(), T0 + datetime.timedelta(minutes=23))
    assert Kind.SLA_AT_RISK in happened(RELEASE, waiting(), T0 + datetime.timedelta(minutes=25))
    promoted = waiting().model_copy(update={"timestamps": Timestamps(promoted=LATER)})
    assert Kind.SLA_AT_RISK not in happened(RELEASE, promoted, T0 + datetime.timedelta(minutes=25))


def test_each_receiver_gets_each_notice_once_and_a_failure_backs_off() -> None:
    status = waiting()
    states, sends = plan(RELEASE, status, ["chat", "pager"], [], frozenset(), LATER)
    key = dedupe_key(RELEASE, Kind.APPROVAL_NEEDED)
    assert {(d.key, d.receiver) for d in sends} == {(key, "chat"), (key, "pager")}
    # both in flight: nothing is sent twice while waiting for the answers
    assert plan(RELEASE, status.model_copy(update={"notifications": states}), ["chat", "pager"], [],
                frozenset({(key, "chat"), (key, "pager")}), LATER)[1] == ()
    answers = [Outcome(key, "chat", ok=True), Outcome(key, "pager", ok=False, error="connection refused")]
    states, sends = plan(RELEASE, status.model_copy(update={"notifications": states}), ["chat", "pager"], answers,
                         frozenset(), LATER)
    assert sends == () and states[0].delivered_to == ("chat",) and states[0].attempts == 1
    assert states[0].retry_at == LATER + datetime.timedelta(seconds=2) and "pager: connection refused" in \
        (states[0].last_error or "")
    retry = plan(RELEASE, status.model_copy(update={"notifications": states}), ["chat", "pager"], [], frozenset(),
                 LATER + datetime.timedelta(seconds=2))[1]
    assert [(d.receiver, d.kind) for d in retry] == [("pager", Kind.APPROVAL_NEEDED)]


def test_a_notice_no_longer_due_is_not_sent_but_its_delivery_is_kept() -> None:
    key = dedupe_key(RELEASE, Kind.APPROVAL_NEEDED)
    states, _ = plan(RELEASE, waiting(), ["chat"], [Outcome(key, "chat", ok=True)], frozenset(), LATER)
    approved = Status(phase=Phase.DEPLOYING, timestamps=Timestamps(approved=LATER), notifications=states)
    states, sends = plan(RELEASE, approved, ["chat"], [], frozenset(), LATER)
    assert [d.kind for d in sends] == [Kind.APPROVED]
    assert {s.key for s in states} == {key, dedupe_key(RELEASE, Kind.APPROVED)}


def test_payloads_carry_the_dedupe_key_and_say_how_to_approve() -> None:
    body = payload(RELEASE, waiting(), Kind.APPROVAL_NEEDED, "webhook")
    assert body["dedupeKey"] == dedupe_key(RELEASE, Kind.APPROVAL_NEEDED) and body["kind"] == "ApprovalNeeded"
    assert "kubectl hotfix approve checkout-hotfix -n shop" in body["text"]
    slack = payload(RELEASE, waiting(), Kind.APPROVAL_NEEDED, "slack")
    assert slack["text"] == body["text"] and slack["metadata"]["event_payload"]["dedupeKey"] == body["dedupeKey"]


def test_a_receiver_that_never_answers_is_given_up_on_and_the_failure_kept() -> None:
    key = dedupe_key(RELEASE, Kind.APPROVAL_NEEDED)
    status, now = waiting(), LATER
    for _ in range(8):
        states, _ = plan(RELEASE, status, ["pager"], [Outcome(key, "pager", ok=False, error="refused")], frozenset(),
                         now)
        status = status.model_copy(update={"notifications": states})
        now += datetime.timedelta(minutes=10)
    assert status.notifications[0].attempts == 8 and "refused" in (status.notifications[0].last_error or "")
    assert plan(RELEASE, status, ["pager"], [], frozenset(), now)[1] == ()
