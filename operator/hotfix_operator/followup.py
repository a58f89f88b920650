"""The follow-ups' imperative shell: facts from the release and its status, one GitHub step at a time.

The controller calls FollowupRunner.run once per reconcile when the phase is Finalizing or Succeeded
and the namespace's HotfixPolicy has a github section. It asks the pure core (core.followup) which
step is due, runs it through the publishing adapters, turns their TransientError / PermanentError
into plain data and lets the core decide the new status, events and requeue.

Where the facts come from (all of it already in the object; nothing a requester could change after
approval, since spec is immutable):
  repository      spec.artifact.sourceRepository "github.com/<owner>/<name>" (host dropped; the API
                  host is the policy's apiUrl)
  promoted_at     status.timestamps.promoted (also the tag's date and the deadline's origin)
  approvals       spec.approval.approvals with decision Approve, not by the requester, at their `at`
                  or else at status.timestamps.approved
  timeline        status.timestamps created, verified, approved, promoted (UTC)
  due at          status.postmortem.dueAt, fixed on first sight: promoted + policy postmortemDeadlineHours

Evidence (the release assets). Every byte is a function of facts that are final at promotion, so a
retry or a restarted operator uploads identical bytes (an asset that differs would be refused):
  hotfix_record.json  the audit record: incident, version, tag, commit, image, justification, ticket,
                      severity, risk, requester, approvals, policy, provenance summary, the timestamps up
                      to promotion, blue/green hashes, and the audit entries up to promotion
  provenance.json     what the provenance gate verified (status.provenance: signers, builder, source,
                      commit, predicate types) with the image digest, the policy and the time; the
                      signed attestations themselves stay in the registry next to the image
  evidence.tar.gz     the two files above as one bundle (deterministic tar: fixed mtimes, owners, gzip
                      header without a timestamp)
  SHA256SUMS          sha256sum-format digests of the three files above
spec.artifact.evidence (an external bundle URL) is not downloaded; it is named in hotfix_record.json.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import io
import json
import logging
import tarfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hotfix_operator.adapters.policies import GitHubSettings
from hotfix_operator.core import followup as core
from hotfix_operator.core.followup import Config, Failure, FollowupDecision, Step
from hotfix_operator.core.model import Release, Status
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
    check_postmortem,
    ensure_backport,
    ensure_overdue_issue,
    ensure_postmortem_pr,
    ensure_release,
    ensure_tag,
)
from hotfix_operator.publishing.redaction import Redactor

log = logging.getLogger(__name__)

SessionFactory = Callable[[GitHubSettings, float], GitHubSession]


@dataclass(frozen=True)
class FollowupSettings:
    """Operator-wide knobs (flags of `hotfix-operator run`)."""

    check_seconds: float = 600.0
    # overrides every policy's postmortemDeadlineHours: drills and tests only
    deadline_seconds: float | None = None
    github_write_interval: float = 1.0
    backoff_seconds: float = 5.0
    max_backoff_seconds: float = 300.0
    permanent_retry_seconds: float = 3600.0

    def config(self, github: GitHubSettings) -> Config:
        deadline = (datetime.timedelta(seconds=self.deadline_seconds) if self.deadline_seconds is not None
                    else datetime.timedelta(hours=github.postmortem_deadline_hours))
        return Config(deadline=deadline, check_interval=self.check_seconds, base_backoff=self.backoff_seconds,
                      max_backoff=self.max_backoff_seconds, permanent_retry=self.permanent_retry_seconds)


def open_session(github: GitHubSettings, write_interval: float) -> GitHubSession:
    if github.token is not None:
        return GitHubSession.from_token(github.token, base_url=github.api_url,
                                        seconds_between_writes=write_interval)
    if github.app_id is None or github.installation_id is None or github.app_private_key is None:
        raise PermanentError("the HotfixPolicy's github section names neither a token nor a complete GitHub App")
    return GitHubSession.from_app_installation(github.app_id, github.app_private_key, github.installation_id,
                                               base_url=github.api_url, seconds_between_writes=write_interval)


class FollowupRunner:
    def __init__(self, settings: FollowupSettings | None = None, sessions: SessionFactory = open_session) -> None:
        self.settings = settings or FollowupSettings()
        self._open = sessions
        self._sessions: dict[GitHubSettings, GitHubSession] = {}
        self._lock = threading.Lock()

    def run(self, release: Release, status: Status, github: GitHubSettings,
            now: datetime.datetime) -> FollowupDecision:
        """At most one GitHub step; the returned status is `status` plus the follow-up's changes."""
        config = self.settings.config(github)
        planned = core.plan(release, status, now, config)
        if planned.step is None:
            return FollowupDecision(planned.status, requeue_after=planned.requeue_after, done=planned.done)
        step = planned.step
        redact = Redactor()
        for secret in (github.token, github.app_private_key):
            if secret:
                redact.add(secret)
        outcome: core.Result | Failure
        try:
            facts = build_facts(release, planned.status, config)
            session = self.session(github)
            outcome = run_step(step, session, facts, planned.status, now)
        except PublishingError as error:
            outcome = failure_of(error, redact)
        except Exception as error:  # a bug or an unforeseen library error: back off, never crash the loop
            log.error("%s/%s: follow-up step %s raised %s: %s", release.namespace, release.name, step,
                      type(error).__name__, redact(str(error)))
            outcome = Failure(True, "UnexpectedError", redact(f"{type(error).__name__}: {error}"))
        if isinstance(outcome, Failure):
            log.warning("%s/%s: follow-up %s %s: %s", release.namespace, release.name, step,
                        "delayed" if outcome.transient else "failed", outcome.message)
            if not outcome.transient:
                self.forget(github)  # credentials may have been rotated: open a fresh session next time
        return core.record(release, planned.status, step, outcome, now, config)

    def session(self, github: GitHubSettings) -> GitHubSession:
        with self._lock:
            found = self._sessions.get(github)
            if found is None:
                if len(self._sessions) >= 16:
                    for old in self._sessions.values():
                        old.close()
                    self._sessions.clear()
                found = self._sessions[github] = self._open(github, self.settings.github_write_interval)
            return found

    def forget(self, github: GitHubSettings) -> None:
        with self._lock:
            old = self._sessions.pop(github, None)
        if old is not None:
            old.close()


def run_step(step: Step, session: GitHubSession, facts: HotfixFacts, status: Status,
             now: datetime.datetime) -> core.Result:
    release_url = _get(status.release, "url")
    backport_url = _get(status.backport, "pullRequest")
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
    return ensure_overdue_issue(session, facts, now=now,
                                postmortem_pull_request_url=_get(status.postmortem, "pullRequest"))


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


def _get(area: Mapping[str, Any] | None, key: str) -> str | None:
    value = (area or {}).get(key)
    return str(value) if value else None


# -- facts ---------------------------------------------------------------------------------------


def repository_of(source_repository: str) -> str:
    """'github.com/acme/checkout' (or https://…, or …/checkout.git) -> 'acme/checkout'."""
    text = source_repository.strip().removeprefix("https://").removeprefix("http://").removesuffix(".git")
    parts = [p for p in text.split("/") if p]
    if len(parts) < 2:
        raise InvalidFactsError(f"spec.artifact.sourceRepository {source_repository!r} does not name "
                                "<host>/<owner>/<repository>")
    return "/".join(parts[-2:])


def approvals_of(release: Release, status: Status) -> list[tuple[str, datetime.datetime]]:
    fallback = status.timestamps.approved or status.timestamps.promoted
    result = []
    for approval in release.spec.approval.approvals:
        if approval.decision != "Approve" or approval.approver == release.spec.requested_by:
            continue
        at = approval.at or fallback
        if at is not None:
            result.append((approval.approver, at))
    return result


def timeline_of(status: Status) -> list[tuple[str, datetime.datetime]]:
    ts = status.timestamps
    events = [("Hotfix requested", ts.created), ("Provenance verified", ts.verified), ("Approved", ts.approved),
              ("Traffic switched to the hotfix", ts.promoted)]
    return [(what, at) for what, at in events if at is not None]


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
        approvals=approvals_of(release, status),  # type: ignore[arg-type]  # plain tuples are accepted
        timeline=timeline_of(status),  # type: ignore[arg-type]
        evidence=evidence_files(release, status),
    )


# -- evidence ------------------------------------------------------------------------------------


def _iso(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(payload: Any) -> bytes:
    return (json.dumps(payload, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def hotfix_record(release: Release, status: Status) -> dict[str, Any]:
    """The audit record, limited to what is final at promotion (so it is the same bytes on every retry)."""
    spec, ts, promoted = release.spec, status.timestamps, status.timestamps.promoted
    audit = [
        {"time": _iso(entry.time), "actor": entry.actor, "action": entry.action, "detail": entry.detail}
        for entry in status.audit
        if promoted is not None and entry.time <= promoted
    ]
    return {
        "schema": "hotfix.dev/hotfix-record/v1",
        "incidentId": status.incident_id,
        "release": {"namespace": release.namespace, "name": release.name, "uid": release.uid},
        "version": spec.version,
        "tag": spec.tag,
        "commitSha": spec.commit_sha,
        "image": spec.artifact.image,
        "sourceRepository": spec.artifact.source_repository,
        "externalEvidence": spec.artifact.evidence,
        "justification": spec.justification,
        "ticketUrl": spec.ticket_url,
        "severity": spec.severity,
        "riskLevel": spec.risk_level,
        "requestedBy": spec.requested_by,
        "approvals": [{"approver": who, "at": _iso(at)} for who, at in approvals_of(release, status)],
        "policy": status.policy,
        "provenance": status.provenance,
        "target": spec.target.model_dump(by_alias=True, exclude_none=True),
        "timestamps": {"created": _iso(ts.created), "verified": _iso(ts.verified), "approved": _iso(ts.approved),
                       "greenAvailable": _iso(ts.green_available), "promoted": _iso(ts.promoted)},
        "blueGreen": {"blueHash": status.blue_green.blue_hash, "greenHash": status.blue_green.green_hash,
                      "blueImage": status.blue_green.blue_image},
        "slaDeadline": _iso(status.sla_deadline),
        "audit": audit,
    }


def provenance_record(release: Release, status: Status) -> dict[str, Any]:
    return {
        "schema": "hotfix.dev/verified-provenance/v1",
        "image": release.spec.artifact.image,
        "policy": status.policy,
        "verifiedAt": _iso(status.timestamps.verified),
        "verified": status.provenance,
    }


def _tar_gz(files: Mapping[str, bytes], mtime: int) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), mtime, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def evidence_files(release: Release, status: Status) -> dict[str, bytes]:
    files = {
        "hotfix_record.json": _json(hotfix_record(release, status)),
        "provenance.json": _json(provenance_record(release, status)),
    }
    promoted = status.timestamps.promoted
    files["evidence.tar.gz"] = _tar_gz(files, int(promoted.timestamp()) if promoted else 0)
    files["SHA256SUMS"] = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items())
    ).encode()
    return files


__all__ = ["FollowupRunner", "FollowupSettings", "build_facts", "evidence_files", "failure_of", "hotfix_record",
           "open_session", "repository_of", "run_step"]
