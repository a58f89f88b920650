"""The follow-up core: step order, persistence in status, backoff, permanent failures, the deadline."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import io
import json
import tarfile

import pytest

from hotfix_operator.core.followup import Config, Failure, Step, backoff, plan, record
from hotfix_operator.core.model import AuditEntry, Release, Status, Timestamps
from hotfix_operator.followup import build_facts, evidence_files, repository_of
from hotfix_operator.publishing import verify_checksums
from hotfix_operator.publishing.results import (
    BackportOutcome,
    BackportResult,
    IssueRef,
    PostmortemCheck,
    PostmortemPullRequestResult,
    PostmortemState,
    PullRequestRef,
    ReleaseResult,
    TagResult,
)

T0 = datetime.datetime(2026, 1, 8, 10, 45, tzinfo=datetime.UTC)
COMMIT = "a8b1963c1f0e2d3b4a5968776655443322110099"
CONFIG = Config(deadline=datetime.timedelta(hours=24), check_interval=600, base_backoff=5, max_backoff=300,
                permanent_retry=3600)
DUE = T0 + datetime.timedelta(hours=24)


def make_release() -> Release:
    return Release.model_validate({
        "name": "checkout-hotfix", "namespace": "shop", "uid": "u-1", "generation": 2,
        "created": T0 - datetime.timedelta(minutes=20),
        "spec": {
            "version": "4.1.2-hotfix.1", "commitSha": COMMIT,
            "justification": "Checkout fails for every card payment since 09:12 UTC; all revenue is blocked.",
            "ticketUrl": "https://tracker.example.com/INCIDENT-123", "severity": "P0", "riskLevel": "high",
            "requestedBy": "alice",
            "target": {"deployment": "checkout", "service": "checkout", "container": "app"},
            "artifact": {"image": "registry.example.com/shop/checkout@sha256:" + "ab" * 32,
                         "sourceRepository": "github.com/acme/checkout"},
            "approval": {"approvals": [{"approver": "alice", "decision": "Approve"},
                                       {"approver": "bob", "decision": "Approve", "comment": "ok"}]},
        },
    })


def promoted_status(**changes: object) -> Status:
    base = Status(
        phase="Succeeded", incident_id="INC-20260108-102500", tag="v4.1.2-hotfix.1", policy="prod",
        provenance={"builderId": "https://ci.example/builder", "commitSha": COMMIT},
        timestamps=Timestamps(created=T0 - datetime.timedelta(minutes=20), verified=T0 - datetime.timedelta(minutes=19),
                              approved=T0 - datetime.timedelta(minutes=10), promoted=T0,
                              completed=T0 + datetime.timedelta(minutes=2)),
        audit=(AuditEntry(time=T0 - datetime.timedelta(minutes=20), actor="alice", action="Pending"),
               AuditEntry(time=T0, actor="hotfix-operator", action="Promoted")),
    )
    return base.model_copy(update=changes)


def pull(number: int, draft: bool = False) -> PullRequestRef:
    return PullRequestRef(number, f"https://github.com/acme/checkout/pull/{number}", draft, "open", False)


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
    assert status.release == {"tag": "v4.1.2-hotfix.1", "commit": COMMIT, "tagged": True, "state": "Published",
                              "url": RESULTS[Step.RELEASE].html_url, "id": 7,  # type: ignore[union-attr]
                              "assets": {"SHA256SUMS": "sha256:" + "1" * 64}}
    assert status.backport is not None and status.backport["pullRequest"].endswith("/pull/1")
    assert status.postmortem is not None
    assert status.postmortem["dueAt"] == "2026-01-09T10:45:00Z" and status.postmortem["filed"] is True
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
    assert done.status.postmortem is not None and done.status.postmortem["issue"] == "https://gh/issues/5"


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
        assert status.release is not None and status.release["retries"]["Tag"]["attempts"] == attempt
        now += datetime.timedelta(seconds=decision.requeue_after)
    assert delays == [5, 10, 20, 40]
    assert len(events) == 1 and events[0].reason == "FollowupDelayed"  # one Event per outage
    assert condition(status, "Released") == ("Unknown", "GitHubUnavailable")
    limited = record(release, status, Step.TAG, Failure(True, "GitHubUnavailable", "403 secondary", 120), now,
                     CONFIG)
    assert limited.requeue_after == 120
    assert backoff(20, None, CONFIG) == 300
    recovered = record(release, status, Step.TAG, RESULTS[Step.TAG], now, CONFIG)
    assert recovered.status.release is not None and "retries" not in recovered.status.release
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
    assert decision.status.backport is not None
    assert decision.status.backport["conflictedFiles"] == ["app/config.py"]
    assert decision.status.backport["draft"] is True
    assert condition(decision.status, "BackportOpened") == ("True", "OpenedWithConflicts")
    assert "app/config.py" in (decision.status.condition("BackportOpened").message or "")  # type: ignore[union-attr]
    assert decision.events[0].type == "Warning"


def test_the_deadline_is_fixed_in_status_on_first_sight() -> None:
    release = make_release()
    first = plan(release, promoted_status(), T0, CONFIG).status
    longer = Config(deadline=datetime.timedelta(hours=48))
    assert plan(release, first, T0, longer).status.postmortem == {"state": "Pending",
                                                                  "dueAt": "2026-01-09T10:45:00Z"}


def test_evidence_is_deterministic_consistent_and_limited_to_what_is_final_at_promotion() -> None:
    release = make_release()
    status = promoted_status()
    files = evidence_files(release, status)
    assert sorted(files) == ["SHA256SUMS", "evidence.tar.gz", "hotfix_record.json", "provenance.json"]
    verify_checksums(files)
    listed = dict(reversed(line.split("  ")) for line in files["SHA256SUMS"].decode().splitlines())
    assert listed["evidence.tar.gz"] == hashlib.sha256(files["evidence.tar.gz"]).hexdigest()
    # later status changes (follow-up audit entries, completion) do not change a single byte
    later = status.model_copy(update={
        "audit": (*status.audit, AuditEntry(time=T0 + datetime.timedelta(minutes=5), actor="x", action="Released")),
        "release": {"url": "u"}, "conditions": ()})
    assert evidence_files(release, later) == files
    record_json = json.loads(files["hotfix_record.json"])
    assert record_json["incidentId"] == "INC-20260108-102500" and record_json["commitSha"] == COMMIT
    assert [a["approver"] for a in record_json["approvals"]] == ["bob"]  # the requester's own approval is void
    assert [a["action"] for a in record_json["audit"]] == ["Pending", "Promoted"]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(files["evidence.tar.gz"]))) as archive:
        assert sorted(archive.getnames()) == ["hotfix_record.json", "provenance.json"]
        member = archive.extractfile("provenance.json")
        assert member is not None and member.read() == files["provenance.json"]


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
