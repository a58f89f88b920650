"""metav1.Condition bookkeeping: a condition's lastTransitionTime moves only when its status does."""

from __future__ import annotations

import datetime
from typing import Literal

from hotfix_operator.api import ConditionType
from hotfix_operator.core.model import Condition

ConditionStatus = Literal["True", "False", "Unknown"]


def set_condition(
    conditions: tuple[Condition, ...],
    type_: ConditionType | str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    generation: int,
    now: datetime.datetime,
) -> tuple[Condition, ...]:
    previous = next((c for c in conditions if c.type == type_), None)
    changed_at = previous.last_transition_time if previous and previous.status == status else now
    updated = Condition(
        type=type_, status=status, reason=reason, message=message,
        observed_generation=generation, last_transition_time=changed_at,
    )
    if previous is None:
        return (*conditions, updated)
    return tuple(updated if c.type == type_ else c for c in conditions)
