"""What the chaos test reads back: the active Services' EndpointSlices in every namespace at once, sampled
from one thread; the selector writes the kube-apiserver's audit log holds for a Service; and the selector
moves a HotfixRelease's own audit trail (status.audit) accounts for.

The local control plane logs every update and patch of a Service at Request level
(hack/localcluster/audit-policy.yaml), so each write's body is there with its response code."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from kubernetes import client, config

from hotfix_operator.core.traffic import UNDONE

T = TypeVar("T")


# -- every namespace's active Service, sampled at once ------------------------------------------------


@dataclass
class SliceSampler:
    """Lists, `hz` times a second, the EndpointSlices of Service `service` across all namespaces (one
    request), and records per namespace of `namespaces` every sample in which it had no ready endpoint
    (no slice at all counts as none). While the API server is away a sample is only counted as unobserved."""

    kubeconfig: Path
    namespaces: frozenset[str]
    service: str = "checkout"
    hz: float = 10.0
    observed_at: list[float] = field(default_factory=list)
    unobserved: int = 0
    dark: dict[str, list[float]] = field(default_factory=dict)
    fewest_ready: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> SliceSampler:
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig), client_configuration=configuration)
        configuration.retries = False  # a refused connection is an unobserved instant, not something to retry
        api = client.ApiClient(configuration)
        self._thread = threading.Thread(target=self._run, args=(client.DiscoveryV1Api(api),),
                                        name="slice-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self, discovery: client.DiscoveryV1Api) -> None:
        period = 1.0 / self.hz
        while not self._stop.is_set():
            started = time.monotonic()
            self._sample(discovery, started)
            self._stop.wait(max(0.0, period - (time.monotonic() - started)))

    def _sample(self, discovery: client.DiscoveryV1Api, at: float) -> None:
        try:
            slices = discovery.list_endpoint_slice_for_all_namespaces(
                label_selector=f"kubernetes.io/service-name={self.service}", _request_timeout=1.0)
        except Exception:  # the API server is restarting, or the read timed out: this instant is unobserved
            self.unobserved += 1
            return
        ready: dict[str, set[str]] = {ns: set() for ns in self.namespaces}
        for endpoint_slice in slices.items:
            ns = endpoint_slice.metadata.namespace if endpoint_slice.metadata else None
            if ns is None or ns not in ready:
                continue
            for endpoint in endpoint_slice.endpoints or []:
                if not endpoint.conditions or endpoint.conditions.ready is not False:
                    ready[ns].update(endpoint.addresses or [])
        for ns, ips in ready.items():
            self.fewest_ready[ns] = min(self.fewest_ready.get(ns, len(ips)), len(ips))
            if not ips:
                self.dark.setdefault(ns, []).append(at)
        self.observed_at.append(at)

    def rate(self) -> float:
        """Observed samples per second over the time the API server answered."""
        gaps = [b - a for a, b in itertools.pairwise(self.observed_at) if b - a < 1.0]
        return len(gaps) / sum(gaps) if gaps else 0.0

    def longest_gap(self) -> float:
        return max((b - a for a, b in itertools.pairwise(self.observed_at)), default=0.0)

    def summary(self) -> str:
        return (f"{len(self.observed_at)} samples of {len(self.namespaces)} namespaces at {self.rate():.1f} Hz, "
                f"{self.unobserved} unobserved (API server away), longest gap {self.longest_gap():.1f}s, "
                f"{sum(len(d) for d in self.dark.values())} namespace-samples with zero ready endpoints")


# -- the API server's audit log: what really happened to a Service's selector -----------------------------


@dataclass(frozen=True)
class SelectorWrite:
    at: str  # the audit event's stageTimestamp
    user: str
    verb: str
    selector: dict[str, str]  # the selector after this write
    changed: bool  # whether it differs from the selector before it


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _after_json_patch(ops: list[Any], before: dict[str, str]) -> dict[str, str] | None:
    """The selector after a JSON patch, or None when the patch does not touch spec.selector."""
    selector, touched = dict(before), False
    for op in ops:
        path = op.get("path", "") if isinstance(op, dict) else ""
        if path == "/spec/selector":
            touched = True
            selector = {} if op.get("op") == "remove" else dict(op.get("value") or {})
        elif path.startswith("/spec/selector/"):
            touched = True
            key = _unescape(path.removeprefix("/spec/selector/"))
            if op.get("op") == "remove":
                selector.pop(key, None)
            else:
                selector[key] = op.get("value")
        elif path in ("/spec", ""):
            touched = True
            selector = dict((op.get("value") or {}).get("selector") or {})
    return selector if touched else None


def _after_merge_patch(body: Mapping[str, Any], before: dict[str, str]) -> dict[str, str] | None:
    """The selector after a merge or strategic-merge patch (maps merge; null removes a key)."""
    spec = body.get("spec")
    if not isinstance(spec, Mapping) or "selector" not in spec:
        return None
    patch = spec["selector"]
    if patch is None:
        return {}
    if patch.get("$patch") == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    selector = dict(before)
    for key, value in patch.items():
        if value is None:
            selector.pop(key, None)
        else:
            selector[key] = value
    return selector


def selector_writes(events: Iterable[Mapping[str, Any]], namespace: str, service: str,
                    initial: Mapping[str, str]) -> list[SelectorWrite]:
    """Every successful (200) update or patch of Service `namespace`/`service` whose body touches
    spec.selector, in the order the API server completed them, starting from `initial`."""
    current, writes = dict(initial), []
    for event in events:
        ref = event.get("objectRef") or {}
        if (event.get("stage") != "ResponseComplete" or ref.get("resource") != "services" or ref.get("subresource")
                or ref.get("namespace") != namespace or ref.get("name") != service
                or event.get("verb") not in ("update", "patch")
                or (event.get("responseStatus") or {}).get("code") != 200):
            continue
        body = event.get("requestObject")
        after: dict[str, str] | None
        if event["verb"] == "update":
            after = dict(((body or {}).get("spec") or {}).get("selector") or {})
        elif isinstance(body, list):
            after = _after_json_patch(body, current)
        elif isinstance(body, Mapping):
            after = _after_merge_patch(body, current)
        else:
            after = None
        if after is None:
            continue
        writes.append(SelectorWrite(at=str(event.get("stageTimestamp")), user=str((event.get("user") or {})
                                    .get("username")), verb=event["verb"], selector=after, changed=after != current))
        current = after
    return writes


# -- what the HotfixRelease's own audit trail says about the selector --------------------------------------

PINNED = re.compile(r"pinned to blue pod-template-hash=(\S+)")
SWITCHED = re.compile(r"pod-template-hash (\S+) -> (\S+);")
# a selector status did not account for (a switch written ahead of a status write that a kill stopped), and
# where that reconcile put it: each a pod-template-hash, or a selector without one (the original)
UNRECORDED = re.compile(r"found on (?:pod-template-hash=(\S+?)|selector .*?), which status does not record .*?; "
                        r"(?:setting it to (?:pod-template-hash=([^;\s]+)|(selector))|leaving it there)")
# the terminal entries, each written only after the Service has its original selector again
RESTORED_BY = ("Succeeded", "RolledBack")


@dataclass(frozen=True)
class RecordedMoves:
    """The selector moves status.audit accounts for, in order, as the pod-template-hash each leaves the
    Service on (None: the original selector), and which kind of entry accounts for each."""

    sequence: tuple[str | None, ...]
    by: tuple[str, ...]  # per move: PinnedBlue, TrafficSwitched, SelectorUnrecorded, or the terminal phase

    @property
    def total(self) -> int:
        return len(self.sequence)

    def count(self, kind: str) -> int:
        return self.by.count(kind)


def recorded_moves(audit: Iterable[Mapping[str, Any]]) -> RecordedMoves:
    """Each entry names the sides the Service was on; a move is a change of side, so a side named twice in
    a row is one move. TrafficSwitched "X -> Y" names X too: a switch decided but overtaken before it was
    confirmed (an abort during it) leaves no entry of its own for the move to X."""
    sequence: list[str | None] = []
    by: list[str] = []

    def on(side: str | None, kind: str) -> None:
        if not sequence or sequence[-1] != side:
            sequence.append(side)
            by.append(kind)

    for entry in audit:
        action, detail = str(entry.get("action")), str(entry.get("detail", ""))
        if action == "PinnedBlue" and (m := PINNED.search(detail)):
            on(m.group(1), action)
        elif action == "TrafficSwitched" and (m := SWITCHED.search(detail)):
            for side in m.groups():
                on(side, action)
        elif action == "SelectorUnrecorded" and (m := UNRECORDED.search(detail)):
            found, moved_to, to_original = m.groups()
            if UNDONE in detail and by and by[-1] == action:
                sequence.pop()  # the move the entry before named did not happen
                by.pop()
            on(found, action)
            if moved_to or to_original:
                on(moved_to, action)
        elif action in RESTORED_BY and "PinnedBlue" in by:
            on(None, action)
    return RecordedMoves(tuple(sequence), tuple(by))


# -- reads that ride out an API server restart ---------------------------------------------------------------


def eventually(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.5) -> T:
    """Poll `probe` until it returns something truthy; an exception (the API server away, a kubectl that
    could not connect) counts as not yet. Fails with `what` and the last value or error seen."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except Exception as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")
