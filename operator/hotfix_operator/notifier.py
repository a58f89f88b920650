"""Notifications in the shell: after a reconcile has written its status and acted, start the sends
core.notify asks for, in the background, and fold the answers of earlier sends into status.

Nothing waits on a receiver: a send runs on a worker thread and its answer is picked up by a later
reconcile, so a slow or unreachable receiver never delays a cutover. Sends in flight are known only
in memory; after a restart they are sent again with the same dedupe key (at least once)."""

from __future__ import annotations

import datetime
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from hotfix_operator.adapters import check_http
from hotfix_operator.adapters.policies import PolicyProblem, PolicyResolver, PolicySource, Receiver
from hotfix_operator.core import egress, notify
from hotfix_operator.core.model import Release, Status
from hotfix_operator.metrics import Metrics

log = logging.getLogger(__name__)
# How long a receiver may take to answer one notice.
SEND_TIMEOUT_SECONDS = 5.0
# How long a namespace's list of receivers is reused before the policy is read again.
RECEIVERS_TTL_SECONDS = 15.0


class Notifier:
    def __init__(self, policies: PolicyResolver, metrics: Metrics) -> None:
        self.policies = policies
        self.metrics = metrics
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="notify")
        self._lock = threading.Lock()
        # (release uid, dedupe key, receiver) -> the send under way
        self._in_flight: dict[tuple[str, str, str], Future[notify.Outcome]] = {}
        self._receivers: dict[str, tuple[float, tuple[Receiver, ...]]] = {}

    def wake_in(self, release: Release, status: Status, now: datetime.datetime) -> float | None:
        """When this release should be reconciled again for its notices (None: nothing outstanding)."""
        with self._lock:
            if any(k[0] == release.uid for k in self._in_flight):
                return 1.0  # pick up the answer
        cached = self._receivers.get(release.namespace)
        names = [r.name for r in cached[1]] if cached else []
        waits = [max(0.0, (n.retry_at - now).total_seconds()) if n.retry_at else 0.5
                 for n in notify.pending(release, status, now) if any(r not in n.delivered_to for r in names)]
        return min(waits) if waits else None

    def step(self, release: Release, status: Status, now: datetime.datetime, policies: PolicySource) -> Status:
        """`status` with the answers that came back folded in; starts the sends now due."""
        outcomes, in_flight = self._collect(release.uid)
        if not outcomes and not notify.pending(release, status, now):
            return status
        receivers = self._receivers_for(release.namespace, policies)
        if receivers is None or (not receivers and not outcomes):
            # no receiver to tell: recording the notices would only cost a status write per notice
            return status
        states, sends = notify.plan(release, status, [r.name for r in receivers], outcomes, in_flight, now)
        by_name = {r.name: r for r in receivers}
        for delivery in sends:
            future = self._pool.submit(self._send, release, status, delivery, by_name[delivery.receiver])
            with self._lock:
                self._in_flight[(release.uid, delivery.key, delivery.receiver)] = future
        return status.model_copy(update={"notifications": states})

    def _collect(self, uid: str) -> tuple[list[notify.Outcome], frozenset[tuple[str, str]]]:
        with self._lock:
            done = [k for k, f in self._in_flight.items() if k[0] == uid and f.done()]
            outcomes = [self._in_flight.pop(k).result() for k in done]
            waiting = frozenset((k[1], k[2]) for k in self._in_flight if k[0] == uid)
        return outcomes, waiting

    def _receivers_for(self, namespace: str, policies: PolicySource) -> tuple[Receiver, ...] | None:
        cached = self._receivers.get(namespace)
        if cached is not None and time.monotonic() < cached[0]:
            return cached[1]
        try:
            found = policies.for_namespace(namespace).receivers
        except PolicyProblem:
            return None
        self._receivers[namespace] = (time.monotonic() + RECEIVERS_TTL_SECONDS, found)
        return found

    def _send(self, release: Release, status: Status, delivery: notify.Delivery, receiver: Receiver) -> notify.Outcome:
        try:
            url = self.policies.secret_value(status.policy or "", receiver.url_secret, receiver.url_key).strip()
            refused = refused_address(url)
            if refused:
                raise ValueError(refused)
            body = notify.payload(release, status, delivery.kind, receiver.style)
            answer = check_http.request("POST", url, timeout=SEND_TIMEOUT_SECONDS, json_body=body,
                                        headers={"Idempotency-Key": delivery.key})
            if not 200 <= answer.status < 300:
                raise ValueError(f"answered HTTP {answer.status}")
        except (check_http.CheckTransportError, PolicyProblem, ValueError) as exc:
            self.metrics.notifications.labels(receiver=receiver.name, kind=delivery.kind.value, result="failed").inc()
            log.warning("%s/%s: notice %s to %s failed: %s", release.namespace, release.name, delivery.kind,
                        receiver.name, exc)
            return notify.Outcome(delivery.key, receiver.name, ok=False, error=str(exc))
        self.metrics.notifications.labels(receiver=receiver.name, kind=delivery.kind.value, result="delivered").inc()
        return notify.Outcome(delivery.key, receiver.name, ok=True)


def refused_address(url: str) -> str | None:
    """A receiver's URL is the policy's (an administrator's) choice, so any host may be named, but never
    a link-local or metadata address: a Secret is no reason to reach those."""
    try:
        target = egress.parse_target(url)
    except ValueError as exc:
        return str(exc)
    for address in check_http.resolve(target.host):
        why = egress.forbidden_address(address)
        if why:
            return f"receiver host {target.host} resolves to {address}: {why}"
    return None
