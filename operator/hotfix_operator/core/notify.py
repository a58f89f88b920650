"""Notifications, decided purely: what has happened to a release that people should hear about, which
receivers still have to hear it, and when to try an unreachable one again.

What to tell is read from the status itself, not from a transition seen once: "approval needed" while it
waits, "approved" once approved, and so on. A notice that was due but not yet delivered is therefore
still due after a crash, and each carries a dedupe key (release uid and kind) that is the same on every
attempt: delivery is at least once, and a receiver that keys on it sees each event once. Nothing here
touches the lifecycle: notices are read from its status, never written back into its decisions."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hotfix_operator.api import ConditionType, Phase
from hotfix_operator.core.model import Release, Status
from hotfix_operator.core.notice_model import Kind, NoticeState

# The SLA is "at risk" once this share of it has passed with no traffic on the hotfix yet.
SLA_AT_RISK_SHARE = 0.8
# Retries of an unreachable receiver back off up to this many seconds, and stop after this many attempts
# (about nine minutes): the failure stays in status and in hotfix_notifications_total.
MAX_BACKOFF_SECONDS = 300.0
MAX_ATTEMPTS = 8


def _condition_true(status: Status, kind: ConditionType) -> bool:
    found = status.condition(kind)
    return found is not None and found.status == "True"


def _sla_at_risk(release: Release, status: Status, now: datetime.datetime) -> bool:
    deadline, phase = status.sla_deadline, status.phase
    if deadline is None or phase is None or phase.terminal or status.timestamps.promoted is not None:
        return False
    budget = (deadline - release.created).total_seconds()
    return now >= release.created + datetime.timedelta(seconds=budget * SLA_AT_RISK_SHARE) and now < deadline


def happened(release: Release, status: Status, now: datetime.datetime) -> tuple[Kind, ...]:
    """Every kind of notice the release's status says is due now."""
    stamps, phase = status.timestamps, status.phase
    if status.drill is not None:
        drill_facts = {
            Kind.APPROVAL_NEEDED: phase == Phase.AWAITING_APPROVAL and status.waiting_for is not None,
            Kind.APPROVED: stamps.approved is not None and bool(status.approved_by),
            Kind.DRILL_PASSED: phase == Phase.DRILL_PASSED,
            Kind.DRILL_FAILED: phase == Phase.DRILL_FAILED,
        }
        return tuple(kind for kind, due in drill_facts.items() if due)
    facts = {
        Kind.APPROVAL_NEEDED: phase == Phase.AWAITING_APPROVAL and status.waiting_for is not None,
        Kind.APPROVED: stamps.approved is not None,
        Kind.PROMOTED: stamps.promoted is not None,
        Kind.ROLLED_BACK: phase == Phase.ROLLED_BACK,
        Kind.SUCCEEDED: phase == Phase.SUCCEEDED,
        Kind.SLA_AT_RISK: _sla_at_risk(release, status, now),
        Kind.SLA_BREACHED: _condition_true(status, ConditionType.SLA_BREACHED),
        Kind.POSTMORTEM_OVERDUE: _condition_true(status, ConditionType.POSTMORTEM_OVERDUE),
    }
    return tuple(kind for kind, due in facts.items() if due)


def dedupe_key(release: Release, kind: Kind) -> str:
    return f"{release.uid}/{kind.value}"


@dataclass(frozen=True)
class Delivery:
    """One notice to one receiver: send it now."""

    key: str
    kind: Kind
    receiver: str


@dataclass(frozen=True)
class Outcome:
    """What a sent delivery came back with."""

    key: str
    receiver: str
    ok: bool
    error: str = ""


def pending(release: Release, status: Status, now: datetime.datetime) -> tuple[NoticeState, ...]:
    """The notices due now that some receiver may not have yet (known ones keep their state), less
    those given up on after MAX_ATTEMPTS."""
    known = {n.key: n for n in status.notifications}
    notices = (known.get(dedupe_key(release, kind)) or NoticeState(key=dedupe_key(release, kind), kind=kind)
               for kind in happened(release, status, now))
    return tuple(n for n in notices if n.attempts < MAX_ATTEMPTS)


def plan(release: Release, status: Status, receivers: Iterable[str], outcomes: Iterable[Outcome],
         in_flight: frozenset[tuple[str, str]], now: datetime.datetime) -> tuple[tuple[NoticeState, ...],
                                                                                  tuple[Delivery, ...]]:
    """Fold the outcomes in, then say what to send now. Returns every notice's state (those no longer
    due and fully delivered are kept, so they are never sent again) and the deliveries to start."""
    names = tuple(receivers)
    states = {n.key: n for n in status.notifications}
    for notice in pending(release, status, now):
        states.setdefault(notice.key, notice)
    for outcome in outcomes:
        if outcome.key in states:
            states[outcome.key] = _fold(states[outcome.key], outcome, now)
    sends: list[Delivery] = []
    due_now = {n.key for n in pending(release, status, now)}
    for key, notice in states.items():
        if key not in due_now or (notice.retry_at is not None and now < notice.retry_at):
            continue
        sends += [Delivery(key, notice.kind, r) for r in names
                  if r not in notice.delivered_to and (key, r) not in in_flight]
    return tuple(states.values()), tuple(sends)


def _fold(notice: NoticeState, outcome: Outcome, now: datetime.datetime) -> NoticeState:
    if outcome.ok:
        delivered = tuple(sorted({*notice.delivered_to, outcome.receiver}))
        return notice.model_copy(update={"delivered_to": delivered})
    attempts = notice.attempts + 1
    retry = now + datetime.timedelta(seconds=min(MAX_BACKOFF_SECONDS, 2.0 ** attempts))
    return notice.model_copy(update={"attempts": attempts, "retry_at": retry,
                                     "last_error": f"{outcome.receiver}: {outcome.error}"[:300]})


def text(release: Release, status: Status, kind: Kind) -> str:
    """The line a person reads in the channel, with what to do next."""
    ns, name, tag, target = release.namespace, release.name, release.spec.tag, release.spec.target.deployment
    where = f"hotfix {tag} for {ns}/{target} ({name}, {status.incident_id or 'no incident id'})"
    if status.drill is not None:
        where = f"drill of {ns}/{target} ({name}, image {release.spec.artifact.image.split('@')[-1][:19]}…)"
    rolled = status.condition(ConditionType.ROLLED_BACK)
    by = f"{status.sla_deadline:%H:%M:%S}Z" if status.sla_deadline is not None else "its deadline"
    lines = {
        Kind.APPROVAL_NEEDED: f"{where} needs {status.waiting_for or 'approval'}; requested by "
                              f"{release.spec.requested_by}: {release.spec.justification}. To approve: "
                              f"kubectl hotfix approve {name} -n {ns}",
        Kind.APPROVED: f"{where} approved by {', '.join(status.approved_by) or 'its approvers'}; deploying"
                       + (" green beside blue; no traffic will move" if status.drill is not None else ""),
        Kind.PROMOTED: f"{where}: traffic is on the hotfix; baking with the previous version kept warm",
        Kind.ROLLED_BACK: f"{where} rolled back: {rolled.message if rolled else status.message}",
        Kind.SUCCEEDED: f"{where} succeeded: {status.message}",
        Kind.SLA_AT_RISK: f"{where} is at risk of missing its SLA (traffic on the hotfix by "
                          f"{by}); now {status.phase}: {status.message}",
        Kind.SLA_BREACHED: f"{where} missed its SLA (traffic on the hotfix by {by})",
        Kind.POSTMORTEM_OVERDUE: f"{where}: the post-mortem is overdue; see kubectl hotfix postmortems --missing",
        Kind.DRILL_PASSED: f"{where} passed (traffic never moved): {status.message}",
        Kind.DRILL_FAILED: f"{where} failed (traffic never moved): {status.message}",
    }
    return lines[kind]


def payload(release: Release, status: Status, kind: Kind, style: str) -> Mapping[str, Any]:
    """A generic JSON body, or Slack's incoming-webhook shape; both carry the dedupe key."""
    line, key = text(release, status, kind), dedupe_key(release, kind)
    if style == "slack":
        return {"text": line, "metadata": {"event_type": f"hotfix_{kind.value}", "event_payload": {"dedupeKey": key}}}
    return {"dedupeKey": key, "kind": kind.value, "text": line, "release": release.name,
            "namespace": release.namespace, "version": release.spec.version, "tag": release.spec.tag,
            "phase": status.phase.value if status.phase else None, "incidentId": status.incident_id,
            "message": status.message, "drill": status.drill is not None}
