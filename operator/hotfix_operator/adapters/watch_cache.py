"""What the operator's watches last saw of the objects a cutover decides on (and of the HotfixPolicies and
namespaces that decide which policy applies), so a reconcile reads memory instead of issuing a round of GETs.

Two sources keep the stores, under the names below: the operator's own watches (adapters.kind_watch) for
Deployments, ReplicaSets, Services, EndpointSlices and pods, filed by the `*_keys` functions here; Kopf's
indexes (handlers.py) for HotfixPolicies and namespaces. The cache is attached once both gave every store,
each after its first complete list, so a cache that is attached is a whole cache. Entries are slim copies of
the fields the lifecycle uses: the same functions slim a live GET, so both paths build the same views.

A watch is behind the API server by a few milliseconds. Three rules keep that harmless:
- a Deployment this operator just created and the cache does not have yet is read live, for at most
  `OWN_WRITE_SECONDS` (any other the cache does not have is absent: its first list was complete);
- a Service selector or container image this operator just wrote is read as written until the watch shows it,
  for at most `OWN_WRITE_SECONDS` (another writer's later change then shows as it is), so a reconcile does
  not repeat it; an image so read is not yet rolled out;
- before anything is removed the controller decides again on live reads (Controller.decide), because an
  old view can show the other side serving when it no longer is.

The watches update the stores on the event loop while reconciles read them from worker threads: a read copies
one store's values at once (`list()` of a dict's values does not yield to other threads) and retries if a
concurrent update still got in the way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hotfix_operator.api import ANNOTATION_REVISION, LABEL_SERVICE_NAME, POD_TEMPLATE_HASH

log = logging.getLogger(__name__)
OWN_WRITE_SECONDS = 2.0
# the stores' names; Kopf passes its indexes to handlers by the function's name, so handlers.py's are these
DEPLOYMENTS, REPLICA_SETS, SERVICES, ENDPOINTS, PODS, POLICIES, NAMESPACES = (
    "deployment_index", "replicaset_index", "service_index", "endpoint_index", "pod_index", "policy_index",
    "namespace_index")
INDEX_NAMES = (DEPLOYMENTS, REPLICA_SETS, SERVICES, ENDPOINTS, PODS, POLICIES, NAMESPACES)
# the one key every HotfixPolicy is kept under (they are few, and resolving a namespace reads them all)
ALL = "all"
Entry = dict[str, Any]
Keyed = list[tuple[Any, Any]]  # what one object is stored as: (key, entry) pairs


def _meta(body: Mapping[str, Any]) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = body.get("metadata") or {}
    return meta


def deployment_entry(body: Mapping[str, Any]) -> Entry:
    meta, spec, st = _meta(body), body.get("spec") or {}, body.get("status") or {}
    return {
        "uid": meta.get("uid"), "generation": meta.get("generation", 0),
        "revision": (meta.get("annotations") or {}).get(ANNOTATION_REVISION), "labels": dict(meta.get("labels") or {}),
        "replicas": spec.get("replicas", 1), "selector": dict((spec.get("selector") or {}).get("matchLabels") or {}),
        "template": spec.get("template") or {}, "observedGeneration": st.get("observedGeneration", 0),
        "updatedReplicas": st.get("updatedReplicas", 0), "availableReplicas": st.get("availableReplicas", 0),
        "conditions": list(st.get("conditions") or []),
    }


def stuck_reason(conditions: list[dict[str, Any]]) -> str | None:
    """Why a Deployment is not progressing, from its conditions (e.g. a quota refusing pods), if anything."""
    for cond in conditions:
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return str(cond.get("message") or cond.get("reason"))
        if cond.get("type") == "Progressing" and cond.get("status") == "False":
            return str(cond.get("message") or cond.get("reason"))
    return None


def deployment_state(body: Mapping[str, Any]) -> Entry:
    """What a reconcile reads of a Deployment: its entry, with the conditions as the reason it is stuck (their
    timestamps move with every status write and decide nothing)."""
    entry = deployment_entry(body)
    entry["conditions"] = stuck_reason(entry["conditions"])
    return entry


def replicaset_entry(body: Mapping[str, Any]) -> Entry:
    meta = _meta(body)
    return {"revision": (meta.get("annotations") or {}).get(ANNOTATION_REVISION),
            "hash": (meta.get("labels") or {}).get(POD_TEMPLATE_HASH)}


def controlling_deployment(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ownerReference of the Deployment that controls this ReplicaSet, if one does."""
    for owner in _meta(body).get("ownerReferences") or []:
        if owner.get("controller") and owner.get("kind") == "Deployment":
            found: Mapping[str, Any] = owner
            return found
    return None


def replicaset_owner(body: Mapping[str, Any]) -> str | None:
    """The uid of the Deployment that controls this ReplicaSet, if one does."""
    owner = controlling_deployment(body)
    return None if owner is None else str(owner.get("uid"))


def service_entry(body: Mapping[str, Any]) -> Entry:
    return {"selector": dict((body.get("spec") or {}).get("selector") or {})}


def endpoint_entry(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The ready addresses of one EndpointSlice (an unset `ready` means ready, per the API)."""
    ips: list[str] = []
    for endpoint in body.get("endpoints") or []:
        if (endpoint.get("conditions") or {}).get("ready") is not False:
            ips.extend(endpoint.get("addresses") or [])
    return tuple(ips)


def pod_entry(body: Mapping[str, Any]) -> Entry:
    meta, st = _meta(body), body.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
    return {"labels": dict(meta.get("labels") or {}), "ip": st.get("podIP"), "ready": ready,
            "deleting": "deletionTimestamp" in meta}


def slice_service(body: Mapping[str, Any]) -> str | None:
    """The Service an EndpointSlice belongs to (its label), if any."""
    return (_meta(body).get("labels") or {}).get(LABEL_SERVICE_NAME)


def deployment_keys(body: Mapping[str, Any]) -> Keyed:
    meta = _meta(body)
    return [((meta.get("namespace"), meta.get("name")), deployment_entry(body))]


def replicaset_keys(body: Mapping[str, Any]) -> Keyed:
    owner = replicaset_owner(body)
    return [((_meta(body).get("namespace"), owner), replicaset_entry(body))] if owner else []


def service_keys(body: Mapping[str, Any]) -> Keyed:
    meta = _meta(body)
    return [((meta.get("namespace"), meta.get("name")), service_entry(body))]


def endpoint_keys(body: Mapping[str, Any]) -> Keyed:
    service = slice_service(body)
    return [((_meta(body).get("namespace"), service), endpoint_entry(body))] if service else []


def pod_keys(body: Mapping[str, Any]) -> Keyed:
    return [(_meta(body).get("namespace"), pod_entry(body))]


def policy_entry(body: Mapping[str, Any]) -> Entry:
    """A HotfixPolicy as the resolver reads it: name, uid and version (for memoising), and its spec."""
    meta = _meta(body)
    return {"metadata": {"name": meta.get("name"), "uid": meta.get("uid"),
                         "resourceVersion": meta.get("resourceVersion")}, "spec": body.get("spec") or {}}


def _container_image(entry: Entry, container: str) -> str | None:
    for spec in (entry["template"].get("spec") or {}).get("containers") or []:
        if spec.get("name") == container:
            return str(spec.get("image"))
    return None


def _with_image(template: Mapping[str, Any], container: str, image: str) -> dict[str, Any]:
    spec = dict(template.get("spec") or {})
    spec["containers"] = [{**c, "image": image} if c.get("name") == container else c
                          for c in spec.get("containers") or []]
    return {**template, "spec": spec}


def _values(index: Mapping[Any, Iterable[Any]], key: Any) -> list[Any]:
    for _attempt in range(5):
        try:
            store = index.get(key)
            return [] if store is None else list(store)
        except RuntimeError:  # updated while copied: copy again
            continue
    store = index.get(key)
    return [] if store is None else list(store)


class WatchCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._indexes: Mapping[str, Mapping[Any, Iterable[Any]]] | None = None
        self._offered: dict[str, Mapping[Any, Iterable[Any]]] = {}
        # (namespace, name) -> (what this operator wrote, when): a selector, a (container, image)
        self._own_selectors: dict[tuple[str, str], tuple[Any, float]] = {}
        self._own_images: dict[tuple[str, str], tuple[Any, float]] = {}
        self._created: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def attach(self, indexes: Mapping[str, Mapping[Any, Iterable[Any]]]) -> None:
        """Some of the stores, each whole (Kopf's indexes once a handler has them, the own watches once listed;
        they are the same live objects every time): read from once every store was offered. Event loop only."""
        if self._indexes is not None:
            return
        self._offered.update({name: indexes[name] for name in INDEX_NAMES if name in indexes})
        if len(self._offered) == len(INDEX_NAMES):
            self._indexes = dict(self._offered)
            log.info("reconciles read Deployments, ReplicaSets, Services, EndpointSlices, pods, HotfixPolicies and "
                     "namespaces from the watches")

    @property
    def attached(self) -> bool:
        return self._indexes is not None

    def _index(self, name: str) -> Mapping[Any, Iterable[Any]]:
        assert self._indexes is not None, "the watch cache is read only once attached"
        return self._indexes[name]

    def deployment(self, namespace: str, name: str) -> Entry | None:
        found = _values(self._index(DEPLOYMENTS), (namespace, name))
        if not found:
            return None
        seen: Entry = found[0]
        written = self._unseen(self._own_images, (namespace, name),
                               lambda own: _container_image(seen, own[0]) == own[1])
        if written is None:
            return seen
        container, image = written
        # The watch has not shown this operator's image write yet: read it as written, and as a template its
        # controller has not rolled out (a newer generation), never as the old template's finished rollout.
        return {**seen, "template": _with_image(seen["template"], container, image),
                "generation": seen["generation"] + 1}

    def wrote_image(self, namespace: str, deployment: str, container: str, image: str) -> None:
        with self._lock:
            self._own_images[(namespace, deployment)] = ((container, image), self._clock())

    def _unseen(self, own: dict[tuple[str, str], tuple[Any, float]], key: tuple[str, str],
                shown: Callable[[Any], bool]) -> Any | None:
        """What this operator last wrote at `key` while the watch does not show it yet (`shown`), for at most
        OWN_WRITE_SECONDS; None once it does, or after that (the record is dropped)."""
        with self._lock:
            record = own.get(key)
            if record is None:
                return None
            written, at = record
            if shown(written) or self._clock() - at > OWN_WRITE_SECONDS:
                del own[key]
                return None
            return written

    def may_lag(self, namespace: str, name: str) -> bool:
        """Whether the cache may not have this Deployment yet because this operator just created it."""
        with self._lock:
            at = self._created.get((namespace, name))
            if at is None:
                return False
            if self._clock() - at > OWN_WRITE_SECONDS or _values(self._index(DEPLOYMENTS), (namespace, name)):
                del self._created[(namespace, name)]
                return False
            return True

    def created_deployment(self, namespace: str, name: str) -> None:
        with self._lock:
            self._created[(namespace, name)] = self._clock()

    def replica_sets(self, namespace: str, owner_uid: str) -> list[Entry]:
        return _values(self._index(REPLICA_SETS), (namespace, owner_uid))

    def service(self, namespace: str, name: str) -> Entry | None:
        found = _values(self._index(SERVICES), (namespace, name))
        if not found:
            return None
        seen: Entry = found[0]
        selector = self._unseen(self._own_selectors, (namespace, name), lambda own: seen["selector"] == own)
        return seen if selector is None else {**seen, "selector": dict(selector)}

    def endpoint_ips(self, namespace: str, service: str) -> frozenset[str]:
        return frozenset(ip for ips in _values(self._index(ENDPOINTS), (namespace, service)) for ip in ips)

    def pods(self, namespace: str) -> list[Entry]:
        return _values(self._index(PODS), namespace)

    def policies(self) -> list[Entry]:
        return _values(self._index(POLICIES), ALL)

    def namespace_labels(self, name: str) -> dict[str, str] | None:
        found = _values(self._index(NAMESPACES), name)
        return dict(found[0]) if found else None

    def wrote_selector(self, namespace: str, service: str, selector: Mapping[str, str]) -> None:
        with self._lock:
            self._own_selectors[(namespace, service)] = (dict(selector), self._clock())
