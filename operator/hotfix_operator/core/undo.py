"""Undo after success: put the version that ran before the hotfix back, through the same safe path. Pure.

A Succeeded HotfixRelease may be undone, within the HotfixPolicy's window (`spec.undo.windowSeconds`,
fixed in status when the release was filed), by setting `spec.undo: {by, reason}`; admission proves
`by` is the caller and that the caller is the requester or holds `approve`. The undo is the blue-green
cutover run in reverse:

  Previous  a helper Deployment `<deployment>-undo-<uid8>` comes up beside the hotfixed Deployment,
            from its live template with the previous image (the forward cutover's record of blue);
            traffic stays pinned to the hotfix. The release's and the policy's pre-promotion checks
            run again against it through the preview Service — fresh copies kept in
            status.undo.checks, so status.checks keeps the forward run's record.
  Switch    the active Service is pointed at the helper; the switch counts once its EndpointSlices
            list only the helper's pods (core.traffic), and the bake runs from then with the
            hotfixed Deployment kept warm, the post-promotion checks measured again (fresh copies
            too); the fold waits for the bake's time and every one of them.
  Fold      the Deployment's image is set back to the previous one while the helper serves; once it
            has rolled out, traffic moves to it, then the helper is removed and both Services get
            their original selectors back. Phase Undone.
  Return    a failed check (before the switch or during the bake), a helper that does not come up
            or becomes unavailable, or spec.abort (set after the undo was accepted) gives up: traffic
            goes back to (or never left) the hotfix, which was kept warm, the helper is removed, and
            phase UndoFailed says why. The hotfix serves throughout.

The reverse run has its own BlueGreen (status.undo.blueGreen: "blue" is the hotfixed Deployment,
"green" the helper), so core.traffic's helpers run it unchanged through UndoStep, and the forward
record in status.blueGreen — which the published evidence is built from — is never touched.

Accepting or refusing spec.undo (the window, the target unchanged, the approvals the HotfixPolicy asks
for) is core.undo_request's; this module runs an accepted undo.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from hotfix_operator.api import OPERATOR, POD_TEMPLATE_HASH, ROLE_PREVIOUS, CheckStage, ConditionType, Phase, Reason
from hotfix_operator.core.actions import CreateDeployment, SetContainerImage
from hotfix_operator.core.check_model import CheckState
from hotfix_operator.core.checks import StageVerdict, due, failure_line, of_stage, record, seconds_to_next, verdict
from hotfix_operator.core.manifests import green_deployment, green_name
from hotfix_operator.core.model import BlueGreen, Release, Status, UndoStatus
from hotfix_operator.core.step import ACTIVE_REQUEUE, Step
from hotfix_operator.core.traffic import (
    green_pods_left,
    hold_traffic,
    owns_green,
    report_unconfirmed,
    serving_from,
    switch,
    tear_down_green,
    wait_for_preview,
)
from hotfix_operator.core.undo_request import BAKE_STAGE, STAGE, short, succeeded, undo_name, window_ends

# -- what the shell asks ---------------------------------------------------------------------------


def observed_green(release: Release, status: Status) -> str:
    """The Deployment the shell observes as "green": the undo's helper while undoing, else green."""
    if status.phase == Phase.UNDOING and status.undo is not None and status.undo.blue_green.green_deployment:
        return status.undo.blue_green.green_deployment
    return status.blue_green.green_deployment or green_name(release)


def run_state(status: Status) -> BlueGreen:
    """The blue-green state of the run under way (check templates' greenPodHash and friends)."""
    if status.phase == Phase.UNDOING and status.undo is not None:
        return status.undo.blue_green
    return status.blue_green


def checks_due(status: Status, now: datetime.datetime) -> tuple[CheckState, ...]:
    undo = status.undo
    if status.phase != Phase.UNDOING or undo is None:
        return ()
    stage, started = {"Previous": (STAGE, undo.times.previous_available),
                      "Switch": (BAKE_STAGE, undo.times.switched)}.get(undo.step, (STAGE, None))
    return due(undo.checks, stage, started, now) if started is not None else ()


def preview_side(status: Status) -> str | None:
    """While the undo checks the previous version through the preview Service: its pod-template-hash."""
    undo = status.undo
    if status.phase != Phase.UNDOING or undo is None or undo.step != "Previous":
        return None
    return undo.blue_green.green_hash


# -- the reverse run's Step ------------------------------------------------------------------------


@dataclass
class UndoStep(Step):
    """A Step whose blue-green state is the undo's own, so core.traffic runs the reverse cutover."""

    @property
    def undo(self) -> UndoStatus:
        assert self.status.undo is not None
        return self.status.undo

    @property
    def bg(self) -> BlueGreen:
        return self.undo.blue_green

    def update_bg(self, **changes: Any) -> None:
        self.update_undo(blue_green=self.bg.model_copy(update=changes))

    def update_undo(self, **changes: Any) -> None:
        self.update(undo=self.undo.model_copy(update=changes))

    def stamp_undo(self, **changes: datetime.datetime) -> None:
        current = self.undo.times
        fresh = {k: v for k, v in changes.items() if getattr(current, k) is None}
        if fresh:
            self.update_undo(times=current.model_copy(update=fresh))

    def progress(self, reason: str, message: str) -> None:
        self.set_condition(ConditionType.UNDONE, "False", reason, message)
        self.say(message)


def _as_undo(s: Step) -> UndoStep:
    return UndoStep(s.release, s.status, s.now, s.events, s.requeue_after, obs=s.obs, actions=s.actions,
                    rollout_only=s.rollout_only)


def _merge(s: Step, u: UndoStep) -> None:
    s.status, s.requeue_after, s.rollout_only = u.status, u.requeue_after, u.rollout_only


# -- Undoing ---------------------------------------------------------------------------------------


def undoing(s: Step) -> None:
    u = _as_undo(s)
    try:
        abort = u.spec.abort
        if abort is not None and not u.undo.abort_seen and u.undo.step in ("Previous", "Switch"):
            give_up(u, Reason.ABORTED, f"aborted by {abort.by}: {abort.reason}", actor=abort.by)
        {"Previous": previous, "Switch": switched, "Fold": fold, "Return": returning, "Done": done}[u.undo.step](u)
    finally:
        _merge(s, u)


def previous(u: UndoStep) -> None:
    blue, service, t, undo = u.obs.blue, u.obs.service, u.spec.target, u.undo
    hotfix_hash, name = u.bg.blue_hash, u.bg.green_deployment
    assert hotfix_hash is not None and name is not None and undo.previous_image is not None
    if blue is None or service is None:
        give_up(u, Reason.TARGET_DISAPPEARED, f"Deployment {t.deployment} or Service {t.service} was deleted")
        return
    hold_traffic(u, hotfix_hash, None, "keep traffic on the hotfix while the previous version comes up")
    helper = u.obs.green
    if helper is None:
        u.act(CreateDeployment(green_deployment(u.release, blue, name, u.status.incident_id or "",
                                                image=undo.previous_image, role=ROLE_PREVIOUS)))
        u.stamp_undo(previous_created=u.now)
        u.progress(Reason.CREATING, f"undo: creating Deployment {name} with {short(undo.previous_image)}; traffic "
                   "stays on the hotfix")
        u.wait()
        return
    if not owns_green(u):
        give_up(u, Reason.GREEN_NAME_CONFLICT, f"Deployment {helper.name} exists and was not created by this "
                "HotfixRelease; refusing to touch it")
        return
    if not (helper.rolled_out and helper.current_hash):
        detail = f"{helper.available_replicas}/{helper.replicas} replicas available" + (
            f": {helper.stuck_reason}" if helper.stuck_reason else "")
        since, limit = undo.times.previous_created or u.now, u.spec.rollout.progress_deadline_seconds
        if (u.now - since).total_seconds() > limit:
            give_up(u, Reason.PROGRESS_DEADLINE_EXCEEDED, f"the previous version ({name}) was not available within "
                    f"{limit}s ({detail})")
            return
        u.progress(Reason.PROGRESSING, f"undo: waiting for {name} running the previous version ({detail}); traffic "
                   "stays on the hotfix")
        u.wait_until(since, limit, rollout_only=True)
        return
    if u.bg.green_hash is None:
        u.update_bg(green_hash=helper.current_hash)
        u.add_audit("PreviousAvailable", f"Deployment {name} runs {short(undo.previous_image)} with "
                    f"{helper.available_replicas} replicas available ({POD_TEMPLATE_HASH}={helper.current_hash})")
    u.stamp_undo(previous_available=u.now)
    helper_hash = u.bg.green_hash
    assert helper_hash is not None
    if of_stage(undo.checks, STAGE):
        hold_traffic(u, hotfix_hash, helper_hash, "point the preview Service at the previous version for its checks")
        started = u.undo.times.previous_available
        assert started is not None
        if not wait_for_preview(u, helper_hash, "previous version", started):
            return
        result = run_checks(u, STAGE, started)
        if result.failed is not None:
            give_up(u, Reason.CHECK_FAILED, f"{failure_line(result.failed)}; traffic never left the hotfix")
            return
        if not result.passed:
            u.progress(Reason.CHECKS_RUNNING, f"undo: checks against the previous version ({name}): {result.summary}; "
                       "traffic stays on the hotfix")
            nxt = seconds_to_next(u.undo.checks, STAGE, started, u.now)
            u.wait(min(nxt if nxt is not None else ACTIVE_REQUEUE, ACTIVE_REQUEUE))
            return
    hold_traffic(u, helper_hash, helper_hash, "switch traffic to the previous version")
    u.update_undo(step="Switch")
    u.progress(Reason.ENDPOINTS_UPDATING, f"undo: switching Service {t.service} to the previous version ({name}); "
               f"the {u.spec.rollout.bake_seconds}s bake starts when its EndpointSlices list only its pods")
    u.requeue(0)


def run_checks(u: UndoStep, stage: CheckStage, started: datetime.datetime) -> StageVerdict:
    """Fold this reconcile's measurements into the undo's copies of `stage`'s checks (none: passed)."""
    if not of_stage(u.undo.checks, stage):
        return verdict((), stage)
    states = record(u.undo.checks, u.obs.measurements, started)
    u.update_undo(checks=states)
    result = verdict(states, stage)
    which = stage.value
    if result.failed is not None:
        u.set_condition(ConditionType.UNDO_CHECKS, "False", Reason.CHECK_FAILED,
                        f"{which} {failure_line(result.failed)}")
    elif result.passed:
        u.set_condition(ConditionType.UNDO_CHECKS, "True", Reason.CHECKS_PASSED,
                        f"{len(of_stage(states, stage))} {which} checks passed against the previous version")
    else:
        u.set_condition(ConditionType.UNDO_CHECKS, "Unknown", Reason.CHECKS_RUNNING, f"{which}: {result.summary}")
    return result


def switched(u: UndoStep) -> None:
    helper, t, helper_hash = u.obs.green, u.spec.target, u.bg.green_hash
    assert helper_hash is not None
    if u.obs.service is None:
        give_up(u, Reason.TARGET_DISAPPEARED, f"Service {t.service} was deleted")
        return
    hold_traffic(u, helper_hash, helper_hash, "keep traffic on the previous version")
    if helper is None or helper.available_replicas < helper.replicas:
        have = f"{helper.available_replicas}/{helper.replicas} available" if helper else "deleted"
        give_up(u, Reason.GREEN_UNAVAILABLE, f"the previous version ({u.bg.green_deployment}) became unavailable "
                f"({have}); moving traffic back to the hotfix, which was kept warm")
        return
    at = switch(u, helper_hash, "previous-version")
    if at is None:
        return
    u.stamp_undo(switched=at)
    switched_at = u.undo.times.switched
    assert switched_at is not None
    result = run_checks(u, BAKE_STAGE, switched_at)
    if result.failed is not None:
        give_up(u, Reason.CHECK_FAILED, f"post-promotion {failure_line(result.failed)} against the previous version "
                "during the undo's bake; moving traffic back to the hotfix, which was kept warm")
        return
    bake_end = switched_at + datetime.timedelta(seconds=u.spec.rollout.bake_seconds)
    if u.now < bake_end or not result.passed:
        checks = f"; post-promotion checks {result.summary}" if not result.passed else ""
        u.progress(Reason.ENDPOINTS_ON_GREEN, f"undo: traffic is on the previous version; baking until "
                   f"{bake_end:%H:%M:%S}Z with the hotfix kept warm{checks}")
        nxt = seconds_to_next(u.undo.checks, BAKE_STAGE, switched_at, u.now)
        later = max((bake_end - u.now).total_seconds(), 0.0) or ACTIVE_REQUEUE
        u.wait(min(later, ACTIVE_REQUEUE, nxt if nxt is not None else ACTIVE_REQUEUE))
        return
    u.update_undo(step="Fold")
    u.stamp_undo(fold_started=u.now)
    u.add_audit("UndoBakePassed", f"bake on the previous version passed; rolling Deployment {t.deployment} back to "
                f"{short(u.undo.previous_image)}")
    u.requeue(0)


def fold(u: UndoStep) -> None:
    """Roll the Deployment back to the previous image while the helper serves, then move traffic to it and
    remove the helper. (spec.abort is not acted on from here: the Deployment already rolls back.)"""
    blue, t, undo = u.obs.blue, u.spec.target, u.undo
    helper_hash, image = u.bg.green_hash, undo.previous_image
    assert helper_hash is not None and image is not None
    if blue is None or u.obs.service is None:
        failed(u, Reason.TARGET_DISAPPEARED, f"Deployment {t.deployment} or Service {t.service} was deleted while "
               f"folding the undo; the previous version ({u.bg.green_deployment}) is left running")
        return
    side = f"Deployment {t.deployment}'s"
    if u.bg.folded_hash is None:
        hold_traffic(u, helper_hash, helper_hash, "keep traffic on the previous version")
        if not serving_from(u, helper_hash):
            report_unconfirmed(u, helper_hash, "previous-version")
            return
        if blue.container_image(t.container) != image:
            u.act(SetContainerImage(t.deployment, t.container, image))
            u.progress(Reason.PROGRESSING, f"undo: rolling Deployment {t.deployment} back to {short(image)}; traffic "
                       "stays on the previous version's helper")
            u.wait()
            return
        if not (blue.rolled_out and blue.current_hash):
            started = undo.times.fold_started or u.now
            if (u.now - started).total_seconds() > u.spec.rollout.progress_deadline_seconds:
                failed(u, Reason.FOLD_TIMED_OUT, f"Deployment {t.deployment} did not finish rolling back to "
                       f"{image} ({blue.available_replicas}/{blue.replicas} available); traffic stays on "
                       f"{u.bg.green_deployment}, which runs it — fix the Deployment, then move Service {t.service}'s "
                       f"selector back to {u.bg.original_selector} and delete {u.bg.green_deployment}")
                return
            u.progress(Reason.PROGRESSING, f"undo: waiting for Deployment {t.deployment} to finish rolling back "
                       f"({blue.updated_replicas}/{blue.replicas} updated)")
            u.wait_until(started, u.spec.rollout.progress_deadline_seconds, rollout_only=True)
            return
        u.update_bg(folded_hash=blue.current_hash)
    folded = u.bg.folded_hash
    assert folded is not None
    if u.obs.green is not None:
        # the preview goes back to its original selector while the helper still runs (traffic.green_gone_from_preview)
        hold_traffic(u, folded, None, "move traffic to the Deployment, back on the previous version")
        at = switch(u, folded, side)
        if at is None:
            return
        u.stamp_undo(folded=at)
        remove_at = at + datetime.timedelta(seconds=u.spec.rollout.scale_down_delay_seconds)
        if u.now < remove_at:
            u.progress(Reason.FOLDED, f"undo: traffic is on Deployment {t.deployment}; removing "
                       f"{u.bg.green_deployment} at {remove_at:%H:%M:%S}Z")
            u.wait(min((remove_at - u.now).total_seconds(), ACTIVE_REQUEUE))
            return
    if tear_down_green(u, folded, side):
        return
    u.update_undo(step="Done")
    done(u)


def done(u: UndoStep) -> None:
    undo, t = u.undo, u.spec.target
    u.stamp_undo(completed=u.now)
    message = (f"undone for {undo.by} ({undo.reason}): Deployment {t.deployment} runs {short(undo.previous_image)} "
               f"again and Service {t.service} has its original selector; tag {u.spec.tag} stays")
    u.set_condition(ConditionType.UNDONE, "True", Reason.UNDONE, message)
    u.enter(Phase.UNDONE, message, reason=Reason.UNDONE)


def give_up(u: UndoStep, reason: str, message: str, actor: str = OPERATOR) -> None:
    """Stop the undo: traffic goes back to (or stays on) the hotfix and the helper is removed."""
    u.update_undo(step="Return", failure=message)
    u.stamp_undo(gave_up=u.now)
    line = f"undo requested by {u.undo.by} gave up: {message}; the hotfix keeps serving"
    u.set_condition(ConditionType.UNDONE, "False", reason, line)
    u.post_event("Warning", reason, line, actor)
    u.add_audit(Reason.UNDO_FAILED, line, actor)
    u.say(line)
    u.requeue(0)


def returning(u: UndoStep) -> None:
    hotfix_hash = u.bg.blue_hash
    assert hotfix_hash is not None
    if (owns_green(u) or green_pods_left(u)) and u.obs.service is not None:
        hold_traffic(u, hotfix_hash, None, "move traffic back to the hotfix")
        if switch(u, hotfix_hash, "hotfix") is None:
            return
    if tear_down_green(u, hotfix_hash, "hotfix"):
        return
    u.stamp_undo(completed=u.now)
    line = f"undo gave up: {u.undo.failure}; the hotfix {u.spec.tag} serves, the previous version's helper is removed"
    u.set_condition(ConditionType.UNDONE, "False", Reason.UNDO_FAILED, line)
    u.enter(Phase.UNDO_FAILED, line, reason=Reason.UNDO_FAILED, warning=True)


def failed(u: UndoStep, reason: str, message: str) -> None:
    u.update_undo(failure=message)
    u.set_condition(ConditionType.UNDONE, "False", reason, message)
    u.enter(Phase.UNDO_FAILED, message, reason=reason, warning=True)

__all__ = ["UndoStep", "checks_due", "observed_green", "preview_side", "run_state", "short", "succeeded", "undo_name",
           "undoing", "window_ends"]
