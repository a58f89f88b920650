"""ensure_tag: an annotated tag at the hotfix commit, created exactly once and never moved."""

from __future__ import annotations

import pytest

from hotfix_operator.publishing import (
    GitHubSession,
    HotfixFacts,
    PermanentError,
    TagConflictError,
    TransientError,
    ensure_tag,
)
from tests.support.github_server import LoopbackGitHub

from .builders import SeededRepository, make_facts

CREATE_TAG = ("POST", "/repos/{owner}/{repo}/git/tags")
CREATE_REF = ("POST", "/repos/{owner}/{repo}/git/refs")


def test_creates_an_annotated_tag_at_the_hotfix_commit(
    session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    result = ensure_tag(session, facts)

    git = checkout.hosted.git
    assert result.created
    assert result.tag == "v4.1.2-hotfix.1"
    assert git.object_type("refs/tags/v4.1.2-hotfix.1") == "tag"
    assert git.resolve("refs/tags/v4.1.2-hotfix.1^{commit}") == checkout.hotfix_commit
    tag = git.read_tag(git.resolve("refs/tags/v4.1.2-hotfix.1") or "")
    assert tag is not None
    assert tag.sha == result.tag_object_sha
    assert tag.tagged_at == facts.promoted_at
    assert "Justification: Checkout requests hang" in tag.message
    assert "Hotfix-Incident: INC-20260108-100000" in tag.message
    assert "Approved-By: bob at 2026-01-08 10:20:00 UTC" in tag.message


def test_calling_twice_creates_the_tag_once(github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts) -> None:
    first = ensure_tag(session, facts)
    second = ensure_tag(session, facts)

    assert (first.created, second.created) == (True, False)
    assert second.tag_object_sha == first.tag_object_sha
    assert github.writes(*CREATE_TAG) == 1
    assert github.writes(*CREATE_REF) == 1


def test_crash_between_tag_object_and_ref_leaves_one_tag_object(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    github.fail_next(*CREATE_REF, status=502)

    with pytest.raises(TransientError):
        ensure_tag(session, facts)
    assert checkout.hosted.git.resolve("refs/tags/v4.1.2-hotfix.1") is None

    result = ensure_tag(session, facts)

    assert result.created
    assert github.writes(*CREATE_REF) == 1
    # The tag object is fully determined by the facts, so the retry rewrote the same object.
    assert checkout.hosted.git.tag_objects() == [result.tag_object_sha]


def test_a_ref_created_whose_answer_was_lost_is_found_on_retry(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    github.fail_next(*CREATE_REF, status=502, after_handling=True)

    with pytest.raises(TransientError):
        ensure_tag(session, facts)
    result = ensure_tag(session, facts)

    assert not result.created
    assert checkout.hosted.git.resolve("refs/tags/v4.1.2-hotfix.1^{commit}") == facts.commit_sha
    assert github.calls(*CREATE_REF) == 1


def test_refuses_to_move_a_tag_that_points_at_another_commit(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    checkout.hosted.git.create_ref("refs/tags/v4.1.2-hotfix.1", checkout.initial_commit)

    with pytest.raises(TagConflictError) as refused:
        ensure_tag(session, facts)

    assert checkout.initial_commit in str(refused.value)
    assert checkout.hotfix_commit in str(refused.value)
    assert refused.value.existing_commit == checkout.initial_commit
    assert checkout.hosted.git.resolve("refs/tags/v4.1.2-hotfix.1") == checkout.initial_commit
    assert github.calls(*CREATE_TAG) == github.calls(*CREATE_REF) == 0


def test_accepts_an_existing_lightweight_tag_at_the_same_commit(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    checkout.hosted.git.create_ref("refs/tags/v4.1.2-hotfix.1", checkout.hotfix_commit)

    result = ensure_tag(session, facts)

    assert (result.created, result.tag_object_sha) == (False, None)
    assert github.calls(*CREATE_REF) == 0


def test_a_commit_github_does_not_have_is_a_permanent_error(
    github: LoopbackGitHub, session: GitHubSession, checkout: SeededRepository
) -> None:
    unknown = "f" * 40

    with pytest.raises(PermanentError, match=f"refused to tag commit {unknown}"):
        ensure_tag(session, make_facts(checkout, commit_sha=unknown))
    assert github.writes(*CREATE_REF) == 0
