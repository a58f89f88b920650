"""Post-mortem: the pre-filled pull request, the deadline check, the one overdue issue."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from hotfix_operator.publishing import (
    OVERDUE_LABEL,
    GitHubSession,
    HotfixFacts,
    PostmortemState,
    TransientError,
    check_postmortem,
    ensure_overdue_issue,
    ensure_postmortem_pr,
    ensure_tag,
    list_tags_without_postmortem,
)
from tests.support.github_server import LoopbackGitHub

from .builders import REPOSITORY, SeededRepository

CREATE_PULL = ("POST", "/repos/{owner}/{repo}/pulls")
CREATE_ISSUE = ("POST", "/repos/{owner}/{repo}/issues")
BRANCH = "hotfix/postmortem-v4.1.2-hotfix.1"
PATH = "docs/releases/HOTFIX_POSTMORTEMS/v4.1.2-hotfix.1.md"
RELEASE_URL = "https://github.example/acme/checkout/releases/tag/v4.1.2-hotfix.1"
BACKPORT_URL = "https://github.example/acme/checkout/pull/7"


def test_opens_a_pull_request_with_the_prefilled_template(
    session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    result = ensure_postmortem_pr(session, facts, release_url=RELEASE_URL, backport_url=BACKPORT_URL)

    assert result.created
    assert (result.branch, result.path) == (BRANCH, PATH)
    assert result.pull_request is not None
    assert not result.pull_request.draft
    pull = checkout.hosted.pulls[result.pull_request.number]
    assert (pull.head_ref, pull.base_ref, pull.title) == (BRANCH, "main", "Post-mortem for hotfix v4.1.2-hotfix.1")
    document = checkout.file_at(f"refs/heads/{BRANCH}", PATH) or ""
    assert document.startswith("# Hotfix Post-Mortem: v4.1.2-hotfix.1\n")
    for expected in (
        "INC-20260108-100000",
        "[INC-20260108-100000](https://tracker.example.com/INCIDENT-123)",
        "Checkout requests hang for 30 s",
        "risk level high",
        "| bob | 2026-01-08 10:20:00 UTC |",
        "| 2026-01-08 10:00:00 UTC | Issue discovered |",
        f"- Release: {RELEASE_URL}",
        f"- Backport: {BACKPORT_URL}",
        "**Due:** 2026-01-09 10:45:00 UTC",
        "## Root Cause",
        "## Preventive Measures",
    ):
        assert expected in document
    assert checkout.file_at("refs/heads/main", PATH) is None  # people merge it, not the operator


def test_calling_twice_opens_one_pull_request(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    first = ensure_postmortem_pr(session, facts)
    second = ensure_postmortem_pr(session, facts)

    assert (first.created, second.created) == (True, False)
    assert second.pull_request == first.pull_request
    assert github.writes(*CREATE_PULL) == 1
    assert len(checkout.commits_beyond_main(BRANCH)) == 1


def test_a_crash_after_the_push_reuses_the_branch(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    github.fail_next(*CREATE_PULL, status=500)

    with pytest.raises(TransientError):
        ensure_postmortem_pr(session, facts)
    pushed = checkout.hosted.git.resolve(f"refs/heads/{BRANCH}")
    result = ensure_postmortem_pr(session, facts)

    assert result.created
    assert checkout.hosted.git.resolve(f"refs/heads/{BRANCH}") == pushed
    assert len(checkout.commits_beyond_main(BRANCH)) == 1
    assert github.writes(*CREATE_PULL) == 1


def test_no_pull_request_once_the_post_mortem_is_on_the_default_branch(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    checkout.hosted.git.commit_files("main", {PATH: b"# written by hand\n"}, "Post-mortem")

    result = ensure_postmortem_pr(session, facts)

    assert (result.pull_request, result.created) == (None, False)
    assert github.calls(*CREATE_PULL) == 0


def test_the_deadline_check_moves_from_pending_to_overdue_to_complete(
    session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    due = facts.postmortem_due_at

    assert check_postmortem(session, facts, due - timedelta(minutes=1)).state is PostmortemState.PENDING
    assert check_postmortem(session, facts, due).state is PostmortemState.PENDING
    late = check_postmortem(session, facts, due + timedelta(seconds=1))
    assert (late.state, late.path, late.due_at) == (PostmortemState.OVERDUE, PATH, due)

    checkout.hosted.git.commit_files("main", {PATH: b"# Hotfix Post-Mortem\n"}, "Post-mortem")

    assert check_postmortem(session, facts, due + timedelta(days=3)).state is PostmortemState.COMPLETE


def test_an_overdue_post_mortem_opens_exactly_one_issue_across_repeated_checks(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    issues = []
    for hours_late in (1, 2, 30):
        now = facts.postmortem_due_at + timedelta(hours=hours_late)
        assert check_postmortem(session, facts, now).state is PostmortemState.OVERDUE
        issues.append(ensure_overdue_issue(session, facts, now=now))

    assert [issue.created for issue in issues] == [True, False, False]
    assert len({issue.number for issue in issues}) == 1
    [issue] = checkout.hosted.issues.values()
    assert [label.name for label in issue.labels] == [OVERDUE_LABEL]
    assert "v4.1.2-hotfix.1" in issue.title
    assert PATH in (issue.body or "")
    assert github.writes(*CREATE_ISSUE) == 1


def test_a_closed_overdue_issue_is_not_opened_again(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    now = facts.postmortem_due_at + timedelta(hours=5)
    first = ensure_overdue_issue(session, facts, now=now)
    checkout.hosted.issues[first.number].state = "closed"

    again = ensure_overdue_issue(session, facts, now=now + timedelta(days=1))

    assert (again.number, again.created) == (first.number, False)
    assert github.writes(*CREATE_ISSUE) == 1


def test_an_issue_created_whose_answer_was_lost_is_not_duplicated(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    now = facts.postmortem_due_at + timedelta(hours=1)
    github.fail_next(*CREATE_ISSUE, status=502, after_handling=True)

    with pytest.raises(TransientError):
        ensure_overdue_issue(session, facts, now=now)
    found = ensure_overdue_issue(session, facts, now=now)

    assert not found.created
    assert len(checkout.hosted.issues) == 1


def test_each_tag_gets_its_own_issue_even_when_names_share_a_prefix(
    session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    tenth = replace(facts, version="4.1.2-hotfix.10")
    now = facts.postmortem_due_at + timedelta(hours=1)

    first = ensure_overdue_issue(session, facts, now=now)
    other = ensure_overdue_issue(session, tenth, now=now)

    assert other.created
    assert other.number != first.number
    assert ensure_overdue_issue(session, facts, now=now).number == first.number
    assert ensure_overdue_issue(session, tenth, now=now).number == other.number


def test_lists_hotfix_tags_whose_post_mortem_is_missing(
    session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    git = checkout.hosted.git
    for plain in ("v4.1.1", "v4.1.2-hotfix.1", "v4.1.2-hotfix.2", "v4.1.2-hotfix.10"):
        git.create_ref(f"refs/tags/{plain}", checkout.initial_commit)
    annotated = git.write_tag("v4.1.4", checkout.initial_commit, "commit", ("ci", "ci@x", facts.promoted_at), "4.1.4")
    git.create_ref("refs/tags/v4.1.4", annotated)
    ensure_tag(session, replace(facts, version="4.1.3"))  # a patch-increment hotfix: marked by its trailer
    git.commit_files("main", {"docs/releases/HOTFIX_POSTMORTEMS/v4.1.2-hotfix.1.md": b"done\n"}, "Post-mortem")

    missing = list_tags_without_postmortem(session, REPOSITORY)

    assert missing == ["v4.1.2-hotfix.2", "v4.1.2-hotfix.10", "v4.1.3"]


def test_lists_every_hotfix_tag_when_no_post_mortem_directory_exists(
    session: GitHubSession, checkout: SeededRepository
) -> None:
    checkout.hosted.git.create_ref("refs/tags/v4.1.2-hotfix.1", checkout.initial_commit)

    assert list_tags_without_postmortem(session, REPOSITORY) == ["v4.1.2-hotfix.1"]
