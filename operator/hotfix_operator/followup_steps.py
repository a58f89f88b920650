"""The follow-ups' GitHub half: one step run through the publishing adapters, its errors turned into
plain data (core.followup.Failure), and the facts each step is given, read from the release and its
status. `followup_runner` imports this module the first time a step is due, so an operator whose
policies have no github section never loads GitHub's client.

Where the facts come from (all of it already in the object; nothing a requester could change after
approval, since spec is immutable):
  repository      spec.artifact.sourceRepository "github.com/<owner>/<name>" (host dropped; the API
                  host is the policy's apiUrl)
  promoted_at     status.timestamps.promoted (also the tag's date and the deadline's origin)
  approvals       spec.approval.approvals with decision Approve, not by the requester, at their `at`
                  or else at status.timestamps.approved
  timeline        status.timestamps created, verified, approved, promoted (UTC)
  due at          status.postmortem.dueAt, fixed on first sight: promoted + policy postmortemDeadlineHours

The release assets (hotfix_record.json, provenance.json, evidence.tar.gz, SHA256SUMS) are built by
core.records from the release and its status alone.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

from hotfix_operator.adapters.policies import GitHubSettings
from hotfix_operator.core import followup as core
from hotfix_operator.core.followup import Config, Failure, Step
from hotfix_operator.core.followup_results import UndoNoteResult
from hotfix_operator.core.model import Release, Status
from hotfix_operator.core.records import approvals_of, evidence_files, timeline_of
from hotfix_operator.publishing import (
    AssetConflictError,
    EvidenceIntegrityError,
    GitHubSession,
    HotfixFacts,
    InvalidFactsError,
    PermanentError,
    PublishingError,
    TagConflictError,
    TransientError,
    UndoFacts,
    check_postmortem,
    ensure_backport,
    ensure_overdue_issue,
    ensure_postmortem_pr,
    ensure_postmortem_undo_comment,
    ensure_release,
    ensure_tag,
    ensure_undo_note,
)
from hotfix_operator.publishing.redaction import Redactor

log = logging.getLogger(__name__)


def attempt(step: Step, release: Release, status: Status, config: Config, github: GitHubSettings,
            now: datetime.datetime, session: Callable[[], GitHubSession]) -> core.Result | Failure:
    """Run `step` once; whatever goes wrong comes back as a Failure with the policy's secrets redacted."""
    redact = Redactor()
    for secret in (github.token, github.app_private_key):
        if secret:
            redact.add(secret)
    try:
        facts = build_facts(release, status, config)  # before the session: bad facts need no GitHub
        return run_step(step, session(), facts, status, now)
    except PublishingError as error:
        return failure_of(error, redact)
    except Exception as error:  # a bug or an unforeseen library error: back off, never crash the loop
        log.error("%s/%s: follow-up step %s raised %s: %s", release.namespace, release.name, step,
                  type(error).__name__, redact(str(error)))
        return Failure(True, "UnexpectedError", redact(f"{type(error).__name__}: {error}"))


def open_session(github: GitHubSettings, write_interval: float) -> GitHubSession:
    if github.token is not None:
        return GitHubSession.from_token(github.token, base_url=github.api_url,
                                        seconds_between_writes=write_interval)
    if github.app_id is None or github.installation_id is None or github.app_private_key is None:
        raise PermanentError("the HotfixPolicy's github section names neither a token nor a complete GitHub App")
    return GitHubSession.from_app_installation(github.app_id, github.app_private_key, github.installation_id,
                                               base_url=github.api_url, seconds_between_writes=write_interval)


def run_step(step: Step, session: GitHubSession, facts: HotfixFacts, status: Status,
             now: datetime.datetime) -> core.Result:
    release_url = status.release.url if status.release else None
    backport_url = status.backport.pull_request if status.backport else None
    if step == Step.TAG:
        return ensure_tag(session, facts)
    if step == Step.RELEASE:
        return ensure_release(session, facts)
    if step == Step.BACKPORT:
        return ensure_backport(session, facts, release_url=release_url)
    if step == Step.POSTMORTEM_PR:
        return ensure_postmortem_pr(session, facts, release_url=release_url, backport_url=backport_url)
    if step == Step.POSTMORTEM_CHECK:
        return check_postmortem(session, facts, now)
    if step == Step.UNDO_NOTE:
        return ensure_undo_note(session, facts, undo_facts(status))
    if step == Step.UNDO_POSTMORTEM:
        number = status.postmortem.number if status.postmortem else None
        if number is None:  # the post-mortem was already on the default branch: no pull request to tell
            return UndoNoteResult("", created=False)
        return ensure_postmortem_undo_comment(session, facts, undo_facts(status), number)
    postmortem_url = status.postmortem.pull_request if status.postmortem else None
    return ensure_overdue_issue(session, facts, now=now, postmortem_pull_request_url=postmortem_url)


def failure_of(error: PublishingError, redact: Redactor) -> Failure:
    message = redact(error.message)
    if isinstance(error, TransientError):
        return Failure(True, "GitHubUnavailable", message, error.retry_after)
    reason = "GitHubRefused"
    if isinstance(error, TagConflictError):
        reason = "TagConflict"
    elif isinstance(error, AssetConflictError):
        reason = "AssetConflict"
    elif isinstance(error, EvidenceIntegrityError):
        reason = "EvidenceIntegrity"
    elif isinstance(error, InvalidFactsError):
        reason = "InvalidFacts"
    return Failure(False, reason, message)


# -- facts ---------------------------------------------------------------------------------------


def undo_facts(status: Status) -> UndoFacts:
    undo = status.undo
    if undo is None or undo.times.completed is None or undo.previous_image is None:
        raise InvalidFactsError("the undo has no completion time or previous image in status.undo")
    return UndoFacts(by=undo.by, reason=undo.reason, at=undo.times.completed, previous_image=undo.previous_image)


def repository_of(source_repository: str) -> str:
    """'github.com/acme/checkout' (or https://…, or …/checkout.git) -> 'acme/checkout'."""
    text = source_repository.strip().removeprefix("https://").removeprefix("http://").removesuffix(".git")
    parts = [p for p in text.split("/") if p]
    if len(parts) < 2:
        raise InvalidFactsError(f"spec.artifact.sourceRepository {source_repository!r} does not name "
                                "<host>/<owner>/<repository>")
    return "/".join(parts[-2:])


def build_facts(release: Release, status: Status, config: Config) -> HotfixFacts:
    spec = release.spec
    promoted = status.timestamps.promoted
    due = core.due_at(status, config)
    if promoted is None or due is None:
        raise InvalidFactsError("the hotfix has no promotion time in status.timestamps.promoted")
    return HotfixFacts(
        version=spec.version,
        commit_sha=spec.commit_sha,
        incident_id=status.incident_id or "",
        ticket_url=spec.ticket_url,
        justification=spec.justification,
        severity=spec.severity,
        risk_level=spec.risk_level,
        requested_by=spec.requested_by,
        repository=repository_of(spec.artifact.source_repository),
        promoted_at=promoted,
        postmortem_due_at=due,
        approvals=approvals_of(status),  # type: ignore[arg-type]  # plain tuples are accepted
        timeline=timeline_of(status),  # type: ignore[arg-type]
        evidence=evidence_files(release, status),
    )


__all__ = ["attempt", "build_facts", "failure_of", "open_session", "repository_of", "run_step"]
