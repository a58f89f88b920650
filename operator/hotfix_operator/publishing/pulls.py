"""Pull requests identified by their head branch: look up first, open at most one."""

from __future__ import annotations

from github import GithubException
from github.PullRequest import PullRequest
from github.Repository import Repository

from hotfix_operator.core.followup_results import PullRequestRef

from .session import is_already_exists


def pull_request_ref(pull: PullRequest) -> PullRequestRef:
    # merged_at, unlike merged, is part of listed pull requests: no extra request.
    return PullRequestRef(pull.number, pull.html_url, bool(pull.draft), pull.state, pull.merged_at is not None)


def find_pull(repo: Repository, branch: str, base: str) -> PullRequest | None:
    """The newest pull request from branch into base, in any state (closed ones count too)."""
    for pull in repo.get_pulls(state="all", head=f"{repo.owner.login}:{branch}", base=base):
        return pull
    return None


def open_pull(
    repo: Repository, branch: str, base: str, *, title: str, body: str, draft: bool
) -> tuple[PullRequest, bool]:
    """The existing pull request for branch, or a new one; True when this call created it."""
    existing = find_pull(repo, branch, base)
    if existing is not None:
        return existing, False
    try:
        created = repo.create_pull(
            base=base, head=branch, title=title, body=body, draft=draft, maintainer_can_modify=True
        )
    except GithubException as error:
        # GitHub's 422 "A pull request already exists": our earlier request landed after all.
        if not is_already_exists(error):
            raise
        existing = find_pull(repo, branch, base)
        if existing is None:
            raise
        return existing, False
    return created, True
