"""Every Kopf registration, kept thin: credentials from the loaded kubeconfig; one daemon per
HotfixRelease drives reconciles; changes to the object wake it at once; deleting a release
mid-cutover first puts production back the way it was.

The handlers share the Controller and the per-release wake-up events through Kopf's `memo`
(`shared_memo()` builds it; `hotfix-operator run` passes it to kopf.operator), not module globals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, cast

import kopf
from kubernetes import client

from hotfix_operator.api import API_GROUP, API_VERSION, FINALIZER, KOPF_PREFIX, PLURAL
from hotfix_operator.controller import Controller
from hotfix_operator.core.lifecycle import holds_production
from hotfix_operator.core.model import Status

log = logging.getLogger(__name__)
RESOURCE = (API_GROUP, API_VERSION, PLURAL)
IDLE_RECHECK_SECONDS = 30.0
DELETE_CLEANUP_SECONDS = 120.0


def shared_memo(controller: Controller) -> kopf.Memo:
    """What every handler shares. Kopf gives each object a shallow copy, so the dict is shared too."""
    return kopf.Memo(controller=controller, pokes={})


def _controller(memo: kopf.Memo) -> Controller:
    return cast(Controller, memo.controller)


def _pokes(memo: kopf.Memo) -> dict[str, asyncio.Event]:
    return cast(dict[str, asyncio.Event], memo.pokes)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Kopf's own bookkeeping goes to annotations, so status belongs to the lifecycle alone.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=KOPF_PREFIX)
    settings.persistence.finalizer = FINALIZER
    settings.posting.enabled = False  # the lifecycle posts its own Events, naming the actor
    settings.watching.server_timeout = 120


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    # The credentials the kubernetes client loaded from --kubeconfig (or in-cluster); Kopf's own helper
    # would reload them from a default path instead.
    conf = client.Configuration.get_default_copy()
    header = conf.get_api_key_with_prefix("BearerToken") or conf.get_api_key_with_prefix("authorization")
    scheme, _sep, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=conf.host, ca_path=conf.ssl_ca_cert, insecure=not conf.verify_ssl,
        scheme=scheme or None, token=token or None,
        certificate_path=conf.cert_file, private_key_path=conf.key_file,
    )


@kopf.on.event(*RESOURCE)
def wake(uid: str, memo: kopf.Memo, **_: Any) -> None:
    event = _pokes(memo).get(uid)
    if event is not None:
        event.set()


@kopf.daemon(*RESOURCE, cancellation_timeout=5.0)  # type: ignore[arg-type]
async def drive(stopped: kopf.DaemonStopped, name: str, namespace: str, uid: str, memo: kopf.Memo,
                **_: Any) -> None:
    controller, pokes = _controller(memo), _pokes(memo)
    poke = pokes.setdefault(uid, asyncio.Event())
    failures = 0
    try:
        while not stopped:
            poke.clear()
            try:
                outcome = await asyncio.to_thread(controller.reconcile_once, namespace, name)
            except Exception:
                failures += 1
                controller.metrics.reconcile_errors.inc()
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
        pokes.pop(uid, None)


@kopf.on.delete(*RESOURCE)  # type: ignore[arg-type]
async def put_production_back(name: str, namespace: str, status: dict[str, Any], memo: kopf.Memo,
                              **_: Any) -> None:
    if not holds_production(Status.model_validate(status or {})):
        return
    log.warning("%s/%s deleted mid-cutover: rolling back before letting it go", namespace, name)
    controller = _controller(memo)
    deadline = time.monotonic() + DELETE_CLEANUP_SECONDS
    while time.monotonic() < deadline:
        outcome = await asyncio.to_thread(controller.reconcile_once, namespace, name, force_abort=True)
        if outcome.phase is None or not holds_production(Status(phase=outcome.phase)):
            return
        await asyncio.sleep(outcome.requeue_after or 1.0)
    raise kopf.TemporaryError("production not yet restored; will retry before removing the finalizer", delay=10)
