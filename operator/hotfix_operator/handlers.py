"""Kopf wiring, kept thin: one daemon per HotfixRelease drives reconciles; changes to the object
wake it at once; deleting a release mid-cutover first puts production back the way it was."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, ClassVar

import kopf

from hotfix_operator import API_GROUP, API_VERSION
from hotfix_operator.controller import Controller
from hotfix_operator.core.lifecycle import holds_production
from hotfix_operator.core.model import Status

log = logging.getLogger(__name__)
RESOURCE = (API_GROUP, API_VERSION, "hotfixreleases")
IDLE_RECHECK_SECONDS = 30.0
DELETE_CLEANUP_SECONDS = 120.0


class Runtime:
    """What the handlers share; set once by the process that starts the operator."""

    controller: Controller | None = None
    pokes: ClassVar[dict[str, asyncio.Event]] = {}


def controller() -> Controller:
    if Runtime.controller is None:
        raise RuntimeError("the operator's controller was not configured before Kopf started")
    return Runtime.controller


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Kopf's own bookkeeping goes to annotations, so status belongs to the lifecycle alone.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="hotfix.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="hotfix.dev")
    settings.persistence.finalizer = "hotfix.dev/cleanup"
    settings.posting.enabled = False  # the lifecycle posts its own Events, naming the actor
    settings.watching.server_timeout = 120


@kopf.on.event(*RESOURCE)
def wake(uid: str, **_: Any) -> None:
    event = Runtime.pokes.get(uid)
    if event is not None:
        event.set()


@kopf.daemon(*RESOURCE, cancellation_timeout=5.0)  # type: ignore[arg-type]
async def drive(stopped: kopf.DaemonStopped, name: str, namespace: str, uid: str, **_: Any) -> None:
    poke = Runtime.pokes.setdefault(uid, asyncio.Event())
    failures = 0
    try:
        while not stopped:
            poke.clear()
            try:
                outcome = await asyncio.to_thread(controller().reconcile_once, namespace, name)
            except Exception:
                failures += 1
                controller().metrics.reconcile_errors.inc()
                delay = min(30.0, 0.5 * 2**failures)
                log.exception("%s/%s: reconcile failed (attempt %d); retrying in %.1fs", namespace, name, failures,
                              delay)
            else:
                failures = 0
                if outcome.done:
                    return
                delay = IDLE_RECHECK_SECONDS if outcome.requeue_after is None else outcome.requeue_after
            deadline = time.monotonic() + delay
            while not stopped and not poke.is_set() and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(poke.wait(), timeout=min(1.0, max(0.0, deadline - time.monotonic())))
    finally:
        Runtime.pokes.pop(uid, None)


@kopf.on.delete(*RESOURCE)  # type: ignore[arg-type]
async def put_production_back(name: str, namespace: str, status: dict[str, Any], **_: Any) -> None:
    if not holds_production(Status.model_validate(status or {})):
        return
    log.warning("%s/%s deleted mid-cutover: rolling back before letting it go", namespace, name)
    deadline = time.monotonic() + DELETE_CLEANUP_SECONDS
    while time.monotonic() < deadline:
        outcome = await asyncio.to_thread(controller().reconcile_once, namespace, name, force_abort=True)
        if outcome.phase is None or not holds_production(Status(phase=outcome.phase)):
            return
        await asyncio.sleep(outcome.requeue_after or 1.0)
    raise kopf.TemporaryError("production not yet restored; will retry before removing the finalizer", delay=10)
