"""The follow-up core: step order, persistence in status, backoff, permanent failures, the deadline."""

from __future__ import annotations

import datetime

import pytest

from hotfix_operator.core.followup import Config, Failure, Step, backoff, plan, record
from hotfix_operator.core.followup_results import (
    BackportOutcome,
    BackportResult,
    IssueRef,
    PostmortemCheck,
    PostmortemPullRequestResult,
    PostmortemState,
    ReleaseResult,
    TagResult,
)
from hotfix_operator.core.model import PostmortemArea, Status
from tests.support.followups import COMMIT, CONFIG, DUE, T0, make_release, promoted_status, pull

RESULTS = {
    Step.TAG: TagResult("v4.1.2-hotfix.1", COMMIT, "f" * 40, created=True),
    Step.RELEASE: ReleaseResult(7, "https://github.com/acme/checkout/releases/tag/v4.1.2-hotfix.1",
                                {"SHA256SUMS": "sha256:" + "1" * 64}, created=True, published=True),
    Step.BACKPORT: BackportResult(BackportOutcome.OPENED, "hotfix/backport-v4.1.2-hotfix.1", "main", pull(1)),
    Step.POSTMORTEM_PR: PostmortemPullRequestResult("hotfix/postmortem-v4.1.2-hotfix.1",
                                                    "docs/releases/HOTFIX_POSTMORTEMS/v4.1.2-hotfix.1.md", pull(2),
                                                    created=True),
}


def condition(status: Status, type_: str) -> tuple[str, str]:
    found = status.condition(type_)
    assert found is not None, type_
    return found.status, found.reason


def run_all(status: Status, now: datetime.datetime) -> Status:
    """Run the steps that are due until none is, answering from RESULTS."""
    release = make_release()
    for _ in range(10):
        planned = plan(release, status, now, CONFIG)
        if planned.step is None or planned.step not in RESULTS:
            return planned.status
        status = record(release, planned.status, planned.step, RESULTS[planned.step], now, CONFIG).status
    raise AssertionError("did not settle")


def test_steps_run_in_order_and_each_result_is_kept_in_status() -> None:
    release, status, order = make_release(), promoted_status(), []
    now = T0 + datetime.timedelta(minutes=3)
    for _ in range(4):
        planned = plan(release, status, now, CONFIG)
        assert planned.step is not None and planned.requeue_after == 0
        order.append(planned.step)
        decision = record(release, planned.status, planned.step, RESULTS[planned.step], now, CONFIG)
        status = decision.status
        assert not decision.done
    assert order == [Step.TAG, Step.RELEASE, Step.BACKPORT, Step.POSTMORTEM_PR]
    wire = status.to_json()  # what the API server stores, key for key
    assert wire["release"] == {"tag": "v4.1.2-hotfix.1", "commit": COMMIT, "tagged": True, "state": "Published",
                               "url": RESULTS[Step.RELEASE].html_url, "id": 7,  # type: ignore[union-attr]
                               "assets": {"SHA256SUMS": "sha256:" + "1" * 64}}
    assert wire["backport"]["pullRequest"].endswith("/pull/1")
    assert wire["postmortem"]["dueAt"] == "2026-01-09T10:45:00Z" and wire["postmortem"]["filed"] is True
    assert condition(status, "Released") == ("True", "Published")
    assert condition(status, "BackportOpened") == ("True", "Opened")
    assert condition(status, "PostmortemFiled") == ("True", "Filed")
    assert condition(status, "PostmortemComplete") == ("False", "Pending")
    assert [e.action for e in status.audit][-4:] == ["Tagged", "Released", "BackportOpened", "PostmortemFiled"]
    assert status.phase == "Succeeded"  # never touched


def test_the_first_check_runs_at_once_then_at_the_interval_and_just_after_the_deadline() -> None:
    release = make_release()
    now = T0 + datetime.timedelta(minutes=3)
    status = run_all(promoted_status(), now)
    assert plan(release, status, now, CONFIG).step == Step.POSTMORTEM_CHECK
    checked = record(release, status, Step.POSTMORTEM_CHECK,
                     PostmortemCheck(PostmortemState.PENDING, "p.md", DUE), now, CONFIG)
    assert not checked.done and checked.requeue_after == 600
    later = plan(release, checked.status, now + datetime.timedelta(seconds=599), CONFIG)
    assert later.step is None and later.requeue_after == pytest.approx(1)
    near_deadline = DUE - datetime.timedelta(seconds=100)
    checked = record(release, checked.status, Step.POSTMORTEM_CHECK,
                     PostmortemCheck(PostmortemState.PENDING, "p.md", DUE), near_deadline, CONFIG)
    assert checked.requeue_after == pytest.approx(101)


def test_overdue_opens_the_issue_once_and_completion_finishes_everything() -> None:
    release = make_release()
    now = DUE + datetime.timedelta(minutes=1)
    status = run_all(promoted_status(), now)
    overdue = record(release, status, Step.POSTMORTEM_CHECK, PostmortemCheck(PostmortemState.OVERDUE, "p.md", DUE),
                     now, CONFIG)
    assert condition(overdue.status, "PostmortemComplete") == ("False", "Overdue")
    assert plan(release, overdue.status, now, CONFIG).step == Step.OVERDUE_ISSUE
    issued = record(release, overdue.status, Step.OVERDUE_ISSUE, IssueRef(5, "https://gh/issues/5", True), now,
                    CONFIG)
    assert issued.overdue_opened and [e.reason for e in issued.events] == ["PostmortemOverdue"]
    assert issued.events[0].type == "Warning"
    assert condition(issued.status, "PostmortemOverdue") == ("True", "Overdue")
    # the next check, still overdue: no second issue is even asked for
    again = record(release, issued.status, Step.POSTMORTEM_CHECK,
                   PostmortemCheck(PostmortemState.OVERDUE, "p.md", DUE), now + datetime.timedelta(minutes=10),
                   CONFIG)
    assert plan(release, again.status, now + datetime.timedelta(minutes=10), CONFIG).step is None
    # a restart lost the status write after the issue was opened: the lookup finds it, counted once
    relost = record(release, overdue.status, Step.OVERDUE_ISSUE, IssueRef(5, "https://gh/issues/5", False), now,
                    CONFIG)
    assert relost.overdue_opened
    done = record(release, again.status, Step.POSTMORTEM_CHECK,
                  PostmortemCheck(PostmortemState.COMPLETE, "p.md", DUE), now + datetime.timedelta(hours=1), CONFIG)
    assert done.done and done.requeue_after is None
    assert condition(done.status, "PostmortemComplete") == ("True", "Complete")
    assert condition(done.status, "PostmortemOverdue") == ("False", "Complete")
    assert done.status.to_json()["postmortem"]["issue"] == "https://gh/issues/5"


def test_a_transient_failure_backs_off_exponentially_honours_retry_after_and_blocks_later_steps() -> None:
    release, now = make_release(), T0 + datetime.timedelta(minutes=3)
    status = promoted_status()
    delays, events = [], []
    for attempt in range(1, 5):
        planned = plan(release, status, now, CONFIG)
        assert planned.step == Step.TAG
        decision = record(release, planned.status, Step.TAG, Failure(True, "GitHubUnavailable", "502"), now, CONFIG)
        status = decision.status
        assert decision.requeue_after is not None
        delays.append(decision.requeue_after)
        events += decision.events
        assert plan(release, status, now, CONFIG).step is None  # nothing else runs meanwhile
        assert status.to_json()["release"]["retries"]["Tag"]["attempts"] == attempt
        now += datetime.timedelta(seconds=decision.requeue_after)
    assert delays == [5, 10, 20, 40]
    assert len(events) == 1 and events[0].reason == "FollowupDelayed"  # one Event per outage
    assert condition(status, "Released") == ("Unknown", "GitHubUnavailable")
    limited = record(release, status, Step.TAG, Failure(True, "GitHubUnavailable", "403 secondary", 120), now,
                     CONFIG)
    assert limited.requeue_after == 120
    assert backoff(20, None, CONFIG) == 300
    recovered = record(release, status, Step.TAG, RESULTS[Step.TAG], now, CONFIG)
    assert "retries" not in recovered.status.to_json()["release"]
    assert plan(release, recovered.status, now, CONFIG).step == Step.RELEASE


def test_a_permanent_failure_is_reported_once_retried_slowly_and_independent_steps_go_on() -> None:
    release, now = make_release(), T0 + datetime.timedelta(minutes=3)
    conflict = Failure(False, "TagConflict", "tag v4.1.2-hotfix.1 already exists at commit 0000")
    failed = record(release, promoted_status(), Step.TAG, conflict, now, CONFIG)
    assert condition(failed.status, "Released") == ("False", "TagConflict")
    assert [(e.type, e.reason) for e in failed.events] == [("Warning", "TagConflict")]
    # the release needs the tag; the backport and the post-mortem do not
    assert plan(release, failed.status, now, CONFIG).step == Step.BACKPORT
    status = run_all(failed.status, now)
    status = record(release, status, Step.POSTMORTEM_CHECK, PostmortemCheck(PostmortemState.COMPLETE, "p", DUE),
                    now, CONFIG).status
    waiting = plan(release, status, now, CONFIG)
    assert waiting.step is None and not waiting.done and waiting.requeue_after == 3600
    retry = plan(release, status, now + datetime.timedelta(hours=1), CONFIG)
    assert retry.step == Step.TAG
    again = record(release, status, Step.TAG, conflict, now + datetime.timedelta(hours=1), CONFIG)
    assert again.events == ()  # same problem: no new Warning


def test_a_conflicted_backport_is_opened_as_a_draft_and_says_so() -> None:
    release, now = make_release(), T0
    result = BackportResult(BackportOutcome.OPENED_WITH_CONFLICTS, "hotfix/backport-v4.1.2-hotfix.1", "main",
                            pull(3, draft=True), ("app/config.py",))
    decision = record(release, promoted_status(), Step.BACKPORT, result, now, CONFIG)
    assert decision.status.to_json()["backport"]["conflictedFiles"] == ["app/config.py"]
    assert decision.status.to_json()["backport"]["draft"] is True
    assert condition(decision.status, "BackportOpened") == ("True", "OpenedWithConflicts")
    assert "app/config.py" in (decision.status.condition("BackportOpened").message or "")  # type: ignore[union-attr]
    assert decision.events[0].type == "Warning"


def test_the_deadline_is_fixed_in_status_on_first_sight() -> None:
    release = make_release()
    first = plan(release, promoted_status(), T0, CONFIG).status
    longer = Config(deadline=datetime.timedelta(hours=48))
    assert plan(release, first, T0, longer).status.postmortem == PostmortemArea(
        state="Pending", due_at=datetime.datetime(2026, 1, 9, 10, 45, tzinfo=datetime.UTC))
