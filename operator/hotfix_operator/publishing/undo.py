"""An undone hotfix on GitHub: its release notes gain one "Undone at ... by ... because ..." line, and its
post-mortem pull request one comment with the same line, so whoever writes the post-mortem covers the
undo too. The tag and the release stay (the record of what ran); each line is found before it is
written, so a retry or a restarted operator never adds it twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hotfix_operator.core.followup_results import UndoNoteResult

from .errors import PermanentError
from .facts import HotfixFacts
from .releases import find_release
from .rendering import UNDO_MARKER, postmortem_undo_comment, release_title, undo_line
from .session import GitHubSession


@dataclass(frozen=True)
class UndoFacts:
    by: str
    reason: str
    at: datetime  # when the previous version was serving again (status.undo.times.completed)
    previous_image: str


def ensure_undo_note(session: GitHubSession, facts: HotfixFacts, undo: UndoFacts) -> UndoNoteResult:
    repo = session.repository(facts.repository)
    with session.errors(f"noting the undo of {facts.tag} in its release notes"):
        release = find_release(repo, facts.tag)
        if release is None or release.draft:
            raise PermanentError(f"release {facts.tag} is not published in {facts.repository}; publish it first")
        body = release.body or ""
        if UNDO_MARKER in body:
            return UndoNoteResult(release.html_url, created=False)
        updated = release.update_release(name=release.title or release_title(facts),
                                         message=f"{body.rstrip()}\n\n{undo_line(facts, undo)}\n",
                                         draft=False, prerelease=release.prerelease)
        return UndoNoteResult(updated.html_url, created=True)


def ensure_postmortem_undo_comment(session: GitHubSession, facts: HotfixFacts, undo: UndoFacts,
                                   number: int) -> UndoNoteResult:
    """One comment on post-mortem pull request `number` saying the hotfix was undone (looked up first)."""
    repo = session.repository(facts.repository)
    with session.errors(f"telling the post-mortem of {facts.tag} (pull request #{number}) of the undo"):
        issue = repo.get_issue(number)
        for comment in issue.get_comments():
            if UNDO_MARKER in (comment.body or ""):
                return UndoNoteResult(comment.html_url, created=False)
        created = issue.create_comment(postmortem_undo_comment(facts, undo))
        return UndoNoteResult(created.html_url, created=True)
