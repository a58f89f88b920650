"""Every Kopf registration, kept thin: credentials from the loaded kubeconfig; one daemon per
HotfixRelease drives reconciles (none for a settled one); the operator's own watches keep what the cutover
decides on (Deployments, ReplicaSets, Services, EndpointSlices, pods: adapters.kind_watch, read through
adapters.watch_cache) and Kopf indexes the HotfixPolicies and namespaces; a change to any of them wakes the
releases that wait on it at once; deleting a release mid-cutover first puts production back the way it was.

Every handler here is `async` (and the watches' callbacks run on the loop too): Kopf runs those on its event
loop, where the wake-up events live, instead of handing each watch event to a thread.

The handlers share the Controller and the per-release wake-up events through Kopf's `memo`
(`shared_memo()` builds it; `hotfix-operator run` passes it to kopf.operator), not module globals.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, cast

import kopf
from kubernetes import client

from hotfix_operator.adapters import kind_watch, watch_cache
from hotfix_operator.api import (
    API_GROUP,
    API_VERSION,
    FINALIZER,
    KOPF_PREFIX,
    LABEL_SETTLED,
    PLURAL,
)
from hotfix_operator.controller import Controller
from hotfix_operator.core.lifecycle import ANY_POD, holds_production
from hotfix_operator.core.model import Status

log = logging.getLogger(__name__)
RESOURCE = (API_GROUP, API_VERSION, PLURAL)
IDLE_RECHECK_SECONDS = 30.0
RECONCILE_THREADS = 16
DELETE_CLEANUP_SECONDS = 120.0


class Interest:
    """Which releases a change to an object wakes: per namespace, (kind, name) -> the releases' uids. Kept
    per namespace so a pod's change, which concerns every release waiting in its namespace, costs a look at
    that namespace only."""

    def __init__(self) -> None:
        self._by_namespace: dict[str, dict[tuple[str, str], set[str]]] = {}

    def register(self, uid: str, namespace: str, watches: Iterable[tuple[str, str]]) -> None:
        """What the release `uid` waits on now: exactly `watches` (a previous registration is replaced)."""
        keys, wanted = self._by_namespace.setdefault(namespace, {}), set(watches)
        for key in [k for k, uids in keys.items() if uid in uids and k not in wanted]:
            keys[key].discard(uid)
            if not keys[key]:
                del keys[key]
        for key in wanted:
            keys.setdefault(key, set()).add(uid)
        if not keys:
            del self._by_namespace[namespace]

    def of(self, namespace: str, kind: str, name: str) -> set[str]:
        return set(self._by_namespace.get(namespace, {}).get((kind, name), ()))


def shared_memo(controller: Controller, namespaces: Iterable[str] = ()) -> kopf.Memo:
    """What every handler shares. Kopf gives each object a shallow copy, so the dicts are shared too."""
    memo = kopf.Memo(controller=controller, pokes={}, interest=Interest(), seen={})
    memo.watches = cutover_watches(memo, namespaces)
    return memo


def _controller(memo: kopf.Memo) -> Controller:
    return cast(Controller, memo.controller)


def _pokes(memo: kopf.Memo) -> dict[str, asyncio.Event]:
    return cast(dict[str, asyncio.Event], memo.pokes)


def _interest(memo: kopf.Memo) -> Interest:
    return cast(Interest, memo.interest)


def _seen(memo: kopf.Memo) -> dict[str, Any]:
    """uid -> what a reconcile last read of that object (handlers.moved)"""
    return cast(dict[str, Any], memo.seen)


def _poke(memo: kopf.Memo, uids: Iterable[str]) -> None:
    for uid in uids:
        event = _pokes(memo).get(uid)
        if event is not None:
            event.set()


def _wake_interested(memo: kopf.Memo, namespace: str, kind: str, name: str) -> None:
    _poke(memo, _interest(memo).of(namespace, kind, name))


def moved(seen: dict[str, Any], uid: str, event_type: str | None, state: Any) -> bool:
    """Whether an object changed in what a reconcile reads of it (`state`), and remember it. Controllers write
    many status changes that are none of that (a ReplicaSet's replica counts, a Deployment condition's
    timestamps, a pod's phase): they wake nobody. A deleted object always counts."""
    if event_type == "DELETED":  # green's last pods going is what its teardown waits for
        seen.pop(uid, None)
        return True
    if seen.get(uid) == state:
        return False
    seen[uid] = state
    return True


def pod_moved(seen: dict[str, Any], uid: str, event_type: str | None, body: Mapping[str, Any]) -> bool:
    """Whether a pod changed in what the cutover reads of it (labels, IP, readiness, deletion): the kubelet (or
    kwok) writes several status changes per pod that are none of those."""
    entry = watch_cache.pod_entry(body)
    return moved(seen, uid, event_type,
                 (tuple(sorted(entry["labels"].items())), entry["ip"], entry["ready"], entry["deleting"]))


class NoDiffBase(kopf.DiffBaseStorage):
    """Kopf keeps the last handled spec of each object (its diff-base) for on.create/on.update handlers and
    writes it to the object once it is first seen. There are none here: a daemon reconciles from the whole
    object, and deletion is known by its timestamp. Keeping nothing saves one write per release and a deep
    copy of the object on every watch event."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Reconciles run on the loop's default executor (asyncio.to_thread), which asyncio sizes by cores (6
    # threads here): with many releases at once they would queue behind each other's requests.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=RECONCILE_THREADS, thread_name_prefix="reconcile"))
    # Kopf's own bookkeeping goes to annotations, so status belongs to the lifecycle alone.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.persistence.finalizer = FINALIZER
    settings.posting.enabled = False  # the lifecycle posts its own Events, naming the actor
    settings.watching.server_timeout = 120
    # Settled releases (nothing left to do, ever) are left out by the API server itself: years of records
    # cost no listing, memory or handling at start. One leaves the watch when it is labelled (mark_settled
    # drops the finalizer with it, so its deletion needs nobody).
    settings.watching.label_selectors[API_GROUP, PLURAL] = f"!{LABEL_SETTLED}"
    _watches(memo).start(kind_watch.kube_connection())
    memo.attaching = asyncio.create_task(_attach_when_listed(memo))


@kopf.on.cleanup()
async def stop_watches(memo: kopf.Memo, **_: Any) -> None:
    memo.attaching.cancel()
    await _watches(memo).stop()


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    # The credentials the kubernetes client loaded from --kubeconfig (or in-cluster); Kopf's own helper
    # would reload them from a default path instead.
    conf = client.Configuration.get_default_copy()
    scheme, _sep, token = (kind_watch.authorization(conf) or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=conf.host, ca_path=conf.ssl_ca_cert, insecure=not conf.verify_ssl,
        scheme=scheme or None, token=token or None,
        certificate_path=conf.cert_file, private_key_path=conf.key_file,
    )


@kopf.on.event(*RESOURCE)
async def wake(uid: str, namespace: str | None, name: str, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    controller = _controller(memo)
    controller.kube.cache.attach(kwargs)  # Kopf passes its indexes to every handler, by name
    # The event of this operator's own status write wakes nobody: the reconcile that wrote it decided on it
    # and asked for its own next turn (at once after entering a phase).
    if not controller.is_own_write(namespace or "", name, body):
        _poke(memo, (uid,))


# -- the watch cache: Kopf's indexes for the few and slow kinds; the operator's own watches for the many and busy ones

@kopf.index(API_GROUP, API_VERSION, "hotfixpolicies")
async def policy_index(body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {watch_cache.ALL: watch_cache.policy_entry(body)}


@kopf.index("", "v1", "namespaces")
async def namespace_index(name: str, labels: Mapping[str, str], **_: Any) -> dict[Any, Any]:
    return {name: dict(labels)}


def _meta(body: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or ""), str(meta.get("uid") or "")


def deployment_changed(memo: kopf.Memo, event_type: str, body: Mapping[str, Any]) -> None:
    # green becoming available, the folded Deployment rolling out: no need to wait for the next poll
    namespace, name, uid = _meta(body)
    if moved(_seen(memo), uid, event_type, watch_cache.deployment_state(body)):
        _wake_interested(memo, namespace, "Deployment", name)


def replicaset_changed(memo: kopf.Memo, event_type: str, body: Mapping[str, Any]) -> None:
    # a Deployment's current pod-template-hash comes from its ReplicaSet (not from its replica counts)
    namespace, _name, uid = _meta(body)
    owner = watch_cache.controlling_deployment(body)
    if owner is not None and moved(_seen(memo), uid, event_type,
                                   (owner.get("uid"), watch_cache.replicaset_entry(body))):
        _wake_interested(memo, namespace, "Deployment", str(owner.get("name", "")))


def service_changed(memo: kopf.Memo, event_type: str, body: Mapping[str, Any]) -> None:
    namespace, name, uid = _meta(body)
    if moved(_seen(memo), uid, event_type, watch_cache.service_entry(body)):
        _wake_interested(memo, namespace, "Service", name)


def endpoints_changed(memo: kopf.Memo, event_type: str, body: Mapping[str, Any]) -> None:
    # a switch is confirmed when the active Service's EndpointSlices list only the new side's pods
    namespace, _name, uid = _meta(body)
    service = watch_cache.slice_service(body)
    if service and moved(_seen(memo), uid, event_type, (service, watch_cache.endpoint_entry(body))):
        _wake_interested(memo, namespace, "Service", service)


def pod_changed(memo: kopf.Memo, event_type: str, body: Mapping[str, Any]) -> None:
    # which side's pods are ready decides whether a switch shows on the EndpointSlices
    namespace, _name, uid = _meta(body)
    if pod_moved(_seen(memo), uid, event_type, body):
        _poke(memo, _interest(memo).of(namespace, *ANY_POD))


def cutover_watches(memo: kopf.Memo, namespaces: Iterable[str]) -> kind_watch.KindWatches:
    """The operator's own watches of what a cutover decides on: each event updates its store, then wakes."""
    kinds = [
        kind_watch.Kind(watch_cache.DEPLOYMENTS, "apps", "v1", "deployments", watch_cache.deployment_keys,
                        partial(deployment_changed, memo)),
        kind_watch.Kind(watch_cache.REPLICA_SETS, "apps", "v1", "replicasets", watch_cache.replicaset_keys,
                        partial(replicaset_changed, memo)),
        kind_watch.Kind(watch_cache.SERVICES, "", "v1", "services", watch_cache.service_keys,
                        partial(service_changed, memo)),
        kind_watch.Kind(watch_cache.ENDPOINTS, "discovery.k8s.io", "v1", "endpointslices", watch_cache.endpoint_keys,
                        partial(endpoints_changed, memo)),
        kind_watch.Kind(watch_cache.PODS, "", "v1", "pods", watch_cache.pod_keys, partial(pod_changed, memo)),
    ]
    return kind_watch.KindWatches(kinds, tuple(namespaces))


def _watches(memo: kopf.Memo) -> kind_watch.KindWatches:
    return cast(kind_watch.KindWatches, memo.watches)


async def _attach_when_listed(memo: kopf.Memo) -> None:
    await _watches(memo).wait_listed()
    _controller(memo).kube.cache.attach(_watches(memo).stores)


async def _sleep(stopped: kopf.DaemonStopped, poke: asyncio.Event, seconds: float) -> None:
    """Until `seconds` pass, the release is poked, or the daemon is asked to stop (no polling tick)."""
    if poke.is_set() or stopped:
        return
    waits = {asyncio.ensure_future(poke.wait()), asyncio.ensure_future(stopped.wait())}
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


@kopf.daemon(*RESOURCE, cancellation_timeout=5.0, labels={LABEL_SETTLED: kopf.ABSENT})  # type: ignore[arg-type]
async def drive(stopped: kopf.DaemonStopped, name: str, namespace: str, uid: str, body: kopf.Body,
                memo: kopf.Memo, **kwargs: Any) -> None:
    controller, pokes = _controller(memo), _pokes(memo)
    controller.kube.cache.attach(kwargs)  # Kopf passes its indexes to every handler, by name
    poke = pokes.setdefault(uid, asyncio.Event())
    failures = 0
    try:
        while not stopped:
            poke.clear()
            try:
                # Kopf keeps the daemon's body live (it swaps in each event's object, never edits one): a
                # shallow copy taken here, on the event loop, is one whole version of it
                outcome = await asyncio.to_thread(controller.reconcile_once, namespace, name, seen=dict(body))
            except Exception:
                failures += 1
                controller.metrics.reconcile_errors.inc()
                delay = min(30.0, 0.5 * 2**failures)
                log.exception("%s/%s: reconcile failed (attempt %d); retrying in %.1fs", namespace, name, failures,
                              delay)
            else:
                failures = 0
                _interest(memo).register(uid, namespace, outcome.watches)
                if outcome.done:
                    if outcome.phase is not None:
                        await _settle(controller, namespace, name)
                    return
                delay = IDLE_RECHECK_SECONDS if outcome.requeue_after is None else outcome.requeue_after
            await _sleep(stopped, poke, delay)
    finally:
        pokes.pop(uid, None)
        _interest(memo).register(uid, namespace, ())


async def _settle(controller: Controller, namespace: str, name: str) -> None:
    # Labelled once, when nothing is left to do: after a restart Kopf starts no daemon for it, so years of
    # finished releases cost no reconcile and no write.
    try:
        await asyncio.to_thread(controller.kube.mark_settled, namespace, name)
    except Exception:  # it only saves work after a restart: the next start reconciles it once more
        log.warning("%s/%s: could not label it settled", namespace, name, exc_info=True)


def _being_deleted(body: kopf.Body, **_: Any) -> bool:
    return "deletionTimestamp" in body.get("metadata", {})


# Only for a release being deleted: with no filter Kopf would take every other event of every release through
# its change handling too (which formats the whole object for a debug line each time: 3% of the CPU at 200 at once).
@kopf.on.delete(*RESOURCE, when=_being_deleted)  # type: ignore[arg-type]
async def put_production_back(name: str, namespace: str, status: dict[str, Any], memo: kopf.Memo,
                              **kwargs: Any) -> None:
    if not holds_production(Status.model_validate(status or {})):
        return
    _controller(memo).kube.cache.attach(kwargs)
    log.warning("%s/%s deleted mid-cutover: rolling back before letting it go", namespace, name)
    controller = _controller(memo)
    deadline = time.monotonic() + DELETE_CLEANUP_SECONDS
    while time.monotonic() < deadline:
        outcome = await asyncio.to_thread(controller.reconcile_once, namespace, name, force_abort=True)
        if outcome.phase is None or not holds_production(Status(phase=outcome.phase)):
            return
        await asyncio.sleep(outcome.requeue_after or 1.0)
    raise kopf.TemporaryError("production not yet restored; will retry before removing the finalizer", delay=10)
