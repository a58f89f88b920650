"""The annotated hotfix tag: created once, never moved."""

from __future__ import annotations

from dataclasses import dataclass

from github import GithubException, InputGitAuthor, UnknownObjectException
from github.Repository import Repository

from hotfix_operator.core.followup_results import TagResult

from ..formats import utc_iso
from .errors import PermanentError, TagConflictError
from .facts import HotfixFacts
from .rendering import tag_message
from .session import GitHubSession, describe_github_error, is_already_exists

_MAX_TAG_NESTING = 8  # a tag of a tag of ... a commit; git allows it, nobody needs more


@dataclass(frozen=True)
class ExistingTag:
    name: str
    commit_sha: str
    tag_object_sha: str | None
    message: str | None


def find_tag(repo: Repository, tag: str) -> ExistingTag | None:
    """The tag and the commit it finally points at, or None. Raises GithubException."""
    try:
        target = repo.get_git_ref(f"tags/{tag}").object
    except UnknownObjectException:
        return None
    sha, kind = target.sha, target.type
    tag_object_sha: str | None = None
    message: str | None = None
    for _ in range(_MAX_TAG_NESTING):
        if kind != "tag":
            break
        tag_object = repo.get_git_tag(sha)
        if tag_object_sha is None:
            tag_object_sha, message = tag_object.sha, tag_object.message
        sha, kind = tag_object.object.sha, tag_object.object.type
    if kind != "commit":
        raise PermanentError(f"tag {tag} points at a {kind} ({sha}), not at a commit")
    return ExistingTag(tag, sha, tag_object_sha, message)


def ensure_tag(session: GitHubSession, facts: HotfixFacts) -> TagResult:
    """Creates the annotated tag v<version> at the hotfix commit unless it already exists there.

    The tag object is fully determined by the facts (message, tagger, date = promotion time),
    so a retry after a crash between "create tag object" and "create ref" writes the very same
    object again instead of a second one.
    Raises TagConflictError when the tag exists at another commit.
    """
    repo = session.repository(facts.repository)
    with session.errors(f"ensuring tag {facts.tag} in {facts.repository}"):
        existing = find_tag(repo, facts.tag)
        if existing is not None:
            return _accept(facts, existing)
        tagger = InputGitAuthor(session.identity.name, session.identity.email, utc_iso(facts.promoted_at))
        try:
            tag_object = repo.create_git_tag(facts.tag, tag_message(facts), facts.commit_sha, "commit", tagger)
        except GithubException as error:
            if error.status == 422:
                raise PermanentError(
                    f"GitHub refused to tag commit {facts.commit_sha} in {facts.repository} "
                    f"({describe_github_error(error)}); is the commit pushed there?"
                ) from None
            raise
        try:
            repo.create_git_ref(f"refs/tags/{facts.tag}", tag_object.sha)
        except GithubException as error:
            # Someone else, or our own earlier request whose answer was lost, got there first.
            if not is_already_exists(error):
                raise
            existing = find_tag(repo, facts.tag)
            if existing is None:
                raise
            return _accept(facts, existing)
        return TagResult(facts.tag, facts.commit_sha, tag_object.sha, created=True)


def _accept(facts: HotfixFacts, existing: ExistingTag) -> TagResult:
    if existing.commit_sha != facts.commit_sha:
        raise TagConflictError(facts.tag, existing.commit_sha, facts.commit_sha)
    return TagResult(facts.tag, facts.commit_sha, existing.tag_object_sha, created=False)
