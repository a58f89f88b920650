"""The mandatory post-mortem: its pull request, its deadline, and the one issue when it is late."""

from __future__ import annotations

import re
import urllib.parse
from datetime import datetime
from pathlib import Path

from github import GithubException, UnknownObjectException
from github.Repository import Repository

from hotfix_operator.core.followup_results import (
    IssueRef,
    PostmortemCheck,
    PostmortemPullRequestResult,
    PostmortemState,
)

from .facts import POSTMORTEM_DIRECTORY, HotfixFacts
from .gitcli import GitWorkspace
from .pulls import find_pull, open_pull, pull_request_ref
from .rendering import (
    OVERDUE_LABEL,
    OVERDUE_LABEL_COLOR,
    OVERDUE_LABEL_DESCRIPTION,
    has_incident_trailer,
    overdue_issue_body,
    overdue_issue_title,
    postmortem_body,
    postmortem_commit_message,
    postmortem_document,
    postmortem_title,
)
from .session import GitHubSession, is_already_exists

HOTFIX_TAG_PATTERN = re.compile(r"^v\d+\.\d+\.\d+-hotfix\.\d+$")
RELEASE_TAG_PATTERN = re.compile(r"^v\d+\.\d+\.\d+$")


def postmortem_state(file_on_default_branch: bool, due_at: datetime, now: datetime) -> PostmortemState:
    """Complete once the file is on the default branch; Overdue strictly after the deadline."""
    if file_on_default_branch:
        return PostmortemState.COMPLETE
    return PostmortemState.OVERDUE if now > due_at else PostmortemState.PENDING


def ensure_postmortem_pr(
    session: GitHubSession,
    facts: HotfixFacts,
    *,
    release_url: str | None = None,
    backport_url: str | None = None,
) -> PostmortemPullRequestResult:
    """Opens (at most one) pull request adding the pre-filled post-mortem for the tag.

    Nothing is opened when the file is already on the default branch. An existing branch from an
    earlier run is reused; the document is only committed if the branch does not carry it yet.
    """
    repo = session.repository(facts.repository)
    base = facts.default_branch or repo.default_branch
    branch, path = facts.postmortem_branch, facts.postmortem_path
    with session.errors(f"looking up the post-mortem of {facts.tag}"):
        existing = find_pull(repo, branch, base)
        if existing is not None:
            return PostmortemPullRequestResult(branch, path, pull_request_ref(existing), created=False)
        if _file_exists(repo, path, base):
            return PostmortemPullRequestResult(branch, path, None, created=False)

    with GitWorkspace.clone(session, repo.clone_url, base, shallow=True) as workspace:
        if workspace.remote_branch(branch) is not None:
            workspace.run(
                "fetch", "--quiet", "--depth=1", "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
                action=f"fetching branch {branch}",
            )  # fmt: skip
            workspace.run("switch", "--quiet", "-C", branch, f"origin/{branch}", action=f"switching to {branch}")
        else:
            workspace.run("switch", "--quiet", "-c", branch, action=f"creating branch {branch}")
        document = workspace.directory / path
        if not document.exists():
            document.parent.mkdir(parents=True, exist_ok=True)
            document.write_text(postmortem_document(facts, release_url, backport_url))
            message = Path(workspace.directory.parent, "postmortem-message.txt")
            message.write_text(postmortem_commit_message(facts))
            workspace.run("add", "--", path, action="staging the post-mortem")
            workspace.run("commit", "--quiet", "--no-verify", f"--file={message}", action="committing the post-mortem")
            workspace.run("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", action=f"pushing {branch}")

    with session.errors(f"opening the post-mortem pull request for {facts.tag}"):
        pull, created = open_pull(
            repo,
            branch,
            base,
            title=postmortem_title(facts),
            body=postmortem_body(facts, release_url, backport_url),
            draft=False,
        )
    return PostmortemPullRequestResult(branch, path, pull_request_ref(pull), created=created)


def check_postmortem(session: GitHubSession, facts: HotfixFacts, now: datetime) -> PostmortemCheck:
    repo = session.repository(facts.repository)
    base = facts.default_branch or repo.default_branch
    with session.errors(f"checking the post-mortem of {facts.tag}"):
        present = _file_exists(repo, facts.postmortem_path, base)
    return PostmortemCheck(
        postmortem_state(present, facts.postmortem_due_at, now), facts.postmortem_path, facts.postmortem_due_at
    )


def ensure_overdue_issue(
    session: GitHubSession,
    facts: HotfixFacts,
    *,
    now: datetime,
    postmortem_pull_request_url: str | None = None,
) -> IssueRef:
    """Opens the one 'post-mortem overdue' issue for the tag; finds it (open or closed) thereafter.

    The caller decides that the post-mortem is overdue (check_postmortem); this only guarantees
    that repeated checks, retries and restarts never open a second issue.
    """
    repo = session.repository(facts.repository)
    with session.errors(f"ensuring the overdue post-mortem issue for {facts.tag}"):
        found = _find_overdue_issue(repo, facts.tag)
        if found is not None:
            return found
        _ensure_label(repo)
        issue = repo.create_issue(
            title=overdue_issue_title(facts),
            body=overdue_issue_body(facts, now, postmortem_pull_request_url),
            labels=[OVERDUE_LABEL],
        )
        return IssueRef(issue.number, issue.html_url, created=True)


def list_tags_without_postmortem(
    session: GitHubSession, repository: str, *, default_branch: str | None = None
) -> list[str]:
    """Hotfix tags whose post-mortem file is missing on the default branch (the seeds' manual check).

    A hotfix tag is either named v<N.N.N>-hotfix.<N>, or a v<N.N.N> patch-increment tag whose
    annotated message carries the Hotfix-Incident trailer this package writes. Other tags are
    ordinary releases and need no post-mortem.
    """
    repo = session.repository(repository)
    base = default_branch or repo.default_branch
    with session.errors(f"listing hotfix tags of {repository}"):
        present = _postmortem_files(session, repo, base)
        missing = []
        for ref in repo.get_git_matching_refs("tags/v"):
            tag = ref.ref.removeprefix("refs/tags/")
            if f"{tag}.md" in present or not _is_hotfix_tag(repo, tag, ref.object.type, ref.object.sha):
                continue
            missing.append(tag)
    return sorted(missing, key=_version_order)


def _is_hotfix_tag(repo: Repository, tag: str, kind: str, sha: str) -> bool:
    if HOTFIX_TAG_PATTERN.match(tag):
        return True
    if not RELEASE_TAG_PATTERN.match(tag) or kind != "tag":
        return False
    return has_incident_trailer(repo.get_git_tag(sha).message)


def _version_order(tag: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", tag))


def _file_exists(repo: Repository, path: str, ref: str) -> bool:
    try:
        found = repo.get_contents(path, ref=ref)
    except UnknownObjectException:
        return False
    return not isinstance(found, list)


def _postmortem_files(session: GitHubSession, repo: Repository, ref: str) -> set[str]:
    """Names of the files in the post-mortem directory, in one request.

    Asks for GitHub's application/vnd.github.object form: a directory comes back as one object
    with its entries, which GitHub's OpenAPI description types precisely (the default array form
    is not describable by its schema). The contents API lists up to 1,000 entries per directory.
    """
    url = f"{repo.url}/contents/{urllib.parse.quote(POSTMORTEM_DIRECTORY)}"
    try:
        _, data = session.client.requester.requestJsonAndCheck(
            "GET", url, parameters={"ref": ref}, headers={"Accept": "application/vnd.github.object"}
        )
    except UnknownObjectException:
        return set()
    if not isinstance(data, dict) or data.get("type") != "dir":
        return set()
    return {str(entry["name"]) for entry in data.get("entries", []) if entry.get("type") == "file"}


def _mentions_tag(title: str, tag: str) -> bool:
    """The tag as a whole word: v4.1.2-hotfix.1 must not match v4.1.2-hotfix.10."""
    return re.search(rf"(?<![\w.-]){re.escape(tag)}(?![\w.-]*\w)", title) is not None


def _find_overdue_issue(repo: Repository, tag: str) -> IssueRef | None:
    for issue in repo.get_issues(state="all", labels=[OVERDUE_LABEL]):
        # Title first: reading pull_request of a listed issue may cost a request.
        if _mentions_tag(issue.title, tag) and issue.pull_request is None:
            return IssueRef(issue.number, issue.html_url, created=False)
    return None


def _ensure_label(repo: Repository) -> None:
    try:
        repo.get_label(OVERDUE_LABEL)
        return
    except UnknownObjectException:
        pass
    try:
        repo.create_label(OVERDUE_LABEL, OVERDUE_LABEL_COLOR, OVERDUE_LABEL_DESCRIPTION)
    except GithubException as error:
        if not is_already_exists(error):
            raise
