"""After promotion: which follow-up step runs next, and what its outcome does to status (pure).

The follow-ups (tag -> release -> backport -> post-mortem pull request -> post-mortem deadline
checks, plus the one overdue issue) run once the bake has passed. They never touch the lifecycle's
phase: they only own status.release, status.backport, status.postmortem, the conditions Released,
BackportOpened, PostmortemFiled, PostmortemComplete and PostmortemOverdue, and a few audit entries.

Everything needed to resume lives in those three status dicts, so a restarted operator continues
where it stopped; the GitHub steps themselves look up before they write, so a step repeated after a
crash (its effect landed, its status write did not) finds its earlier result instead of writing twice.

Failures: a TransientError backs off exponentially (attempts kept in the step's status dict,
GitHub's Retry-After honoured) and blocks the later steps, which need its result; a PermanentError
sets the condition False with a reason, posts one Warning, and is retried only slowly
(``permanent_retry_seconds``: a person may fix the credentials or delete a stray tag) while the
independent later steps go on.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hotfix_operator.core.actions import Event
from hotfix_operator.core.conditions import ConditionStatus, set_condition
from hotfix_operator.core.model import AuditEntry, Release, Status
from hotfix_operator.publishing.results import (
    BackportOutcome,
    BackportResult,
    IssueRef,
    PostmortemCheck,
    PostmortemPullRequestResult,
    PostmortemState,
    ReleaseResult,
    TagResult,
)

OPERATOR = "hotfix-operator"
AUDIT_LIMIT = 50  # the lifecycle's bound


class Step(enum.StrEnum):
    TAG = "Tag"
    RELEASE = "Release"
    BACKPORT = "Backport"
    POSTMORTEM_PR = "PostmortemPullRequest"
    POSTMORTEM_CHECK = "PostmortemCheck"
    OVERDUE_ISSUE = "OverdueIssue"


# Which status dict holds a step's state (and its retry bookkeeping).
AREA = {
    Step.TAG: "release",
    Step.RELEASE: "release",
    Step.BACKPORT: "backport",
    Step.POSTMORTEM_PR: "postmortem",
    Step.POSTMORTEM_CHECK: "postmortem",
    Step.OVERDUE_ISSUE: "postmortem",
}
# The condition a step's failure is reported in.
CONDITION = {
    Step.TAG: "Released",
    Step.RELEASE: "Released",
    Step.BACKPORT: "BackportOpened",
    Step.POSTMORTEM_PR: "PostmortemFiled",
    Step.POSTMORTEM_CHECK: "PostmortemComplete",
    Step.OVERDUE_ISSUE: "PostmortemOverdue",
}
BACKPORT_DONE = {o.value for o in BackportOutcome}


@dataclass(frozen=True)
class Config:
    deadline: datetime.timedelta = datetime.timedelta(hours=24)
    check_interval: float = 600.0  # seconds between post-mortem checks
    base_backoff: float = 5.0
    max_backoff: float = 300.0
    permanent_retry: float = 3600.0


@dataclass(frozen=True)
class Failure:
    """A step's error, as plain data: what the shell caught."""

    transient: bool
    reason: str  # CamelCase
    message: str  # already free of secrets
    retry_after: float | None = None


Result = TagResult | ReleaseResult | BackportResult | PostmortemPullRequestResult | PostmortemCheck | IssueRef


@dataclass(frozen=True)
class Plan:
    status: Status  # with the post-mortem deadline fixed on first sight
    step: Step | None  # run this now; None: nothing due
    requeue_after: float | None  # when something is due next (None with done)
    done: bool  # every follow-up finished: nothing left to do, ever


@dataclass(frozen=True)
class FollowupDecision:
    status: Status
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None
    done: bool = False
    overdue_opened: bool = False  # the overdue issue was recorded now (metric)
    failure: Failure | None = None
    step: Step | None = None


# -- reading the status dicts ----------------------------------------------------------------


def _area(status: Status, name: str) -> dict[str, Any]:
    value = getattr(status, name)
    return dict(value) if isinstance(value, Mapping) else {}


def _time(value: Any) -> datetime.datetime | None:
    if isinstance(value, datetime.datetime):
        return value
    if isinstance(value, str) and value:
        try:
            parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)
    return None


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def due_at(status: Status, config: Config) -> datetime.datetime | None:
    """The post-mortem deadline: fixed in status on first sight; policy deadline after promotion (the tag)."""
    fixed = _time(_area(status, "postmortem").get("dueAt"))
    if fixed is not None:
        return fixed
    promoted = status.timestamps.promoted
    return None if promoted is None else promoted + config.deadline


def is_done(step: Step, status: Status) -> bool:
    release, backport, postmortem = _area(status, "release"), _area(status, "backport"), _area(status, "postmortem")
    complete = postmortem.get("state") == PostmortemState.COMPLETE.value
    if step == Step.TAG:
        return bool(release.get("tagged"))
    if step == Step.RELEASE:
        return bool(release.get("url"))
    if step == Step.BACKPORT:
        return backport.get("state") in BACKPORT_DONE
    if step == Step.POSTMORTEM_PR:
        return bool(postmortem.get("filed")) or complete
    if step == Step.POSTMORTEM_CHECK:
        return complete
    return bool(postmortem.get("issue")) or complete  # OVERDUE_ISSUE


def _failed_step(status: Status, step: Step) -> tuple[bool, datetime.datetime | None] | None:
    """(permanent?, retry at) when this step's last attempt failed."""
    failed = _retries(_area(status, AREA[step])).get(step.value)
    if not failed:
        return None
    return failed.get("failure") == "Permanent", _time(failed.get("retryAt"))


def _retries(area: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per step: failure (Transient | Permanent), attempts, retryAt, reason, lastError."""
    value = area.get("retries")
    return {str(k): dict(v) for k, v in value.items() if isinstance(v, Mapping)} if isinstance(value, Mapping) else {}


# -- planning ------------------------------------------------------------------------------


def plan(release: Release, status: Status, now: datetime.datetime, config: Config) -> Plan:
    """The next step due now, or when one will be; in order, since later steps link earlier results."""
    status = _fix_deadline(status, config)
    waits: list[datetime.datetime] = []
    blocked = False  # a transient failure holds back the steps after it
    for step in Step:
        if is_done(step, status) or not _applies(step, status):
            continue
        if step == Step.RELEASE and not is_done(Step.TAG, status):
            continue  # never publish a release whose tag is not there
        failed = _failed_step(status, step)
        if failed is not None:
            permanent, retry_at = failed
            if retry_at is not None and now < retry_at:
                waits.append(retry_at)
                if not permanent:
                    blocked = True
                    break
                continue
            return Plan(status, step, 0.0, False)
        if step == Step.POSTMORTEM_CHECK:
            check_at = _next_check(status, config)
            if check_at is not None and now < check_at:
                waits.append(check_at)
                continue
        return Plan(status, step, 0.0, False)
    if not blocked and all(is_done(step, status) or not _applies(step, status) for step in Step):
        return Plan(status, None, None, True)
    if not waits:
        return Plan(status, None, config.permanent_retry, False)
    wait = max(0.0, (min(waits) - now).total_seconds())
    return Plan(status, None, wait, False)


def _applies(step: Step, status: Status) -> bool:
    if step == Step.OVERDUE_ISSUE:
        return _area(status, "postmortem").get("state") == PostmortemState.OVERDUE.value
    return True


def _next_check(status: Status, config: Config) -> datetime.datetime | None:
    postmortem = _area(status, "postmortem")
    checked = _time(postmortem.get("checkedAt"))
    if checked is None:
        return None
    later = checked + datetime.timedelta(seconds=config.check_interval)
    deadline = _time(postmortem.get("dueAt"))
    if postmortem.get("state") != PostmortemState.OVERDUE.value and deadline is not None and checked <= deadline:
        # look again just after the deadline, not up to a whole interval later
        later = min(later, deadline + datetime.timedelta(seconds=1))
    return later


def _fix_deadline(status: Status, config: Config) -> Status:
    postmortem = _area(status, "postmortem")
    if "dueAt" in postmortem:
        return status
    deadline = due_at(status, config)
    if deadline is None:
        return status
    postmortem.setdefault("state", PostmortemState.PENDING.value)
    postmortem["dueAt"] = _iso(deadline)
    return status.model_copy(update={"postmortem": postmortem})


# -- recording an outcome --------------------------------------------------------------------


@dataclass
class _Record:
    release: Release
    status: Status
    now: datetime.datetime
    events: list[Event] = field(default_factory=list)
    overdue_opened: bool = False

    def area(self, name: str) -> dict[str, Any]:
        return _area(self.status, name)

    def put(self, name: str, values: dict[str, Any]) -> None:
        self.status = self.status.model_copy(update={name: values})

    def condition(self, type_: str, status: ConditionStatus, reason: str, message: str) -> None:
        self.status = self.status.model_copy(update={"conditions": set_condition(
            self.status.conditions, type_, status, reason, message,
            generation=self.release.generation, now=self.now)})

    def audit(self, action: str, detail: str) -> None:
        entries = (*self.status.audit, AuditEntry(time=self.now, actor=OPERATOR, action=action, detail=detail))
        self.status = self.status.model_copy(update={"audit": entries[-AUDIT_LIMIT:]})

    def event(self, type_: str, reason: str, message: str) -> None:
        self.events.append(Event("Warning" if type_ == "Warning" else "Normal", reason, message))

    def succeeded(self, step: Step, area_name: str, values: dict[str, Any]) -> None:
        area = self.area(area_name)
        retries = _retries(area)
        if retries.pop(step.value, None) is not None:
            if retries:
                area["retries"] = retries
            else:
                area.pop("retries", None)
        area.update(values)
        self.put(area_name, area)


def record(release: Release, status: Status, step: Step, outcome: Result | Failure, now: datetime.datetime,
           config: Config) -> FollowupDecision:
    """The status, events and next requeue after `step` returned `outcome`."""
    status = _fix_deadline(status, config)
    rec = _Record(release, status, now)
    if isinstance(outcome, Failure):
        _failed(rec, step, outcome, config)
    else:
        _succeeded(rec, step, outcome)
    after = plan(release, rec.status, now, config)
    return FollowupDecision(after.status, tuple(rec.events), after.requeue_after, after.done, rec.overdue_opened,
                            outcome if isinstance(outcome, Failure) else None, step)


def backoff(attempts: int, retry_after: float | None, config: Config) -> float:
    delay = float(min(config.max_backoff, config.base_backoff * 2 ** max(0, attempts - 1)))
    if retry_after is not None:
        delay = max(delay, min(retry_after, config.permanent_retry))
    return delay


def _failed(rec: _Record, step: Step, failure: Failure, config: Config) -> None:
    name = AREA[step]
    area = rec.area(name)
    retries = _retries(area)
    previous = retries.get(step.value, {})
    attempts = int(previous.get("attempts", 0)) + 1
    previous_error = previous.get("lastError")
    if failure.transient:
        delay = backoff(attempts, failure.retry_after, config)
        kind = "Transient"
    else:
        delay = config.permanent_retry
        kind = "Permanent"
    retry_at = rec.now + datetime.timedelta(seconds=delay)
    retries[step.value] = {"failure": kind, "attempts": attempts, "retryAt": _iso(retry_at),
                           "reason": failure.reason, "lastError": failure.message}
    area["retries"] = retries
    rec.put(name, area)
    what = f"{step.value} step"
    if failure.transient:
        message = (f"{what} delayed: {failure.message}; retry {attempts} at {_iso(retry_at)} "
                   "(production is not affected)")
        if step in (Step.POSTMORTEM_CHECK, Step.OVERDUE_ISSUE) and rec.status.condition(CONDITION[step]):
            pass  # keep the last known post-mortem verdict; the delay is visible in status.postmortem
        else:
            rec.condition(CONDITION[step], "Unknown", failure.reason, message)
        if attempts == 1:  # one Event per outage, not one per retry
            rec.event("Warning", "FollowupDelayed", message)
            rec.audit("FollowupDelayed", message)
        return
    message = f"{what} failed: {failure.message}; a person must act (retried every {config.permanent_retry:.0f}s)"
    rec.condition(CONDITION[step], "False", failure.reason, message)
    if attempts == 1 or previous_error != failure.message:
        rec.event("Warning", failure.reason, message)
        rec.audit(f"{step.value}Failed", message)


def _succeeded(rec: _Record, step: Step, outcome: Result) -> None:
    tag = rec.release.spec.tag
    if step == Step.TAG:
        assert isinstance(outcome, TagResult)
        rec.succeeded(step, "release", {"tag": outcome.tag, "commit": outcome.commit_sha, "tagged": True,
                                        "state": "Tagged"})
        detail = f"annotated tag {outcome.tag} at {outcome.commit_sha[:12]}" + (
            "" if outcome.created else " (already there)")
        rec.condition("Released", "Unknown", "Tagged", f"{detail}; publishing the release next")
        rec.audit("Tagged", detail)
        rec.event("Normal", "Tagged", detail)
    elif step == Step.RELEASE:
        assert isinstance(outcome, ReleaseResult)
        rec.succeeded(step, "release", {"url": outcome.html_url, "id": outcome.release_id,
                                        "assets": dict(sorted(outcome.asset_digests.items())), "state": "Published"})
        detail = f"release {tag} published (not latest) with {len(outcome.asset_digests)} evidence assets: " \
                 f"{outcome.html_url}"
        rec.condition("Released", "True", "Published", detail)
        rec.audit("Released", detail)
        rec.event("Normal", "Released", detail)
    elif step == Step.BACKPORT:
        assert isinstance(outcome, BackportResult)
        pull = outcome.pull_request
        values: dict[str, Any] = {"state": outcome.outcome.value, "branch": outcome.branch, "base": outcome.base}
        if pull is not None:
            values |= {"pullRequest": pull.html_url, "number": pull.number, "draft": pull.draft}
        if outcome.conflicted_files:
            values["conflictedFiles"] = list(outcome.conflicted_files)
        rec.succeeded(step, "backport", values)
        if outcome.outcome == BackportOutcome.NOT_NEEDED:
            detail = f"commit {rec.release.spec.commit_sha[:12]} is already on {outcome.base}; no backport needed"
            reason = "NotNeeded"
        elif outcome.outcome == BackportOutcome.OPENED_WITH_CONFLICTS or outcome.conflicted_files:
            files = ", ".join(outcome.conflicted_files)
            detail = (f"draft pull request {pull.html_url if pull else '?'} onto {outcome.base} has conflicts in "
                      f"{files}: resolve them by hand on branch {outcome.branch}")
            reason = "OpenedWithConflicts"
        else:
            detail = f"pull request {pull.html_url if pull else '?'} onto {outcome.base}"
            reason = outcome.outcome.value
        rec.condition("BackportOpened", "True", reason, detail)
        rec.audit("BackportOpened", detail)
        rec.event("Warning" if reason == "OpenedWithConflicts" else "Normal", "BackportOpened", detail)
    elif step == Step.POSTMORTEM_PR:
        assert isinstance(outcome, PostmortemPullRequestResult)
        pull = outcome.pull_request
        values = {"filed": True, "path": outcome.path, "branch": outcome.branch}
        if pull is not None:
            values |= {"pullRequest": pull.html_url, "number": pull.number}
            detail = f"post-mortem pull request {pull.html_url} adds {outcome.path}"
        else:
            detail = f"{outcome.path} is already on the default branch"
        rec.succeeded(step, "postmortem", values)
        due = rec.area("postmortem").get("dueAt", "?")
        rec.condition("PostmortemFiled", "True", "Filed", detail)
        rec.condition("PostmortemComplete", "False", "Pending", f"{outcome.path} is due on the default branch "
                      f"by {due}")
        rec.audit("PostmortemFiled", detail)
        rec.event("Normal", "PostmortemFiled", f"{detail}; due {due}")
    elif step == Step.POSTMORTEM_CHECK:
        assert isinstance(outcome, PostmortemCheck)
        before = rec.area("postmortem").get("state")
        rec.succeeded(step, "postmortem", {"state": outcome.state.value, "checkedAt": _iso(rec.now),
                                           "dueAt": _iso(outcome.due_at)})
        if outcome.state == PostmortemState.COMPLETE:
            detail = f"{outcome.path} is on the default branch"
            rec.condition("PostmortemComplete", "True", "Complete", detail)
            if rec.status.condition("PostmortemOverdue") is not None:
                rec.condition("PostmortemOverdue", "False", "Complete", detail)
            if before != PostmortemState.COMPLETE.value:
                rec.audit("PostmortemComplete", detail)
                rec.event("Normal", "PostmortemComplete", detail)
        elif outcome.state == PostmortemState.OVERDUE:
            detail = f"{outcome.path} was due on the default branch by {_iso(outcome.due_at)}"
            rec.condition("PostmortemComplete", "False", "Overdue", detail)
        else:
            rec.condition("PostmortemComplete", "False", "Pending",
                          f"{outcome.path} is due on the default branch by {_iso(outcome.due_at)}")
    else:  # OVERDUE_ISSUE
        assert isinstance(outcome, IssueRef)
        first = not rec.area("postmortem").get("issue")
        rec.succeeded(step, "postmortem", {"issue": outcome.html_url, "issueNumber": outcome.number})
        due = rec.area("postmortem").get("dueAt", "?")
        detail = f"the post-mortem for {tag} was due by {due}; issue {outcome.html_url}"
        rec.condition("PostmortemOverdue", "True", "Overdue", detail)
        if first:
            rec.overdue_opened = True
            rec.audit("PostmortemOverdue", detail)
            rec.event("Warning", "PostmortemOverdue", detail)


def summary(status: Status) -> str:
    """One line for logs: where the follow-ups stand."""
    parts = []
    for name in ("release", "backport", "postmortem"):
        area = _area(status, name)
        if area:
            parts.append(f"{name}={area.get('state', '?')}")
    return ", ".join(parts) or "not started"


__all__ = ["AREA", "CONDITION", "Config", "Failure", "FollowupDecision", "Plan", "Result", "Step", "backoff",
           "due_at", "is_done", "plan", "record", "summary"]
