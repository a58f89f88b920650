"""After promotion: which follow-up step runs next, and what its outcome does to status (pure).

The follow-ups (tag -> release -> backport -> post-mortem pull request -> post-mortem deadline
checks, plus the one overdue issue) run once the bake has passed. They never touch the lifecycle's
phase: they only own status.release, status.backport, status.postmortem, the conditions Released,
BackportOpened, PostmortemFiled, PostmortemComplete and PostmortemOverdue, and a few audit entries.

Everything needed to resume lives in those three typed status areas, so a restarted operator continues
where it stopped; the GitHub steps themselves look up before they write, so a step repeated after a
crash (its effect landed, its status write did not) finds its earlier result instead of writing twice.

Failures: a TransientError backs off exponentially (attempts kept in the step's status area,
GitHub's Retry-After honoured) and blocks the later steps, which need its result; a PermanentError
sets the condition False with a reason, posts one Warning, and is retried only slowly
(``permanent_retry_seconds``: a person may fix the credentials or delete a stray tag) while the
independent later steps go on.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from hotfix_operator.api import Phase, Reason
from hotfix_operator.core.actions import Event
from hotfix_operator.core.followup_results import PostmortemState
from hotfix_operator.core.followup_steps import RULES, Recorder, Result, Step, area_of
from hotfix_operator.core.model import PostmortemArea, Release, Status, StepRetry
from hotfix_operator.formats import utc_iso


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


def _postmortem(status: Status) -> PostmortemArea:
    area: PostmortemArea = area_of(status, "postmortem")
    return area


def due_at(status: Status, config: Config) -> datetime.datetime | None:
    """The post-mortem deadline: fixed in status on first sight; policy deadline after promotion (the tag)."""
    fixed = _postmortem(status).due_at
    if fixed is not None:
        return fixed
    promoted = status.timestamps.promoted
    return None if promoted is None else promoted + config.deadline


def is_done(step: Step, status: Status) -> bool:
    return RULES[step].done(status)


def _last_failure(status: Status, step: Step) -> StepRetry | None:
    return (area_of(status, RULES[step].area).retries or {}).get(step.value)


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
        if step == Step.UNDO_NOTE and not is_done(Step.RELEASE, status):
            continue  # the undo line goes into the published release's notes
        if step == Step.UNDO_POSTMORTEM and not is_done(Step.POSTMORTEM_PR, status):
            continue  # and onto the post-mortem's pull request, once there is one
        failed = _last_failure(status, step)
        if failed is not None:
            if failed.retry_at is not None and now < failed.retry_at:
                waits.append(failed.retry_at)
                if failed.failure == "Transient":
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
    return Plan(status, None, max(0.0, (min(waits) - now).total_seconds()), False)


def _applies(step: Step, status: Status) -> bool:
    if step == Step.OVERDUE_ISSUE:
        return _postmortem(status).state == PostmortemState.OVERDUE
    if step in (Step.UNDO_NOTE, Step.UNDO_POSTMORTEM):
        return status.phase == Phase.UNDONE
    return True


def _next_check(status: Status, config: Config) -> datetime.datetime | None:
    postmortem = _postmortem(status)
    if postmortem.checked_at is None:
        return None
    later = postmortem.checked_at + datetime.timedelta(seconds=config.check_interval)
    deadline = postmortem.due_at
    if postmortem.state != PostmortemState.OVERDUE and deadline is not None and postmortem.checked_at <= deadline:
        # look again just after the deadline, not up to a whole interval later
        later = min(later, deadline + datetime.timedelta(seconds=1))
    return later


def _fix_deadline(status: Status, config: Config) -> Status:
    postmortem = _postmortem(status)
    if postmortem.due_at is not None:
        return status
    deadline = due_at(status, config)
    if deadline is None:
        return status
    fixed = postmortem.model_copy(update={"state": postmortem.state or PostmortemState.PENDING.value,
                                          "due_at": deadline})
    return status.model_copy(update={"postmortem": fixed})


# -- recording an outcome --------------------------------------------------------------------


def record(release: Release, status: Status, step: Step, outcome: Result | Failure, now: datetime.datetime,
           config: Config) -> FollowupDecision:
    """The status, events and next requeue after `step` returned `outcome`."""
    rec = Recorder(release, _fix_deadline(status, config), now)
    if isinstance(outcome, Failure):
        _failed(rec, step, outcome, config)
    else:
        RULES[step].record(rec, outcome)
    after = plan(release, rec.status, now, config)
    return FollowupDecision(after.status, tuple(rec.events), after.requeue_after, after.done, rec.overdue_opened,
                            outcome if isinstance(outcome, Failure) else None, step)


def backoff(attempts: int, retry_after: float | None, config: Config) -> float:
    delay = float(min(config.max_backoff, config.base_backoff * 2 ** max(0, attempts - 1)))
    if retry_after is not None:
        delay = max(delay, min(retry_after, config.permanent_retry))
    return delay


def _failed(rec: Recorder, step: Step, failure: Failure, config: Config) -> None:
    rule = RULES[step]
    area = rec.area(rule.area)
    previous = (area.retries or {}).get(step.value)
    attempts = (previous.attempts if previous else 0) + 1
    delay = backoff(attempts, failure.retry_after, config) if failure.transient else config.permanent_retry
    retry_at = rec.now + datetime.timedelta(seconds=delay)
    retry = StepRetry(failure="Transient" if failure.transient else "Permanent", attempts=attempts,
                      retry_at=retry_at, reason=failure.reason, last_error=failure.message)
    rec.put(rule.area, area.model_copy(update={"retries": {**(area.retries or {}), step.value: retry}}))
    what = f"{step.value} step"
    if failure.transient:
        message = (f"{what} delayed: {failure.message}; retry {attempts} at {utc_iso(retry_at)} "
                   "(production is not affected)")
        # a post-mortem verdict already known stays; the delay is visible in status.postmortem
        if not (step in (Step.POSTMORTEM_CHECK, Step.OVERDUE_ISSUE) and rec.status.condition(rule.condition)):
            rec.set_condition(rule.condition, "Unknown", failure.reason, message)
        if attempts == 1:  # one Event per outage, not one per retry
            rec.post_event("Warning", Reason.FOLLOWUP_DELAYED, message)
            rec.add_audit(Reason.FOLLOWUP_DELAYED, message)
        return
    message = f"{what} failed: {failure.message}; a person must act (retried every {config.permanent_retry:.0f}s)"
    rec.set_condition(rule.condition, "False", failure.reason, message)
    if attempts == 1 or (previous is not None and previous.last_error != failure.message):
        rec.post_event("Warning", failure.reason, message)
        rec.add_audit(f"{step.value}Failed", message)


__all__ = ["Config", "Failure", "FollowupDecision", "Plan", "Result", "Step", "backoff", "due_at", "is_done", "plan",
           "record"]
