"""The phases that hold production: Deploying (pin blue, bring green up), PrePromotion (green's checks
through the preview Service, traffic on blue), Promoted (traffic on green, post-promotion checks while
baking, blue warm), Finalizing (fold the hotfix into the original Deployment, restore its shape) and
RollingBack. Each re-asserts the state it needs from what it observes, so a crash between any two
steps is repaired by the next reconcile; traffic moves and is confirmed through core.traffic. Pure."""

from __future__ import annotations

import datetime

from hotfix_operator.api import POD_TEMPLATE_HASH, CheckStage, ConditionType, Phase, Reason
from hotfix_operator.core.actions import CreateDeployment, SetContainerImage
from hotfix_operator.core.checks import StageVerdict, failure_line, of_stage, record, seconds_to_next, verdict
from hotfix_operator.core.manifests import green_deployment, green_name
from hotfix_operator.core.observations import DeploymentView
from hotfix_operator.core.step import ACTIVE_REQUEUE, Step
from hotfix_operator.core.traffic import (
    ensure_selector,
    green_pods_left,
    hold_traffic,
    owns_green,
    report_unconfirmed,
    serving_from,
    switch,
    tear_down_green,
    wait_for_preview,
)


def deploying(s: Step) -> None:
    blue, service, t = s.obs.blue, s.obs.service, s.spec.target
    if blue is None or service is None:
        s.roll_back(Reason.TARGET_DISAPPEARED, f"Deployment {t.deployment} or Service {t.service} was deleted "
                    "during the cutover")
        return
    if s.bg.blue_hash is None:
        if not blue.rolled_out:
            check_deadline(s, s.status.timestamps.approved, Reason.TARGET_NOT_STABLE,
                           f"Deployment {t.deployment} is itself still rolling out ({blue.updated_replicas}/"
                           f"{blue.replicas} updated, {blue.available_replicas} available); waiting for it before "
                           "pinning blue")
            return
        pin_blue(s, blue)
    assert s.bg.original_selector is not None and s.bg.blue_hash is not None
    hold_traffic(s, s.bg.blue_hash, None, "pin the active Service to blue before green starts")
    green = s.obs.green
    if green is None:
        name = s.bg.green_deployment or green_name(s.release)
        manifest = green_deployment(s.release, blue, name, s.status.incident_id or "")
        s.act(CreateDeployment(manifest))
        s.stamp(green_created=s.now)
        # Said from the start as the wait for green says it: until green is available only its replica count
        # changes, a progress line the shell may hold back for a moment, and none at all while it stays 0
        say_waiting_for_green(s, name, f"0/{manifest['spec']['replicas']} replicas available")
        s.wait()
        return
    if not owns_green(s):
        s.roll_back(Reason.GREEN_NAME_CONFLICT, f"Deployment {green.name} exists and was not created by this "
                    "HotfixRelease; refusing to touch it")
        return
    if green.rolled_out and green.current_hash:
        green_ready(s, green.current_hash, green.available_replicas)
        return
    detail = f"{green.available_replicas}/{green.replicas} replicas available"
    if green.stuck_reason:
        detail += f": {green.stuck_reason}"
    check_deadline(s, s.status.timestamps.green_created, Reason.PROGRESS_DEADLINE_EXCEEDED,
                   f"green {green.name} was not available in time ({detail})",
                   waiting=say_waiting_for_green(s, green.name, detail))


def say_waiting_for_green(s: Step, name: str, detail: str) -> str:
    """Green is not available yet: its condition and the status message say so, with `detail`."""
    s.set_condition(ConditionType.GREEN_AVAILABLE, "False", Reason.PROGRESSING, f"green {name}: {detail}")
    s.say(waiting := f"waiting for green {name} ({detail})")
    return waiting


def pin_blue(s: Step, blue: DeploymentView) -> None:
    """Record what the cutover needs to finish or undo it after a restart, before anything changes."""
    t, service, preview = s.spec.target, s.obs.service, s.obs.preview_service
    assert service is not None
    s.update_bg(blue_hash=blue.current_hash, blue_image=blue.container_image(t.container), blue_revision=blue.revision,
                original_selector=dict(service.selector), green_deployment=green_name(s.release),
                preview_original_selector=dict(preview.selector) if preview else None,
                # pinning keeps the very same pods behind the Service: blue serves, as it did
                active_hash=blue.current_hash, serving_hash=blue.current_hash, serving_since=s.now)
    s.add_audit("PinnedBlue", f"Service {t.service} pinned to blue {POD_TEMPLATE_HASH}={blue.current_hash}")


def check_deadline(s: Step, since: datetime.datetime | None, reason: Reason, message: str, *,
                   waiting: str | None = None) -> None:
    """Roll back with `message` once the progress deadline since `since` is past; until then say `waiting`
    (or `message`, when it reads as a wait) and look again: on a Deployment's rollout, which its status
    reports."""
    limit = s.spec.rollout.progress_deadline_seconds
    if since is not None and (s.now - since).total_seconds() > limit:
        s.roll_back(reason, f"{message} after {limit}s")
        return
    s.say(waiting or message)
    s.wait_until(since, limit, rollout_only=True)


def green_ready(s: Step, green_hash: str, available: int) -> None:
    """Green is available: its pre-promotion checks run through the preview Service first, if it has any."""
    s.update_bg(green_hash=green_hash)
    s.stamp(green_available=s.now)
    s.set_condition(ConditionType.GREEN_AVAILABLE, "True", Reason.AVAILABLE, f"green {s.bg.green_deployment}: "
                    f"{available} replicas available ({POD_TEMPLATE_HASH}={green_hash})")
    pre = of_stage(s.status.checks, CheckStage.PRE_PROMOTION)
    if not pre:
        promote(s, green_hash)
        return
    assert s.bg.blue_hash is not None
    # The preview Service carries no production traffic, so pointing it at green goes ahead of the status
    # write, and the first checks follow at once (controller.begin_checks); a crash before the write leaves a
    # preview Service that Deploying points back.
    hold_traffic(s, s.bg.blue_hash, green_hash, "point the preview Service at green for the pre-promotion checks",
                 preview_ahead=True)
    s.enter(Phase.PRE_PROMOTION, f"green {s.bg.green_deployment} is available; running {len(pre)} pre-promotion "
            f"checks ({', '.join(c.name for c in pre)}); traffic stays on blue until they pass")


def pre_promotion(s: Step) -> None:
    t = s.spec.target
    blue_hash, green_hash, started = s.bg.blue_hash, s.bg.green_hash, s.status.timestamps.green_available
    if s.obs.service is None or blue_hash is None or green_hash is None or started is None:
        s.roll_back(Reason.TARGET_DISAPPEARED, f"Service {t.service} was deleted before the switch")
        return
    hold_traffic(s, blue_hash, green_hash, "keep traffic on blue while the pre-promotion checks run")
    if green_lost(s, "its pre-promotion checks") or not wait_for_preview(s, green_hash, "green", started):
        return
    result = run_stage(s, CheckStage.PRE_PROMOTION, started)
    if result.failed is not None:
        s.roll_back(Reason.CHECK_FAILED, f"pre-promotion {failure_line(result.failed)}; traffic never left blue")
        return
    if result.passed:
        promote(s, green_hash)
        return
    s.say(f"pre-promotion checks against green {s.bg.green_deployment}: {result.summary}; traffic stays on blue")
    s.wait(min(seconds_to_next(s.status.checks, CheckStage.PRE_PROMOTION, started, s.now) or ACTIVE_REQUEUE,
               ACTIVE_REQUEUE))


def green_lost(s: Step, during: str) -> bool:
    """Roll back when green is gone or short of replicas while it is being judged; True if it was."""
    green = s.obs.green
    if green is not None and green.available_replicas >= green.replicas:
        return False
    have = f"{green.available_replicas}/{green.replicas} available" if green else "deleted"
    s.roll_back(Reason.GREEN_UNAVAILABLE, f"green {s.bg.green_deployment} became unavailable during {during} ({have})")
    return True


def run_stage(s: Step, stage: CheckStage, started: datetime.datetime) -> StageVerdict:
    """Fold this reconcile's measurements into status and say, in the stage's condition, where it stands."""
    states = record(s.status.checks, s.obs.measurements, started)
    s.update(checks=states)
    result = verdict(states, stage)
    if not of_stage(states, stage):
        return result
    kind = ConditionType.PRE_PROMOTION_CHECKS if stage == CheckStage.PRE_PROMOTION else \
        ConditionType.POST_PROMOTION_CHECKS
    if result.failed is not None:
        s.set_condition(kind, "False", Reason.CHECK_FAILED, failure_line(result.failed))
    elif result.passed:
        s.set_condition(kind, "True", Reason.CHECKS_PASSED, f"{len(of_stage(states, stage))} checks passed")
    else:
        s.set_condition(kind, "Unknown", Reason.CHECKS_RUNNING, result.summary)
    return result


def promote(s: Step, green_hash: str) -> None:
    if s.spec.drill:  # where a hotfix moves traffic, a drill stops
        checks = of_stage(s.status.checks, CheckStage.PRE_PROMOTION)
        s.end_drill(True, Reason.DRILL_PASSED, f"green {s.bg.green_deployment} came up"
                    + (f" and passed {len(checks)} pre-promotion checks" if checks else " (no pre-promotion checks)"))
        return
    # The switch goes out ahead of the status write that records it: it is the one step whose speed users
    # compare with Argo Rollouts', and blue is warm if it must be moved back (core.actions).
    hold_traffic(s, green_hash, green_hash, "switch traffic to green", switch_ahead=True)
    s.enter(Phase.PROMOTED, f"switching traffic to green {s.bg.green_deployment}; the "
            f"{s.spec.rollout.bake_seconds}s bake starts when the Service's EndpointSlices list only green pods, "
            "with blue kept warm")


def promoted(s: Step) -> None:
    t = s.spec.target
    original, green_hash = s.bg.original_selector, s.bg.green_hash
    if s.obs.service is None or original is None or green_hash is None:
        s.roll_back(Reason.TARGET_DISAPPEARED, f"Service {t.service} was deleted after the switch")
        return
    hold_traffic(s, green_hash, green_hash, "keep traffic on green")
    if green_lost(s, "the bake"):
        return
    switched = switch(s, green_hash, "green")
    if switched is None:
        return
    s.stamp(promoted=switched)
    s.set_condition(ConditionType.TRAFFIC_SWITCHED, "True", Reason.ENDPOINTS_ON_GREEN,
                    f"Service {t.service}'s EndpointSlices list only green pods ({len(s.obs.endpoint_ips)})")
    result = run_stage(s, CheckStage.POST_PROMOTION, switched)
    if result.failed is not None:
        s.roll_back(Reason.CHECK_FAILED, f"post-promotion {failure_line(result.failed)}; moving traffic back to "
                    "blue, which was kept warm")
        return
    bake_end = switched + datetime.timedelta(seconds=s.spec.rollout.bake_seconds)
    if s.now < bake_end or not result.passed:
        checks = f"; post-promotion checks {result.summary}" if not result.passed else ""
        s.say(f"baking on green until {bake_end:%H:%M:%S}Z{checks}; blue is kept warm for instant rollback")
        later = max((bake_end - s.now).total_seconds(), 0.0) or ACTIVE_REQUEUE
        nxt = seconds_to_next(s.status.checks, CheckStage.POST_PROMOTION, switched, s.now)
        s.wait(min(later, ACTIVE_REQUEUE, nxt if nxt is not None else ACTIVE_REQUEUE))
        return
    s.stamp(fold_started=s.now)
    s.enter(Phase.FINALIZING, f"bake passed; folding {s.spec.artifact.image.split('@')[1][:19]}… into "
            f"Deployment {t.deployment}")


def finalizing(s: Step) -> None:
    blue, t = s.obs.blue, s.spec.target
    if blue is None or s.obs.service is None:
        s.fail(Reason.TARGET_DISAPPEARED, f"Deployment {t.deployment} or Service {t.service} was deleted while "
               "folding; traffic was on green, which is left running")
        return
    if s.bg.folded_hash is None and not fold(s, blue):
        return
    folded = s.bg.folded_hash
    assert folded is not None
    side = f"Deployment {t.deployment}'s"
    if s.obs.green is not None:
        # the preview goes back to its original selector while green still runs: see traffic.green_gone_from_preview
        hold_traffic(s, folded, None, "move traffic to the folded Deployment")
        switched = switch(s, folded, side)
        if switched is None:
            return
        s.stamp(folded=switched)
        remove_at = switched + datetime.timedelta(seconds=s.spec.rollout.scale_down_delay_seconds)
        if s.now < remove_at:
            s.say(f"traffic is on Deployment {t.deployment}; removing green at {remove_at:%H:%M:%S}Z")
            s.wait(min((remove_at - s.now).total_seconds(), ACTIVE_REQUEUE))
            return
    if tear_down_green(s, folded, side):
        return
    s.stamp(completed=s.now)
    s.set_condition(ConditionType.TRAFFIC_SWITCHED, "True", Reason.FOLDED, f"Deployment {t.deployment} runs "
                    f"{s.spec.artifact.image.split('@')[1][:19]}… and Service {t.service} has its original selector "
                    "again")
    s.enter(Phase.SUCCEEDED, f"hotfix {s.spec.tag} is live in Deployment {t.deployment}; the cluster is back in its "
            "original shape", reason=Reason.SUCCEEDED)


def fold(s: Step, blue: DeploymentView) -> bool:
    """Roll the original Deployment to the hotfix image while green serves; True once it runs it."""
    t, green_hash, original = s.spec.target, s.bg.green_hash, s.bg.original_selector
    assert green_hash is not None and original is not None
    hold_traffic(s, green_hash, green_hash, "keep traffic on green")
    if not serving_from(s, green_hash):
        # rolling the Deployment replaces blue's pods: only while green is seen serving
        report_unconfirmed(s, green_hash, "green")
        return False
    if blue.container_image(t.container) != s.spec.artifact.image:
        s.act(SetContainerImage(t.deployment, t.container, s.spec.artifact.image, ahead_of_status=True))
        # said as the wait below says it, so that only a changed replica count makes it a new progress line
        s.say(rolling_out_fold(t.deployment, 0, blue.replicas))
        s.wait()
        return False
    # Its template now names the hotfix image (checked above), so once its controller has caught up and
    # every replica is updated and available, the current ReplicaSet runs the hotfix. (When blue already
    # ran this very image, that is blue's own ReplicaSet, and nothing needs to roll.)
    if not (blue.rolled_out and blue.current_hash):
        started = s.status.timestamps.fold_started or s.now
        if (s.now - started).total_seconds() > s.spec.rollout.progress_deadline_seconds:
            s.fail(Reason.FOLD_TIMED_OUT, f"Deployment {t.deployment} did not finish rolling out the hotfix image "
                   f"({blue.available_replicas}/{blue.replicas} available"
                   f"{': ' + blue.stuck_reason if blue.stuck_reason else ''}); traffic stays on green "
                   f"{s.bg.green_deployment}, which runs the hotfix — fix the Deployment, then move Service "
                   f"{t.service}'s selector back to {original} and delete the green Deployment")
            return False
        s.say(rolling_out_fold(t.deployment, blue.updated_to_current, blue.replicas))
        s.wait_until(started, s.spec.rollout.progress_deadline_seconds, rollout_only=True)
        return False
    s.update_bg(folded_hash=blue.current_hash)
    return True


def rolling_out_fold(deployment: str, updated: int, replicas: int) -> str:
    return (f"waiting for Deployment {deployment} to finish rolling out the hotfix image ({updated}/{replicas} "
            "updated); traffic stays on green")


def account_for_unrecorded_fold(s: Step) -> None:
    """The fold's image goes out ahead of the status write that records it (Finalizing, fold begun). If that
    write never landed, status still says Promoted while the Deployment names the hotfix image: record the fold
    as begun, before an abort or a failed check is decided on, so that a rollback from here rolls the
    Deployment back (unfold) before blue's pods are served again. Someone else's edit of the image is counted
    the same way: a rollback puts blue's image back either way."""
    blue, t = s.obs.blue, s.spec.target
    if s.status.phase != Phase.PROMOTED or s.status.timestamps.fold_started is not None or blue is None:
        return
    image = blue.container_image(t.container)
    if image != s.spec.artifact.image or image == s.bg.blue_image:
        return
    s.stamp(fold_started=s.now)
    line = (f"Deployment {t.deployment} found on the hotfix image, which status does not record (the fold written "
            "just before the operator stopped, or someone else's edit); counted as the fold begun")
    s.add_audit(Reason.FOLD_UNRECORDED, line)
    s.post_event("Warning", Reason.FOLD_UNRECORDED, line)


def rolling_back(s: Step) -> None:
    original, blue_hash = s.bg.original_selector, s.bg.blue_hash
    if original is not None and blue_hash is not None:
        if s.status.timestamps.fold_started is not None and s.obs.blue is not None and unfold(s, s.obs.blue):
            return
        blue_hash = s.bg.blue_hash
        assert blue_hash is not None
        if (owns_green(s) or green_pods_left(s)) and s.obs.service is not None:
            hold_traffic(s, blue_hash, None, "move traffic back to blue")
            restored = switch(s, blue_hash, "blue")
            if restored is None:
                return
            s.stamp(blue_restored=restored)
        if tear_down_green(s, blue_hash, "blue"):
            return
        s.stamp(blue_restored=s.now)
    started = s.status.condition(ConditionType.ROLLED_BACK)
    cause = started.message.removeprefix("rolling back: ") if started else s.status.message
    s.stamp(completed=s.now)
    s.set_condition(ConditionType.ROLLED_BACK, "True", Reason.ROLLED_BACK,
                    f"blue serves all traffic again; green removed ({cause})")
    s.enter(Phase.ROLLED_BACK, f"rolled back: blue serves all traffic; cause: {cause}", reason=Reason.ROLLED_BACK,
            warning=True)


def unfold(s: Step, blue: DeploymentView) -> bool:
    """After the fold began, the Deployment may name the hotfix image: roll it back to blue's while
    traffic is held on pods that serve throughout, and wait until it has. True while under way."""
    t, green_hash = s.spec.target, s.bg.green_hash
    assert s.bg.blue_image is not None and s.bg.original_selector is not None
    reverted = blue.container_image(t.container) == s.bg.blue_image
    if reverted and blue.rolled_out and blue.current_hash:
        if blue.current_hash != s.bg.blue_hash:  # Kubernetes normally revives blue's own ReplicaSet
            s.update_bg(blue_hash=blue.current_hash)
        return False
    if owns_green(s) and green_hash is not None:
        # green runs the hotfix and serves while the Deployment rolls back beneath it
        hold_traffic(s, green_hash, green_hash, "keep traffic on green while the Deployment rolls back")
        if switch(s, green_hash, "green") is None:
            return True
    elif s.obs.service is not None and dict(s.obs.service.selector) != s.bg.original_selector:
        # green is gone: let the Service follow the Deployment's own rolling update, old and new pods alike
        ensure_selector(s, t.service, s.bg.original_selector, "follow the Deployment while it rolls back")
        s.wait()
        return True
    if not reverted:
        s.act(SetContainerImage(t.deployment, t.container, s.bg.blue_image))
        s.say(f"rolling Deployment {t.deployment} back to blue's image {s.bg.blue_image}")
    else:
        s.say(f"waiting for Deployment {t.deployment} to finish rolling back ({blue.updated_replicas}/"
              f"{blue.replicas} updated, {blue.available_replicas} available)")
    s.wait()
    return True
