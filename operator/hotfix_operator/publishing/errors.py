"""Failures of publishing steps, split by what the caller should do about them.

TransientError: retrying later can succeed (GitHub 5xx, rate limits, network trouble, a branch
moved underneath us). It carries GitHub's Retry-After when GitHub sent one.
PermanentError: retrying cannot help until a person changes something (bad credentials, missing
repository or commit, a tag that points elsewhere, an asset with different content).

Messages never contain credentials: everything is passed through the session's redactor first.
"""

from __future__ import annotations


class PublishingError(Exception):
    """Base of every error a publishing step raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransientError(PublishingError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(PublishingError):
    pass


class InvalidFactsError(PermanentError, ValueError):
    """The facts handed to a step are malformed; nothing was sent anywhere."""


class TagConflictError(PermanentError):
    """The tag exists and points at another commit: published tags are never moved."""

    def __init__(self, tag: str, existing_commit: str, wanted_commit: str) -> None:
        super().__init__(
            f"tag {tag} already exists at commit {existing_commit}, not at the hotfix commit {wanted_commit}; "
            "refusing to move a published tag (choose a new hotfix version, or delete the tag by hand "
            "if it was never used)"
        )
        self.tag = tag
        self.existing_commit = existing_commit
        self.wanted_commit = wanted_commit


class AssetConflictError(PermanentError):
    """A release asset with the same name already holds different bytes."""

    def __init__(self, tag: str, name: str, found: str, wanted: str) -> None:
        super().__init__(
            f"release {tag} already has an asset named {name} with {found}, but the evidence is {wanted}; "
            "refusing to replace published evidence (delete the asset by hand if it is wrong)"
        )
        self.tag = tag
        self.name = name


class EvidenceIntegrityError(PermanentError):
    """The evidence files do not match their own SHA256SUMS; nothing is published."""
