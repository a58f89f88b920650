"""What a promoted hotfix publishes: the facts every publishing step renders and acts on."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import NamedTuple

from hotfix_operator.api import release_tag

from .errors import InvalidFactsError

VERSION_PATTERN = re.compile(r"^\d+\.\d+\.\d+(-hotfix\.\d+)?$")
COMMIT_PATTERN = re.compile(r"^[0-9a-f]{40}$")
REPOSITORY_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
# GitHub renames asset names with other characters; a renamed asset could never be found again.
EVIDENCE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

POSTMORTEM_DIRECTORY = "docs/releases/HOTFIX_POSTMORTEMS"
BACKPORT_BRANCH_PREFIX = "hotfix/backport-"
POSTMORTEM_BRANCH_PREFIX = "hotfix/postmortem-"


class Approval(NamedTuple):
    approver: str
    at: datetime


class TimelineEvent(NamedTuple):
    event: str
    at: datetime


@dataclass(frozen=True)
class HotfixFacts:
    """Everything known about one promoted hotfix; validated on construction.

    Plain tuples are accepted for approvals ``(approver, time)`` and timeline ``(event, time)``.
    All times must be timezone-aware and are kept in UTC.
    """

    version: str
    commit_sha: str
    incident_id: str
    ticket_url: str
    justification: str
    severity: str
    risk_level: str
    requested_by: str
    repository: str
    promoted_at: datetime
    postmortem_due_at: datetime
    approvals: Sequence[Approval] = ()
    timeline: Sequence[TimelineEvent] = ()
    evidence: Mapping[str, bytes] = field(default_factory=dict, hash=False)  # bytes are compared, not hashed
    default_branch: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if not VERSION_PATTERN.match(self.version):
            problems.append(f"version {self.version!r} is not N.N.N or N.N.N-hotfix.N")
        if not COMMIT_PATTERN.match(self.commit_sha):
            problems.append(f"commit_sha {self.commit_sha!r} is not a full 40-character lowercase commit id")
        if not REPOSITORY_PATTERN.match(self.repository):
            problems.append(f"repository {self.repository!r} is not owner/name")
        for name in self.evidence:
            if not EVIDENCE_NAME_PATTERN.match(name):
                problems.append(f"evidence name {name!r} has characters GitHub would rename")
        for label, value in (("incident_id", self.incident_id), ("ticket_url", self.ticket_url)):
            if not value.strip():
                problems.append(f"{label} is empty")
        if problems:
            raise InvalidFactsError("invalid hotfix facts: " + "; ".join(problems))
        # Normalise in place (the dataclass is frozen, hence object.__setattr__): UTC times,
        # immutable collections, so the facts can be shared between threads and retries.
        object.__setattr__(self, "promoted_at", _utc(self.promoted_at, "promoted_at"))
        object.__setattr__(self, "postmortem_due_at", _utc(self.postmortem_due_at, "postmortem_due_at"))
        approvals = tuple(Approval(str(who), _utc(at, f"approval by {who}")) for who, at in self.approvals)
        timeline = tuple(TimelineEvent(str(what), _utc(at, f"timeline event {what!r}")) for what, at in self.timeline)
        object.__setattr__(self, "approvals", approvals)
        object.__setattr__(self, "timeline", tuple(sorted(timeline, key=lambda e: e.at)))
        object.__setattr__(self, "evidence", MappingProxyType({k: bytes(v) for k, v in self.evidence.items()}))

    @property
    def tag(self) -> str:
        return release_tag(self.version)

    @property
    def owner(self) -> str:
        return self.repository.split("/", 1)[0]

    @property
    def backport_branch(self) -> str:
        return f"{BACKPORT_BRANCH_PREFIX}{self.tag}"

    @property
    def postmortem_branch(self) -> str:
        return f"{POSTMORTEM_BRANCH_PREFIX}{self.tag}"

    @property
    def postmortem_path(self) -> str:
        return postmortem_path(self.tag)


def postmortem_path(tag: str) -> str:
    return f"{POSTMORTEM_DIRECTORY}/{tag}.md"


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidFactsError(f"invalid hotfix facts: {what} time {moment.isoformat()} has no timezone")
    return moment.astimezone(UTC)
