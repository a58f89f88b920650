"""The backport: the hotfix commit cherry-picked onto the default branch, as a pull request.

A conflicted pick is not a failure to hide: the conflicted state is committed with its markers,
pushed, and opened as a draft that lists the files and says how to finish, so a person can pick
it up at once and nothing merges by accident.
"""

from __future__ import annotations

from pathlib import Path

from hotfix_operator.core.followup_results import BackportOutcome, BackportResult

from .facts import HotfixFacts
from .gitcli import GitWorkspace
from .pulls import find_pull, open_pull, pull_request_ref
from .rendering import (
    backport_body,
    backport_conflict_body,
    backport_conflict_commit_message,
    backport_title,
    parse_conflict_trailer,
)
from .session import GitHubSession


def ensure_backport(session: GitHubSession, facts: HotfixFacts, *, release_url: str | None = None) -> BackportResult:
    """Opens (at most one) pull request hotfix/backport-v<version> -> default branch.

    Looks for an existing pull request for the branch first; reuses an existing branch (a
    previous run that pushed but did not get to open the pull request) instead of picking again.
    """
    repo = session.repository(facts.repository)
    base = facts.default_branch or repo.default_branch
    branch = facts.backport_branch
    with session.errors(f"looking up the backport pull request for {facts.tag}"):
        existing = find_pull(repo, branch, base)
    if existing is not None:
        return BackportResult(BackportOutcome.EXISTING, branch, base, pull_request_ref(existing))

    with GitWorkspace.clone(session, repo.clone_url, base) as workspace:
        workspace.run(
            "fetch", "--quiet", "origin", facts.commit_sha, action=f"fetching hotfix commit {facts.commit_sha}"
        )
        on_base = workspace.run(
            "merge-base", "--is-ancestor", facts.commit_sha, f"origin/{base}", action="comparing histories", check=False
        )
        if on_base.returncode == 0:
            return BackportResult(BackportOutcome.NOT_NEEDED, branch, base, None)
        conflicted = _prepare_branch(workspace, facts, base, branch)
        if conflicted is None:
            return BackportResult(BackportOutcome.NOT_NEEDED, branch, base, None)

    body = (
        backport_conflict_body(facts, base, release_url, conflicted)
        if conflicted
        else backport_body(facts, base, release_url)
    )
    with session.errors(f"opening the backport pull request for {facts.tag}"):
        pull, created = open_pull(
            repo, branch, base, title=backport_title(facts, base), body=body, draft=bool(conflicted)
        )
    if not created:
        outcome = BackportOutcome.EXISTING
    elif conflicted:
        outcome = BackportOutcome.OPENED_WITH_CONFLICTS
    else:
        outcome = BackportOutcome.OPENED
    return BackportResult(outcome, branch, base, pull_request_ref(pull), conflicted)


def _prepare_branch(workspace: GitWorkspace, facts: HotfixFacts, base: str, branch: str) -> tuple[str, ...] | None:
    """Makes the remote branch carry the pick; returns the conflicted files, None if nothing to pick."""
    if workspace.remote_branch(branch) is not None:
        workspace.run(
            "fetch", "--quiet", "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
            action=f"fetching branch {branch}",
        )  # fmt: skip
        workspace.run("switch", "--quiet", "-C", branch, f"origin/{branch}", action=f"switching to {branch}")
        earlier = _earlier_pick(workspace, facts, base)
        if earlier is not None:
            return parse_conflict_trailer(earlier)
    else:
        workspace.run("switch", "--quiet", "-c", branch, f"origin/{base}", action=f"creating branch {branch}")
    conflicted = _cherry_pick(workspace, facts)
    if conflicted is None:
        return None
    # A plain push: never forced, so a branch someone else moved in the meantime makes us retry.
    workspace.run("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", action=f"pushing {branch}")
    return conflicted


def _earlier_pick(workspace: GitWorkspace, facts: HotfixFacts, base: str) -> str | None:
    """The message of a commit on the branch that already carries this hotfix, if any."""
    log = workspace.run("log", "--format=%B%x00", f"origin/{base}..HEAD", action="reading the backport branch").stdout
    marker = f"(cherry picked from commit {facts.commit_sha})"
    return next((message for message in log.split("\0") if marker in message), None)


def _cherry_pick(workspace: GitWorkspace, facts: HotfixFacts) -> tuple[str, ...] | None:
    """Picks the hotfix commit: () when clean, the conflicted files, or None when already applied."""
    parents = workspace.run("rev-list", "--parents", "-n", "1", facts.commit_sha, action="reading the hotfix commit")
    args = ["cherry-pick", "-x"]
    if len(parents.stdout.split()) > 2:
        args += ["-m", "1"]  # a merged hotfix: pick its changes relative to the first parent
    args.append(facts.commit_sha)
    picked = workspace.run(*args, action=f"cherry-picking {facts.commit_sha}", check=False)
    if picked.returncode == 0:
        return ()
    unmerged = workspace.run("diff", "--name-only", "-z", "--diff-filter=U", action="listing conflicts").stdout
    conflicted = tuple(sorted(path for path in unmerged.split("\0") if path))
    if not conflicted:
        if "empty" in picked.stdout + picked.stderr:
            workspace.run("cherry-pick", "--skip", action="skipping an empty pick")
            return None
        raise workspace.failure(f"cherry-picking {facts.commit_sha}", tuple(args), picked)
    subject = workspace.run("log", "-1", "--format=%s", facts.commit_sha, action="reading the hotfix subject").stdout
    message_file = Path(workspace.directory.parent, "backport-message.txt")
    message_file.write_text(backport_conflict_commit_message(facts, subject.strip(), conflicted))
    workspace.run("add", "--all", action="staging the conflicted files")
    workspace.run("commit", "--quiet", "--no-verify", f"--file={message_file}", action="committing the conflicted pick")
    return conflicted
