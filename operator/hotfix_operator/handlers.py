"""Every Kopf registration, kept thin: credentials from the loaded kubeconfig; one daemon per
HotfixRelease drives reconciles; changes to the object, and to the Deployments and EndpointSlices
its cutover waits on, wake it at once; deleting a release mid-cutover first puts production back
the way it was.

The handlers share the Controller and the per-release wake-up events through Kopf's `memo`
(`shared_memo()` builds it; `hotfix-operator run` passes it to kopf.operator), not module globals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
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


# (namespace, kind, name) -> uids of the releases a change to that object should wake
Interest = dict[tuple[str, str, str], set[str]]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def shared_memo(controller: Controller) -> kopf.Memo:
    """What every handler shares. Kopf gives each object a shallow copy, so the dicts are shared too."""
    return kopf.Memo(controller=controller, pokes={}, interest={})


def _controller(memo: kopf.Memo) -> Controller:
    return cast(Controller, memo.controller)


def _pokes(memo: kopf.Memo) -> dict[str, asyncio.Event]:
    return cast(dict[str, asyncio.Event], memo.pokes)


def _interest(memo: kopf.Memo) -> Interest:
    return cast(Interest, memo.interest)


def _wake_interested(memo: kopf.Memo, key: tuple[str, str, str]) -> None:
    for uid in _interest(memo).get(key, ()):
        event = _pokes(memo).get(uid)
        if event is not None:
            event.set()


def _register(memo: kopf.Memo, uid: str, namespace: str, watches: tuple[tuple[str, str], ...]) -> None:
    """What this release waits on now: exactly `watches` (a previous registration is replaced)."""
    interest, wanted = _interest(memo), {(namespace, kind, name) for kind, name in watches}
    for key in [k for k, uids in interest.items() if uid in uids and k not in wanted]:
        interest[key].discard(uid)
        if not interest[key]:
            del interest[key]
    for key in wanted:
        interest.setdefault(key, set()).add(uid)

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


@kopf.on.event("apps", "v1", "deployments")
def deployment_changed(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    # green becoming available, the folded Deployment rolling out: no need to wait for the next poll
    _wake_interested(memo, (namespace or "", "Deployment", name))


@kopf.on.event("discovery.k8s.io", "v1", "endpointslices")
def endpoints_changed(namespace: str | None, labels: Mapping[str, str], memo: kopf.Memo, **_: Any) -> None:
    # a switch is confirmed when the active Service's EndpointSlices list only the new side's pods
    service = labels.get(SERVICE_NAME_LABEL)
    if service:
        _wake_interested(memo, (namespace or "", "Service", service))


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
                _register(memo, uid, namespace, outcome.watches)
                if outcome.done:
                    return
                delay = IDLE_RECHECK_SECONDS if outcome.requeue_after is None else outcome.requeue_after
            deadline = time.monotonic() + delay
            while not stopped and not poke.is_set() and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(poke.wait(), timeout=min(1.0, max(0.0, deadline - time.monotonic())))
    finally:
        pokes.pop(uid, None)
        _register(memo, uid, namespace, ())


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
