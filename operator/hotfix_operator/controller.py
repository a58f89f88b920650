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
from hotfix_operator.gate import ProvenanceGate, RegistryFactory
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


class Controller:
    def __init__(self, kube: KubeAdapter, registry: RegistryFactory, gate: ProvenanceGate, metrics: Metrics,
                 clock: Callable[[], datetime.datetime] = utcnow) -> None:
        self.kube = kube
        self.registry = registry
        self.gate = gate
        self.metrics = metrics
        self.clock = clock

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
        return Outcome(phase, decision.requeue_after, done=finished)

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
            with self.registry(credentials) as registry:
                registry.get_manifest(reference)
        except RegistryError as exc:
            return ImageCheck(ok=False, transient=exc.transient, reason=exc.reason, message=str(exc))
        return ImageCheck(ok=True)
