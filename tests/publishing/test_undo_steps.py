"""After an undo: the post-mortem pull request gets one comment saying so, found before it is written."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hotfix_operator.publishing import GitHubSession, HotfixFacts, TransientError, UndoFacts, ensure_postmortem_pr
from hotfix_operator.publishing.rendering import UNDO_MARKER
from hotfix_operator.publishing.undo import ensure_postmortem_undo_comment
from tests.support.github_server import LoopbackGitHub

from .builders import SeededRepository

CREATE_COMMENT = ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
UNDO = UndoFacts(by="alice", reason="checkout errors doubled\nan hour later",
                 at=datetime(2026, 1, 8, 12, 0, tzinfo=UTC),
                 previous_image="registry.example.com/shop/checkout@sha256:" + "b" * 64)


def test_the_post_mortem_pull_request_is_told_of_the_undo_once(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    pull = ensure_postmortem_pr(session, facts).pull_request
    assert pull is not None
    first = ensure_postmortem_undo_comment(session, facts, UNDO, pull.number)
    again = ensure_postmortem_undo_comment(session, facts, UNDO, pull.number)
    assert (first.created, again.created) == (True, False)
    assert first.html_url == again.html_url and f"/pull/{pull.number}#issuecomment-" in first.html_url
    assert github.writes(*CREATE_COMMENT) == 1
    comments = [c for c in checkout.hosted.comments if c.issue_number == pull.number]
    assert len(comments) == 1
    body = comments[0].body
    assert body.startswith(UNDO_MARKER)
    assert "**Undone at 2026-01-08 12:00:00 UTC by alice because:** checkout errors doubled an hour later." in body
    assert UNDO.previous_image in body and facts.postmortem_path in body


def test_a_comment_that_landed_before_a_crash_is_found_not_repeated(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    pull = ensure_postmortem_pr(session, facts).pull_request
    assert pull is not None
    github.fail_next(*CREATE_COMMENT, status=502, after_handling=True)  # written, but the answer is lost
    with pytest.raises(TransientError):
        ensure_postmortem_undo_comment(session, facts, UNDO, pull.number)
    retried = ensure_postmortem_undo_comment(session, facts, UNDO, pull.number)
    assert not retried.created
    assert len([c for c in checkout.hosted.comments if c.issue_number == pull.number]) == 1
