"""What each publishing step reports back, as plain data the follow-up core records in status. Pure:
the publishing adapters build these from PyGithub objects (publishing.pulls.pull_request_ref)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class TagResult:
    tag: str
    commit_sha: str
    tag_object_sha: str | None  # None for a lightweight tag someone else created
    created: bool


@dataclass(frozen=True)
class ReleaseResult:
    release_id: int
    html_url: str
    asset_digests: Mapping[str, str]  # name -> "sha256:<hex>" of the bytes uploaded
    created: bool
    published: bool  # published by this call (False: it already was)


@dataclass(frozen=True)
class UndoNoteResult:
    """The release notes, or the post-mortem pull request's comments, carry the undo line (created: added
    now; False: it was already there). html_url is empty when there was nothing to tell: a post-mortem
    already on the default branch, with no pull request."""

    html_url: str
    created: bool


@dataclass(frozen=True)
class PullRequestRef:
    number: int
    html_url: str
    draft: bool
    state: str  # open | closed
    merged: bool


class BackportOutcome(StrEnum):
    OPENED = "Opened"
    OPENED_WITH_CONFLICTS = "OpenedWithConflicts"
    EXISTING = "Existing"
    NOT_NEEDED = "NotNeeded"  # the hotfix commit is already on the default branch


@dataclass(frozen=True)
class BackportResult:
    outcome: BackportOutcome
    branch: str
    base: str
    pull_request: PullRequestRef | None
    conflicted_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class PostmortemPullRequestResult:
    branch: str
    path: str
    pull_request: PullRequestRef | None  # None when the file is already on the default branch
    created: bool


class PostmortemState(StrEnum):
    PENDING = "Pending"
    OVERDUE = "Overdue"
    COMPLETE = "Complete"


@dataclass(frozen=True)
class PostmortemCheck:
    state: PostmortemState
    path: str
    due_at: datetime


@dataclass(frozen=True)
class IssueRef:
    number: int
    html_url: str
    created: bool
