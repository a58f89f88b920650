"""ensure_backport: the hotfix cherry-picked onto main as exactly one pull request."""

from __future__ import annotations

import pytest

from hotfix_operator.publishing import (
    BackportOutcome,
    GitHubSession,
    HotfixFacts,
    TransientError,
    ensure_backport,
)
from tests.support.github_server import LoopbackGitHub

from .builders import CONFIG_HOTFIX, CheckoutSeeder, SeededRepository, make_facts

CREATE_PULL = ("POST", "/repos/{owner}/{repo}/pulls")
BRANCH = "hotfix/backport-v4.1.2-hotfix.1"
RELEASE_URL = "https://github.example/acme/checkout/releases/tag/v4.1.2-hotfix.1"


def test_a_clean_pick_opens_a_ready_pull_request(
    session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    result = ensure_backport(session, facts, release_url=RELEASE_URL)

    assert result.outcome is BackportOutcome.OPENED
    assert (result.branch, result.base, result.conflicted_files) == (BRANCH, "main", ())
    assert result.pull_request is not None
    assert not result.pull_request.draft
    pull = checkout.hosted.pulls[result.pull_request.number]
    assert (pull.head_ref, pull.base_ref) == (BRANCH, "main")
    assert RELEASE_URL in (pull.body or "")
    assert "INC-20260108-100000" in (pull.body or "")
    assert facts.ticket_url in (pull.body or "")
    [picked] = checkout.commits_beyond_main(BRANCH)
    message = checkout.hosted.git.git("log", "-1", "--format=%B", picked)
    assert f"(cherry picked from commit {checkout.hotfix_commit})" in message
    assert checkout.file_at(f"refs/heads/{BRANCH}", "app/config.py") == CONFIG_HOTFIX
    assert checkout.file_at(f"refs/heads/{BRANCH}", "docs/guide.md") == "# Guide\n"  # main's work kept


def test_calling_twice_opens_one_pull_request(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    first = ensure_backport(session, facts)
    second = ensure_backport(session, facts)

    assert second.outcome is BackportOutcome.EXISTING
    assert second.pull_request == first.pull_request
    assert github.writes(*CREATE_PULL) == 1
    assert len(checkout.commits_beyond_main(BRANCH)) == 1


def test_a_crash_after_the_push_reuses_the_branch_without_picking_again(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    github.fail_next(*CREATE_PULL, status=502)

    with pytest.raises(TransientError):
        ensure_backport(session, facts)
    pushed = checkout.hosted.git.resolve(f"refs/heads/{BRANCH}")
    assert pushed is not None
    assert not checkout.hosted.pulls

    result = ensure_backport(session, facts)

    assert result.outcome is BackportOutcome.OPENED
    assert checkout.hosted.git.resolve(f"refs/heads/{BRANCH}") == pushed
    assert len(checkout.hosted.pulls) == 1
    assert github.writes(*CREATE_PULL) == 1


def test_a_pull_request_whose_answer_was_lost_is_found_not_duplicated(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    github.fail_next(*CREATE_PULL, status=502, after_handling=True)

    with pytest.raises(TransientError):
        ensure_backport(session, facts)
    result = ensure_backport(session, facts)

    assert result.outcome is BackportOutcome.EXISTING
    assert len(checkout.hosted.pulls) == 1
    assert github.calls(*CREATE_PULL) == 1


def test_a_conflicting_pick_opens_a_draft_with_the_markers_and_the_way_out(
    github: LoopbackGitHub, session: GitHubSession, seeder: CheckoutSeeder
) -> None:
    seeded = seeder.seed(github, main_work="conflicting")
    facts = make_facts(seeded)

    result = ensure_backport(session, facts, release_url=RELEASE_URL)

    assert result.outcome is BackportOutcome.OPENED_WITH_CONFLICTS
    assert result.conflicted_files == ("app/config.py",)
    assert result.pull_request is not None
    assert result.pull_request.draft
    conflicted = seeded.file_at(f"refs/heads/{BRANCH}", "app/config.py") or ""
    assert conflicted.startswith("<<<<<<< ")
    assert "=======\n" in conflicted
    assert ">>>>>>> " in conflicted
    assert "TIMEOUT_SECONDS = 60" in conflicted
    assert "TIMEOUT_SECONDS = 5" in conflicted
    body = seeded.hosted.pulls[result.pull_request.number].body or ""
    assert "- `app/config.py`" in body
    assert f"git switch {BRANCH}" in body
    assert f"git push origin {BRANCH}" in body
    assert "ready for review" in body


def test_a_conflicted_backport_interrupted_before_its_pull_request_keeps_its_file_list(
    github: LoopbackGitHub, session: GitHubSession, seeder: CheckoutSeeder
) -> None:
    seeded = seeder.seed(github, main_work="conflicting")
    facts = make_facts(seeded)
    github.fail_next(*CREATE_PULL, status=503)

    with pytest.raises(TransientError):
        ensure_backport(session, facts)
    result = ensure_backport(session, facts)

    assert result.outcome is BackportOutcome.OPENED_WITH_CONFLICTS
    assert result.conflicted_files == ("app/config.py",)
    assert len(seeded.commits_beyond_main(BRANCH)) == 1
    assert result.pull_request is not None
    assert result.pull_request.draft


def test_a_hotfix_already_on_the_default_branch_needs_no_backport(
    github: LoopbackGitHub, session: GitHubSession, checkout: SeededRepository
) -> None:
    result = ensure_backport(session, make_facts(checkout, commit_sha=checkout.initial_commit))

    assert result.outcome is BackportOutcome.NOT_NEEDED
    assert result.pull_request is None
    assert checkout.hosted.git.resolve(f"refs/heads/{BRANCH}") is None
    assert github.calls(*CREATE_PULL) == 0


def test_a_fix_main_already_made_in_its_own_commit_needs_no_backport(
    github: LoopbackGitHub, session: GitHubSession, seeder: CheckoutSeeder
) -> None:
    seeded = seeder.seed(github, main_work="same-fix")

    result = ensure_backport(session, make_facts(seeded))

    assert result.outcome is BackportOutcome.NOT_NEEDED
    assert seeded.hosted.git.resolve(f"refs/heads/{BRANCH}") is None
    assert github.calls(*CREATE_PULL) == 0
