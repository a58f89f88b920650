"""One reconcile of the lifecycle: the status being built, the actions to run, and the transitions
every phase shares (enter a phase, reject, roll back, fail). The phases themselves live in
core.intake and core.cutover; core.lifecycle dispatches to them."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from hotfix_operator.api import OPERATOR, ConditionType, Phase
from hotfix_operator.core import drill
from hotfix_operator.core.actions import Action, Event
from hotfix_operator.core.model import BlueGreen, Spec, Status
from hotfix_operator.core.observations import Observations
from hotfix_operator.core.status_builder import StatusBuilder

# While a phase waits on the cluster, look again this often (seconds). The watches wake it as soon as what it
# waits on changes (core.lifecycle.watched_objects, and the pods of its namespace), so this is the fallback for
# an event that never came; a wait with a deadline looks again when the deadline passes (Step.wait_until).
ACTIVE_REQUEUE = 5.0


@dataclass(frozen=True)
class Decision:
    status: Status
    actions: tuple[Action, ...] = ()
    events: tuple[Event, ...] = ()
    # seconds until the next reconcile is needed; None = only when the object changes
    requeue_after: float | None = None
    # whether a pod's change may alter what this decision waits on; False while only a Deployment's
    # rollout is awaited, which its own status reports (the shell then wakes it on the Deployment alone)
    wakes_on_pods: bool = True


@dataclass
class Step(StatusBuilder):
    obs: Observations = field(kw_only=True)
    actions: list[Action] = field(default_factory=list)
    # every wait of this reconcile was on a Deployment's rollout alone (Decision.wakes_on_pods); None: no wait
    rollout_only: bool | None = field(default=None, kw_only=True)

    @property
    def spec(self) -> Spec:
        return self.release.spec

    @property
    def bg(self) -> BlueGreen:
        return self.status.blue_green

    def update_bg(self, **changes: Any) -> None:
        self.update(blue_green=self.bg.model_copy(update=changes))

    def stamp(self, **changes: datetime.datetime) -> None:
        """Set timestamps that are not set yet; a timestamp, once written, is a fact."""
        current = self.status.timestamps
        fresh = {k: v for k, v in changes.items() if getattr(current, k) is None}
        if fresh:
            self.update(timestamps=current.model_copy(update=fresh))

    def act(self, action: Action) -> None:
        self.actions.append(action)

    def wait(self, seconds: float = ACTIVE_REQUEUE, *, rollout_only: bool = False) -> None:
        """Look again within `seconds`, or when what is waited on changes; `rollout_only`: that is a
        Deployment's rollout alone, so its pods' changes need not wake the release."""
        self.requeue(seconds)
        self.rollout_only = rollout_only and self.rollout_only is not False

    def wait_until(self, since: datetime.datetime | None, limit: float, *, rollout_only: bool = False) -> None:
        """Wait on the cluster, and look again once `limit` seconds have passed since `since`: a deadline
        decides even when nothing changes. (Times are whole seconds, and a deadline is passed once exceeded:
        hence the one second more.)"""
        left = limit - (self.now - since).total_seconds() if since is not None else limit
        self.wait(min(ACTIVE_REQUEUE, max(0.0, left) + 1.0), rollout_only=rollout_only)

    def say(self, message: str) -> None:
        self.update(message=message)

    def enter(self, phase: Phase, message: str, *, reason: str | None = None, actor: str = OPERATOR,
              warning: bool = False) -> None:
        """Move to `phase`: message, Event and audit entry; a non-terminal phase continues at once."""
        self.update(phase=phase, message=message)
        self.post_event("Warning" if warning else "Normal", reason or phase.value, message, actor)
        self.add_audit(phase.value, message, actor)
        if not phase.terminal:
            self.requeue(0)

    def reject(self, reason: str, message: str, *, condition: ConditionType | None = None,
               actor: str = OPERATOR) -> None:
        if condition:
            self.set_condition(condition, "False", reason, message)
        if self.spec.drill:  # nothing in production changed: the drill fails here
            self.update(drill=drill.conclude(self.status, False, reason, message, self.now))
            self.stamp(completed=self.now)
            self.enter(Phase.DRILL_FAILED, f"drill failed: {message}", reason=reason, actor=actor, warning=True)
            return
        self.enter(Phase.REJECTED, message, reason=reason, actor=actor, warning=True)

    def end_drill(self, passed: bool, reason: str, message: str, actor: str = OPERATOR) -> None:
        """A drill's verdict: record it with the stage times, then remove green (phase DrillEnding)."""
        self.update(drill=drill.conclude(self.status, passed, reason, message, self.now))
        self.enter(Phase.DRILL_ENDING, f"drill {'passed' if passed else 'failed'}: {message}; removing green, "
                   "traffic stays on blue", reason=reason, actor=actor, warning=not passed)

    def roll_back(self, reason: str, message: str, actor: str = OPERATOR) -> None:
        if self.spec.drill:  # a drill never moved traffic: it ends, removing green whatever autoRollback says
            self.end_drill(False, reason, message, actor)
            return
        if not self.spec.rollout.auto_rollback and actor == OPERATOR:
            self.enter(Phase.FAILED, f"{message}; autoRollback is off, so nothing was undone: set spec.abort "
                       "(by, reason) to roll back", reason=reason, warning=True)
            return
        self.stamp(rollback_started=self.now)
        self.set_condition(ConditionType.ROLLED_BACK, "False", reason, f"rolling back: {message}")
        self.enter(Phase.ROLLING_BACK, message, reason=reason, actor=actor, warning=True)

    def fail(self, reason: str, message: str) -> None:
        self.enter(Phase.FAILED, message, reason=reason, warning=True)

    def decision(self) -> Decision:
        return Decision(self.status, tuple(self.actions), tuple(self.events), self.requeue_after,
                        wakes_on_pods=not self.rollout_only)  # None: no wait, so pods may matter
