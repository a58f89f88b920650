"""What status keeps of notifications: each notice by its dedupe key, who has it, and the last failure.
(The rules are core.notify's.) Pure."""

from __future__ import annotations

import datetime
import enum

from hotfix_operator.core.base import Camel


class Kind(enum.StrEnum):
    APPROVAL_NEEDED = "ApprovalNeeded"
    APPROVED = "Approved"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    SUCCEEDED = "Succeeded"
    SLA_AT_RISK = "SLAAtRisk"
    SLA_BREACHED = "SLABreached"
    POSTMORTEM_OVERDUE = "PostmortemOverdue"
    # spec.drill's end (a drill is never promoted, rolled back or succeeded, and has no SLA clock)
    DRILL_PASSED = "DrillPassed"
    DRILL_FAILED = "DrillFailed"


class NoticeState(Camel):
    """One notice's delivery: who has it, and the last failure of those who do not yet."""

    key: str
    kind: Kind
    delivered_to: tuple[str, ...] = ()
    attempts: int = 0
    retry_at: datetime.datetime | None = None
    last_error: str | None = None
