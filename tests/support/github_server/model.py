"""What the loopback GitHub keeps besides git: releases, assets, pull requests, issues, labels.

Refs, tags, commits and files are never stored here; they are read from the bare repository on
every request so that git pushes and REST calls always agree.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .git_store import BareRepository


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Account:
    login: str
    id: int
    kind: str = "User"  # User | Bot | Organization


@dataclass
class ReleaseAsset:
    id: int
    name: str
    label: str | None
    content_type: str
    data: bytes
    uploader: Account
    created_at: datetime
    state: str = "uploaded"

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()


@dataclass
class Release:
    id: int
    tag_name: str
    target_commitish: str
    name: str | None
    body: str | None
    draft: bool
    prerelease: bool
    author: Account
    created_at: datetime
    published_at: datetime | None = None
    updated_at: datetime | None = None
    assets: list[ReleaseAsset] = field(default_factory=list)


@dataclass
class PullRequest:
    id: int
    number: int
    title: str
    body: str | None
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    draft: bool
    user: Account
    created_at: datetime
    updated_at: datetime
    maintainer_can_modify: bool = True
    state: str = "open"
    merged_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass
class Label:
    id: int
    name: str
    color: str
    description: str | None


@dataclass
class Issue:
    id: int
    number: int
    title: str
    body: str | None
    labels: list[Label]
    user: Account
    created_at: datetime
    updated_at: datetime
    state: str = "open"
    closed_at: datetime | None = None


@dataclass
class IssueComment:
    """A comment on an issue or a pull request (GitHub keeps both as issue comments)."""

    id: int
    issue_number: int
    body: str
    user: Account
    created_at: datetime
    updated_at: datetime


@dataclass
class HostedRepository:
    id: int
    owner: Account
    name: str
    default_branch: str
    git: BareRepository
    created_at: datetime
    private: bool = True
    releases: dict[int, Release] = field(default_factory=dict)
    latest_release_id: int | None = None
    pulls: dict[int, PullRequest] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)
    comments: list[IssueComment] = field(default_factory=list)
    # Issues and pull requests share one number sequence on GitHub.
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def full_name(self) -> str:
        return f"{self.owner.login}/{self.name}"

    def label(self, name: str) -> Label | None:
        return self.labels.get(name.lower())


@dataclass(frozen=True)
class AppInstallation:
    """A GitHub App able to exchange a signed JWT for an installation token."""

    app_id: int
    installation_id: int
    public_key_pem: bytes
    bot: Account
