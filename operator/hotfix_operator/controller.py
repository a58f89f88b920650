"""One reconcile of one HotfixRelease: observe, decide (the pure core), write status, act, tell."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass

from hotfix_operator.adapters.kube import KubeAdapter
from hotfix_operator.adapters.policies import PolicyProblem
from hotfix_operator.adapters.registry import ImageReference, RegistryError
from hotfix_operator.core.lifecycle import needs_image_check, needs_provenance_check, reconcile
from hotfix_operator.core.model import Phase, Release, Status
from hotfix_operator.core.observations import ImageCheck
from hotfix_operator.followup import FollowupRunner
from hotfix_operator.gate import ProvenanceGate
from hotfix_operator.metrics import Metrics

log = logging.getLogger(__name__)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Outcome:
    phase: Phase | None
    # seconds until the next reconcile; None = when the object changes
    requeue_after: float | None
    # the release needs no more reconciles (gone, or finished with nothing left to undo)
    done: bool


def _sooner(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


class Controller:
    def __init__(self, kube: KubeAdapter, gate: ProvenanceGate, metrics: Metrics,
                 clock: Callable[[], datetime.datetime] = utcnow, followup: FollowupRunner | None = None) -> None:
        self.kube = kube
        self.gate = gate
        self.metrics = metrics
        self.clock = clock
        # publishing, backport and post-mortem after the bake (None: never, e.g. in unit tests)
        self.followup = followup

    def reconcile_once(self, namespace: str, name: str, *, force_abort: bool = False) -> Outcome:
        body = self.kube.get_release(namespace, name)
        if body is None:
            return Outcome(None, None, done=True)
        release = Release.from_body(body)
        if force_abort:
            release = release.model_copy(update={"spec": release.spec.model_copy(update={"abort": True})})
        status = Status.from_body(body)
        now = self.clock()
        image = self.check_image(release) if needs_image_check(status) else None
        provenance = self.gate.check(release) if needs_provenance_check(status) else None
        observations = self.kube.observe(release, status, now, image, provenance)
        decision = reconcile(release, status, observations)
        if decision.status != status:
            self.kube.write_status(release, decision.status)
        for action in decision.actions:
            log.info("%s/%s: %s", namespace, name, self.kube.execute(release, action))
        for event in decision.events:
            self.kube.post_event(release, event, now)
        self.metrics.record(status, decision.status)
        phase = decision.status.phase
        finished = phase is not None and phase.terminal and not decision.actions and phase != Phase.FAILED
        if phase in (Phase.FINALIZING, Phase.SUCCEEDED) and self.followup is not None:
            return self.follow_up(release, decision.status, decision.requeue_after, finished)
        return Outcome(phase, decision.requeue_after, done=finished)

    def follow_up(self, release: Release, status: Status, requeue_after: float | None, finished: bool) -> Outcome:
        """One follow-up step after the bake; it only adds to status and never changes the phase."""
        assert self.followup is not None
        phase = status.phase
        try:
            github = self.gate.policies.for_namespace(release.namespace).github
        except PolicyProblem as problem:
            # Cannot tell whether (or where) to publish: keep the release in view and look again later.
            log.warning("%s/%s: follow-ups wait for the HotfixPolicy: %s", release.namespace, release.name, problem)
            return Outcome(phase, _sooner(requeue_after, self.followup.settings.check_seconds), done=False)
        if github is None:
            return Outcome(phase, requeue_after, done=finished)
        now = self.clock()
        result = self.followup.run(release, status, github, now)
        if result.status != status:
            self.kube.write_status(release, result.status)
        for event in result.events:
            self.kube.post_event(release, event, now)
        self.metrics.record_followup(result)
        if result.step is not None:
            log.info("%s/%s: follow-up %s: %s", release.namespace, release.name, result.step,
                     "failed" if result.failure else "done")
        return Outcome(phase, _sooner(requeue_after, result.requeue_after), done=finished and result.done)

    def check_image(self, release: Release) -> ImageCheck:
        image = release.spec.artifact.image
        try:
            credentials = self.gate.policies.for_namespace(release.namespace).registry_credentials
        except PolicyProblem:
            credentials = None  # the provenance gate reports policy problems, with their reasons
        try:
            reference = ImageReference.parse(image)
        except ValueError as exc:
            return ImageCheck(ok=False, reason="InvalidImageReference", message=str(exc))
        if reference.digest is None:
            return ImageCheck(ok=False, reason="NotDigestPinned", message=f"image {image} is not pinned by digest")
        try:
            with self.gate.registry(credentials) as registry:
                registry.get_manifest(reference)
        except RegistryError as exc:
            return ImageCheck(ok=False, transient=exc.transient, reason=exc.reason, message=str(exc))
        return ImageCheck(ok=True)
