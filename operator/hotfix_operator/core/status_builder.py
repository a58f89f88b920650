"""Building the next status in one reconcile, shared by the lifecycle and the follow-ups: set a
condition, append to the audit trail, queue an Event, ask to be woken again. Pure."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Literal

from hotfix_operator.api import AUDIT_LIMIT, OPERATOR, ConditionType
from hotfix_operator.core.actions import Event
from hotfix_operator.core.conditions import ConditionStatus, set_condition
from hotfix_operator.core.model import AuditEntry, Release, Status


@dataclass
class StatusBuilder:
    release: Release
    status: Status
    now: datetime.datetime
    events: list[Event] = field(default_factory=list)
    # seconds until the next reconcile is needed; None = only when the object changes
    requeue_after: float | None = None

    def update(self, **changes: Any) -> None:
        self.status = self.status.model_copy(update=changes)

    def set_condition(self, type_: ConditionType, status: ConditionStatus, reason: str, message: str) -> None:
        self.update(conditions=set_condition(self.status.conditions, type_, status, reason, message,
                                             generation=self.release.generation, now=self.now))

    def add_audit(self, action: str, detail: str, actor: str = OPERATOR) -> None:
        entries = (*self.status.audit, AuditEntry(time=self.now, actor=actor, action=action, detail=detail))
        self.update(audit=entries[-AUDIT_LIMIT:])

    def post_event(self, type_: Literal["Normal", "Warning"], reason: str, message: str,
                   actor: str = OPERATOR) -> None:
        self.events.append(Event(type_, reason, message, actor))

    def requeue(self, seconds: float) -> None:
        """Be reconciled again within `seconds` (the soonest request wins)."""
        self.requeue_after = seconds if self.requeue_after is None else min(self.requeue_after, seconds)
