"""The follow-up steps as a table of rules: for each step, where its state lives in status, which
condition reports it, when it is done, and what its success records. Pure; used by core.followup."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hotfix_operator.api import ConditionType, Reason
from hotfix_operator.core.followup_results import (
    BackportOutcome,
    BackportResult,
    IssueRef,
    PostmortemCheck,
    PostmortemPullRequestResult,
    PostmortemState,
    ReleaseResult,
    TagResult,
    UndoNoteResult,
)
from hotfix_operator.core.model import BackportArea, FollowupArea, PostmortemArea, ReleaseArea, Status
from hotfix_operator.core.status_builder import StatusBuilder
from hotfix_operator.formats import utc_iso


class Step(StrEnum):
    TAG = "Tag"
    RELEASE = "Release"
    # after an undo (phase Undone): the release notes gain the "Undone at ... by ... because ..." line
    UNDO_NOTE = "UndoNote"
    BACKPORT = "Backport"
    POSTMORTEM_PR = "PostmortemPullRequest"
    # after an undo (phase Undone): the post-mortem pull request gets one comment with that line
    UNDO_POSTMORTEM = "UndoPostmortemComment"
    POSTMORTEM_CHECK = "PostmortemCheck"
    OVERDUE_ISSUE = "OverdueIssue"


Result = (TagResult | ReleaseResult | BackportResult | PostmortemPullRequestResult | PostmortemCheck | IssueRef
          | UndoNoteResult)
AreaName = str  # "release" | "backport" | "postmortem": the Status field
# status.postmortem.undoComment when the post-mortem had no pull request to comment on
NO_PULL_REQUEST = "none"


@dataclass
class Recorder(StatusBuilder):
    """A StatusBuilder that also updates one follow-up area and notes an opened overdue issue."""

    overdue_opened: bool = False

    def area(self, name: AreaName) -> FollowupArea:
        area: FollowupArea = area_of(self.status, name)
        return area

    def put(self, name: AreaName, area: FollowupArea) -> None:
        self.update(**{name: area})

    def succeeded(self, step: Step, **values: Any) -> None:
        """Record a step's result and clear its failure bookkeeping."""
        name = RULES[step].area
        area = self.area(name)
        retries = dict(area.retries or {})
        retries.pop(step.value, None)
        self.put(name, area.model_copy(update={**values, "retries": retries or None}))


def area_of(status: Status, name: AreaName) -> Any:
    """The typed area `name` of status, or an empty one. Any: each caller names which area it reads."""
    empty = {"release": ReleaseArea, "backport": BackportArea, "postmortem": PostmortemArea}[name]()
    return getattr(status, name) or empty


@dataclass(frozen=True)
class StepRule:
    area: AreaName
    condition: ConditionType
    done: Callable[[Status], bool]
    record: Callable[[Recorder, Any], None]


def _postmortem(status: Status) -> PostmortemArea:
    area: PostmortemArea = area_of(status, "postmortem")
    return area


def _complete(status: Status) -> bool:
    return _postmortem(status).state == PostmortemState.COMPLETE


def _record_tag(rec: Recorder, outcome: TagResult) -> None:
    rec.succeeded(Step.TAG, tag=outcome.tag, commit=outcome.commit_sha, tagged=True, state="Tagged")
    detail = f"annotated tag {outcome.tag} at {outcome.commit_sha[:12]}" + ("" if outcome.created else
                                                                             " (already there)")
    rec.set_condition(ConditionType.RELEASED, "Unknown", Reason.TAGGED, f"{detail}; publishing the release next")
    rec.add_audit(Reason.TAGGED, detail)
    rec.post_event("Normal", Reason.TAGGED, detail)


def _record_release(rec: Recorder, outcome: ReleaseResult) -> None:
    rec.succeeded(Step.RELEASE, url=outcome.html_url, id=outcome.release_id,
                  assets=dict(sorted(outcome.asset_digests.items())), state="Published")
    detail = (f"release {rec.release.spec.tag} published (not latest) with {len(outcome.asset_digests)} evidence "
              f"assets: {outcome.html_url}")
    rec.set_condition(ConditionType.RELEASED, "True", Reason.PUBLISHED, detail)
    rec.add_audit("Released", detail)
    rec.post_event("Normal", "Released", detail)


def _record_undo_note(rec: Recorder, outcome: UndoNoteResult) -> None:
    rec.succeeded(Step.UNDO_NOTE, undo_noted=True)
    detail = f"the release notes of {rec.release.spec.tag} say it was undone; the tag stays: {outcome.html_url}" + (
        "" if outcome.created else " (already there)")
    rec.set_condition(ConditionType.UNDO_PUBLISHED, "True", Reason.UNDO_NOTED, detail)
    rec.add_audit(Reason.UNDO_NOTED, detail)
    rec.post_event("Normal", Reason.UNDO_NOTED, detail)


def _record_undo_postmortem(rec: Recorder, outcome: UndoNoteResult) -> None:
    rec.succeeded(Step.UNDO_POSTMORTEM, undo_comment=outcome.html_url or NO_PULL_REQUEST)
    if outcome.html_url:
        detail = f"the post-mortem pull request of {rec.release.spec.tag} was told of the undo: {outcome.html_url}" + (
            "" if outcome.created else " (already there)")
    else:
        detail = (f"the post-mortem of {rec.release.spec.tag} was already on the default branch, with no pull "
                  "request to tell of the undo; add it to the post-mortem by hand")
    rec.set_condition(ConditionType.UNDO_POSTMORTEM_NOTED, "True" if outcome.html_url else "False",
                      Reason.UNDO_POSTMORTEM_NOTED if outcome.html_url else Reason.NOT_NEEDED, detail)
    rec.add_audit(Reason.UNDO_POSTMORTEM_NOTED, detail)
    rec.post_event("Normal" if outcome.html_url else "Warning", Reason.UNDO_POSTMORTEM_NOTED, detail)


def _record_backport(rec: Recorder, outcome: BackportResult) -> None:
    pull = outcome.pull_request
    values: dict[str, Any] = {"state": outcome.outcome.value, "branch": outcome.branch, "base": outcome.base}
    if pull is not None:
        values |= {"pull_request": pull.html_url, "number": pull.number, "draft": pull.draft}
    if outcome.conflicted_files:
        values["conflicted_files"] = tuple(outcome.conflicted_files)
    rec.succeeded(Step.BACKPORT, **values)
    url = pull.html_url if pull else "?"
    if outcome.outcome == BackportOutcome.NOT_NEEDED:
        detail = f"commit {rec.release.spec.commit_sha[:12]} is already on {outcome.base}; no backport needed"
        reason: str = Reason.NOT_NEEDED
    elif outcome.outcome == BackportOutcome.OPENED_WITH_CONFLICTS or outcome.conflicted_files:
        detail = (f"draft pull request {url} onto {outcome.base} has conflicts in "
                  f"{', '.join(outcome.conflicted_files)}: resolve them by hand on branch {outcome.branch}")
        reason = Reason.OPENED_WITH_CONFLICTS
    else:
        detail, reason = f"pull request {url} onto {outcome.base}", outcome.outcome.value
    rec.set_condition(ConditionType.BACKPORT_OPENED, "True", reason, detail)
    rec.add_audit("BackportOpened", detail)
    rec.post_event("Warning" if reason == Reason.OPENED_WITH_CONFLICTS else "Normal", "BackportOpened", detail)


def _due(rec: Recorder) -> str:
    due = _postmortem(rec.status).due_at
    return utc_iso(due) if due is not None else "?"


def _record_postmortem_pr(rec: Recorder, outcome: PostmortemPullRequestResult) -> None:
    pull = outcome.pull_request
    values: dict[str, Any] = {"filed": True, "path": outcome.path, "branch": outcome.branch}
    if pull is not None:
        values |= {"pull_request": pull.html_url, "number": pull.number}
        detail = f"post-mortem pull request {pull.html_url} adds {outcome.path}"
    else:
        detail = f"{outcome.path} is already on the default branch"
    rec.succeeded(Step.POSTMORTEM_PR, **values)
    due = _due(rec)
    rec.set_condition(ConditionType.POSTMORTEM_FILED, "True", Reason.FILED, detail)
    rec.set_condition(ConditionType.POSTMORTEM_COMPLETE, "False", Reason.PENDING,
                      f"{outcome.path} is due on the default branch by {due}")
    rec.add_audit("PostmortemFiled", detail)
    rec.post_event("Normal", "PostmortemFiled", f"{detail}; due {due}")


def _record_postmortem_check(rec: Recorder, outcome: PostmortemCheck) -> None:
    before = _postmortem(rec.status).state
    rec.succeeded(Step.POSTMORTEM_CHECK, state=outcome.state.value, checked_at=rec.now, due_at=outcome.due_at)
    due = utc_iso(outcome.due_at)
    if outcome.state == PostmortemState.COMPLETE:
        detail = f"{outcome.path} is on the default branch"
        rec.set_condition(ConditionType.POSTMORTEM_COMPLETE, "True", Reason.COMPLETE, detail)
        if rec.status.condition(ConditionType.POSTMORTEM_OVERDUE) is not None:
            rec.set_condition(ConditionType.POSTMORTEM_OVERDUE, "False", Reason.COMPLETE, detail)
        if before != PostmortemState.COMPLETE:
            rec.add_audit("PostmortemComplete", detail)
            rec.post_event("Normal", "PostmortemComplete", detail)
    elif outcome.state == PostmortemState.OVERDUE:
        rec.set_condition(ConditionType.POSTMORTEM_COMPLETE, "False", Reason.OVERDUE,
                          f"{outcome.path} was due on the default branch by {due}")
    else:
        rec.set_condition(ConditionType.POSTMORTEM_COMPLETE, "False", Reason.PENDING,
                          f"{outcome.path} is due on the default branch by {due}")


def _record_overdue_issue(rec: Recorder, outcome: IssueRef) -> None:
    first = not _postmortem(rec.status).issue
    rec.succeeded(Step.OVERDUE_ISSUE, issue=outcome.html_url, issue_number=outcome.number)
    detail = f"the post-mortem for {rec.release.spec.tag} was due by {_due(rec)}; issue {outcome.html_url}"
    rec.set_condition(ConditionType.POSTMORTEM_OVERDUE, "True", Reason.OVERDUE, detail)
    if first:
        rec.overdue_opened = True
        rec.add_audit("PostmortemOverdue", detail)
        rec.post_event("Warning", "PostmortemOverdue", detail)


RULES: dict[Step, StepRule] = {
    Step.TAG: StepRule("release", ConditionType.RELEASED,
                       lambda st: bool(area_of(st, "release").tagged), _record_tag),
    Step.RELEASE: StepRule("release", ConditionType.RELEASED,
                           lambda st: bool(area_of(st, "release").url), _record_release),
    Step.UNDO_NOTE: StepRule("release", ConditionType.UNDO_PUBLISHED,
                             lambda st: bool(area_of(st, "release").undo_noted), _record_undo_note),
    Step.BACKPORT: StepRule("backport", ConditionType.BACKPORT_OPENED,
                            lambda st: area_of(st, "backport").state in {o.value for o in BackportOutcome},
                            _record_backport),
    Step.POSTMORTEM_PR: StepRule("postmortem", ConditionType.POSTMORTEM_FILED,
                                 lambda st: bool(_postmortem(st).filed) or _complete(st), _record_postmortem_pr),
    Step.UNDO_POSTMORTEM: StepRule("postmortem", ConditionType.UNDO_POSTMORTEM_NOTED,
                                   lambda st: bool(_postmortem(st).undo_comment), _record_undo_postmortem),
    Step.POSTMORTEM_CHECK: StepRule("postmortem", ConditionType.POSTMORTEM_COMPLETE, _complete,
                                    _record_postmortem_check),
    Step.OVERDUE_ISSUE: StepRule("postmortem", ConditionType.POSTMORTEM_OVERDUE,
                                 lambda st: bool(_postmortem(st).issue) or _complete(st), _record_overdue_issue),
}
