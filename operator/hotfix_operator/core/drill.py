"""Drills (spec.drill): what a rehearsal of the hotfix path decides and reports. Pure.

A drill runs the real path — the input checks, the provenance gate, approvals only if the HotfixPolicy
asks for them on drills (`spec.approvals.drills`), green up beside blue, the pre-promotion checks through
the preview Service — and stops where a hotfix would move traffic: green is removed (core.drill_ending,
through core.traffic's tear-down), the Services get their original selectors back, and it ends
DrillPassed or DrillFailed. Nothing is tagged, released, backported or post-mortemed, and spec.undo is
refused (a drill never Succeeds).

Its report is each stage's time against the SLA budget, split as the seeds split 30 minutes and scaled
to the policy's SLA: detection 5 and fix 10 happen before anything is filed, so they are not measured;
review is the approval wait (Verifying done -> approved); gates and deployment is Pending -> green
available less the review; verification is the pre-promotion checks (green available -> their verdict).
"""

from __future__ import annotations

import datetime

from hotfix_operator.core.governance import GovernanceRules
from hotfix_operator.core.model import DrillStage, DrillStatus, Status

SEED_SLA_SECONDS = 30 * 60
# (stage, its share of the seeds' 30 minutes, in minutes)
STAGE_SPLIT: tuple[tuple[str, int], ...] = (
    ("detection", 5), ("fix", 10), ("review", 5), ("gatesAndDeployment", 8), ("verification", 2))
BEFORE_FILING = "before the HotfixRelease was filed: not measured by the operator"


def start(rules: GovernanceRules) -> DrillStatus:
    """What a drill fixes in status when filed: the policy's drill approval rule and its SLA."""
    return DrillStatus(approvals=rules.drill_approvals, sla_seconds=rules.sla_seconds)


def budgets(sla_seconds: int) -> dict[str, float]:
    """Each stage's budget, the seeds' split scaled to this SLA."""
    return {name: minutes * 60 * sla_seconds / SEED_SLA_SECONDS for name, minutes in STAGE_SPLIT}


def _between(start: datetime.datetime | None, end: datetime.datetime | None) -> float | None:
    return None if start is None or end is None else max(0.0, round((end - start).total_seconds(), 3))


def stages(status: Status, concluded: datetime.datetime) -> tuple[DrillStage, ...]:
    """The drill's stage times from its timestamps, as far as it got."""
    drill = status.drill or DrillStatus()
    ts, budget = status.timestamps, budgets(drill.sla_seconds)
    skipped = drill.approvals == "NotRequired"
    review = 0.0 if skipped and ts.approved is not None else _between(ts.verified, ts.approved)
    gates = _between(ts.created, ts.verified)
    deploy = _between(ts.approved, ts.green_available)
    measured: dict[str, tuple[float | None, str]] = {
        "detection": (None, BEFORE_FILING),
        "fix": (None, BEFORE_FILING),
        "review": (review, "approvals not required for drills by the HotfixPolicy" if skipped else
                   "provenance verified -> approved"),
        "gatesAndDeployment": (None if gates is None or deploy is None else round(gates + deploy, 3),
                               "filed -> provenance verified, plus approved -> green available"),
        "verification": (_between(ts.green_available, concluded), "green available -> pre-promotion checks' verdict"),
    }
    out = []
    for name, _ in STAGE_SPLIT:
        seconds, note = measured[name]
        if seconds is None and name not in ("detection", "fix"):
            note = "not reached"
        out.append(DrillStage(name=name, budget_seconds=round(budget[name], 3), seconds=seconds,
                              within_budget=None if seconds is None else seconds <= budget[name], note=note))
    return tuple(out)


def conclude(status: Status, passed: bool, reason: str, message: str, now: datetime.datetime) -> DrillStatus:
    """The outcome, decided once (the first verdict stands: an abort while green is removed changes nothing),
    with the stage times up to now."""
    drill = status.drill or DrillStatus()
    if drill.outcome is not None:
        return drill
    return drill.model_copy(update={"outcome": "Passed" if passed else "Failed", "reason": reason,
                                    "message": message, "concluded": now, "stages": stages(status, now)})


def report(drill: DrillStatus) -> str:
    """One line: each measured stage's seconds against its budget."""
    parts = [f"{st.name} {st.seconds:.0f}s/{st.budget_seconds:.0f}s" for st in drill.stages if st.seconds is not None]
    return "; ".join(parts) or "no stage measured"
