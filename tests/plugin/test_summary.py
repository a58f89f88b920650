"""What status and list show: timeline in order, approvals, the SLA countdown, per-check rows, the
next step, and the exit code each phase gives `status --watch`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hotfix_operator.plugin.summary import duration, exit_code, parse_duration, sla_of, summarize

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def release(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "checkout-hotfix", "namespace": "shop", "creationTimestamp": "2026-11-23T09:12:00Z"},
            "spec": {"version": "4.1.2-hotfix.1", "requestedBy": "alice", "target": {"deployment": "checkout"},
                     "approval": {"approvals": [{"approver": "bob", "decision": "Approve", "comment": "ok"}]}},
            "status": status}


def test_a_release_awaiting_approval() -> None:
    s = summarize(release(phase="AwaitingApproval", message="needs 1 more approval(s)", approvals="0/1",
                          waitingFor="1 approval", slaDeadline="2026-11-23T09:42:00Z",
                          timestamps={"verified": "2026-11-23T09:12:05Z", "created": "2026-11-23T09:12:00Z"},
                          conditions=[{"type": "Ready", "status": "False", "reason": "AwaitingApproval"}]), NOW)
    assert (s.name, s.namespace, s.phase, s.target, s.age) == ("checkout-hotfix", "shop", "AwaitingApproval",
                                                               "checkout", "18m00s")
    assert s.approvals == "0/1" and s.waiting_for == "1 approval"
    assert s.timeline == (("filed", "2026-11-23T09:12:00Z"), ("provenance verified", "2026-11-23T09:12:05Z"))
    assert s.sla.text == "12m00s left" and s.sla.state == "running"
    assert s.conditions[0] == {"type": "Ready", "status": "False", "reason": "AwaitingApproval", "message": ""}
    assert s.decisions == ({"approver": "bob", "decision": "Approve", "comment": "ok"},)
    assert s.next_step == "needs 1 more approval(s)"
    assert s.checks == ()
    assert s.to_json()["timeline"][0] == {"event": "filed", "time": "2026-11-23T09:12:00Z"}


def test_the_sla_is_met_or_missed_when_traffic_reaches_the_hotfix_and_breached_while_it_has_not() -> None:
    deadline = "2026-11-23T09:42:00Z"
    assert sla_of({"slaDeadline": deadline, "timestamps": {"promoted": "2026-11-23T09:20:00Z"}}, NOW).text == \
        "met with 22m00s to spare"
    assert sla_of({"slaDeadline": deadline, "timestamps": {"promoted": "2026-11-23T09:43:00Z"}}, NOW).text == \
        "missed by 1m00s"
    breached = sla_of({"slaDeadline": "2026-11-23T09:28:00Z"}, NOW)
    assert (breached.state, breached.text) == ("breached", "breached 2m00s ago")
    assert sla_of({}, NOW).text == "-"
    assert sla_of({"slaDeadline": deadline, "phase": "Rejected"}, NOW).state == "none"


def test_per_check_rows_are_read_when_the_operator_writes_them() -> None:
    s = summarize(release(phase="Promoted", checks=[{"name": "error-rate", "stage": "postPromotion",
                                                     "phase": "Passed", "lastValue": 0.01, "message": "ok"}, "junk"]),
                  NOW)
    assert s.checks == ({"name": "error-rate", "stage": "postPromotion", "phase": "Passed", "lastValue": "0.01",
                         "message": "ok"},)


@pytest.mark.parametrize(("phase", "code"), [("Succeeded", 0), ("RolledBack", 1), ("Rejected", 1), ("Failed", 1),
                                             ("Expired", 1), ("Promoted", None), ("AwaitingApproval", None),
                                             ("DrillPassed", 0), ("DrillFailed", 1), ("Undone", 0), ("UndoFailed", 1),
                                             ("PrePromotion", None), ("Undoing", None)])
def test_watch_exit_codes(phase: str, code: int | None) -> None:
    assert exit_code(phase) == code


def test_finished_releases_say_nothing_more_happens() -> None:
    assert summarize(release(phase="Succeeded"), NOW).next_step == "nothing: the hotfix is live"
    assert "file a new HotfixRelease" in summarize(release(phase="RolledBack"), NOW).next_step
    assert summarize({"metadata": {"name": "x"}}, NOW).phase == "Pending"


def test_durations() -> None:
    assert [duration(s) for s in (5, 65, 3700, 90000)] == ["5s", "1m05s", "1h01m", "1d01h"]
    assert [parse_duration(t) for t in ("90", "90s", "5m", "1h30m", "1d")] == [90, 90, 300, 5400, 86400]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("5 minutes")
