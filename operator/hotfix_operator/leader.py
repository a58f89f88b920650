"""Leader election for `hotfix-operator run --leader-elect`: the Lease's reads and writes, the standby's
wait, the leader's renewals, and the fencing exit. What to write is decided by core.leadership.

A standby does nothing but read the Lease every tenth of the lease (and serve /healthz, so its pod stays
Ready and a disruption budget counts it): no Kopf handler runs and nothing is written until it holds the
Lease. The leader renews
every third of the lease; if it has not renewed for two thirds of it (or reads that another holds it), it
exits at once with EXIT_LEASE_LOST, without waiting for anything, so it never acts after another candidate
could have taken over; its pod restarts as a standby.

This module may not import what acts (handlers, controller): the entry point starts those only once
`Elector.acquire` has returned.
"""

from __future__ import annotations

import datetime
import http.server
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hotfix_operator.core import leadership
from hotfix_operator.core.leadership import Claim, LeaseRecord, Move, Seen

log = logging.getLogger(__name__)
EXIT_LEASE_LOST = 3


def default_identity() -> str:
    """The pod's name (POD_NAME, from the downward API), else host name and process id."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{os.getpid()}"


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _micro_time(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseLock:
    """One coordination.k8s.io/v1 Lease, read and written with optimistic concurrency."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str, timeout: float) -> None:
        self.leases = client.CoordinationV1Api(api)
        self.namespace, self.name, self.timeout = namespace, name, timeout

    def __str__(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    def read(self) -> tuple[LeaseRecord | None, str | None]:
        try:
            lease = self.leases.read_namespaced_lease(self.name, self.namespace, _request_timeout=self.timeout)
        except ApiException as error:
            if error.status == 404:
                return None, None
            raise
        spec, metadata = lease.spec or client.V1LeaseSpec(), lease.metadata or client.V1ObjectMeta()
        return LeaseRecord(holder=spec.holder_identity or "", duration_seconds=spec.lease_duration_seconds or 0,
                           acquired=spec.acquire_time, renewed=spec.renew_time,
                           transitions=spec.lease_transitions or 0), metadata.resource_version

    def write(self, claim: Claim) -> str | None:
        """Carry out a CREATE, TAKE or RENEW: the Lease's new resourceVersion, or None when another candidate
        wrote first (409)."""
        assert claim.record is not None
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace,
                                    "labels": {"app.kubernetes.io/part-of": "hotfix-operator"}}
        if claim.version is not None:
            metadata["resourceVersion"] = claim.version
        # a plain body, so the times are written as MicroTime wants them (the client's isoformat() drops
        # the fraction when it is zero)
        body: Any = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
                "spec": self._spec(claim.record)}
        try:
            if claim.move is Move.CREATE:
                written = self.leases.create_namespaced_lease(self.namespace, body, _request_timeout=self.timeout)
            else:
                written = self.leases.replace_namespaced_lease(self.name, self.namespace, body,
                                                               _request_timeout=self.timeout)
        except ApiException as error:
            if error.status == 409:
                return None
            raise
        return str((written.metadata or client.V1ObjectMeta()).resource_version)

    @staticmethod
    def _spec(record: LeaseRecord) -> dict[str, Any]:
        return {"holderIdentity": record.holder, "leaseDurationSeconds": record.duration_seconds,
                "acquireTime": _micro_time(record.acquired), "renewTime": _micro_time(record.renewed),
                "leaseTransitions": record.transitions}


def _fence(reason: str) -> None:
    log.critical("stopping at once, exit %d: %s", EXIT_LEASE_LOST, reason)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(EXIT_LEASE_LOST)


class Elector:
    """One candidate for one Lease. `acquire()` blocks until it leads; `start_renewing()` keeps it; `release()`
    gives it up on a clean shutdown. `on_change(leading)` is told every transition (the hotfix_leader gauge)."""

    def __init__(self, lock: LeaseLock, identity: str, lease_seconds: int,
                 on_change: Callable[[bool], None] = lambda _leading: None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], datetime.datetime] = _utcnow,
                 fence: Callable[[str], None] = _fence) -> None:
        self.lock, self.identity, self.lease_seconds = lock, identity, lease_seconds
        self.on_change, self.clock, self.wall, self.fence = on_change, clock, wall, fence
        self.seen: Seen | None = None
        self.leading = False
        self.last_renewed = 0.0  # when the last renewal known to have landed was sent (monotonic)
        self.last_read_ok = clock()
        self._own_version = False  # self.seen is what this candidate's own last write left
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def healthy(self) -> bool:
        """A standby is healthy while it can read the Lease; a leader while it renews in time."""
        if self.leading:
            return not leadership.must_stop(self.last_renewed, self.clock(), self.lease_seconds)
        return self.clock() - self.last_read_ok < self.lease_seconds

    def try_once(self) -> Claim | None:
        """Read the Lease, decide, and write if the decision says so. The claim carried out, or None when the
        write lost a race (409). A leader whose last write succeeded renews at the version that write left,
        without reading first (client-go's fast path); a 409 sends it back to reading."""
        sent = self.clock()
        if not (self.leading and self._own_version and self.seen is not None):
            record, version = self.lock.read()
            self.last_read_ok = self.clock()
            self.seen = leadership.observe(self.seen, record, version, self.last_read_ok)
        assert self.seen is not None
        claim = leadership.decide(self.seen, self.identity, self.lease_seconds, self.clock(), self.wall())
        if claim.move is Move.WAIT:
            return claim
        written = self.lock.write(claim)
        self._own_version = written is not None
        if written is None:
            return None
        self.seen = Seen(claim.record, written, self.clock())
        self.last_renewed = sent
        return claim

    def acquire(self) -> None:
        """Block until this candidate holds the Lease, looking every tenth of the lease."""
        period, waiting_on = leadership.retry_period(self.lease_seconds), None  # a tenth of the lease
        log.info("%s: candidate %s, waiting to lead (lease %ds)", self.lock, self.identity, self.lease_seconds)
        while True:
            try:
                claim = self.try_once()
            except Exception as error:  # the API server away: a standby only waits
                log.warning("%s: could not read or write the Lease: %s", self.lock, error)
                claim = None
            if claim is not None and claim.move is not Move.WAIT:
                self._became_leader(claim)
                return
            if claim is not None and claim.holder != waiting_on:
                waiting_on = claim.holder
                log.info("%s: held by %s; standing by (expires in %.1fs unless renewed)", self.lock, claim.holder,
                         claim.expires_in)
            delay = period if claim is None else min(period, max(0.05, claim.expires_in))
            time.sleep(delay)

    def _became_leader(self, claim: Claim) -> None:
        self.leading = True
        how = {Move.CREATE: "created it", Move.TAKE: f"took it over from {claim.holder or 'nobody (released)'}",
               Move.RENEW: "it was already ours (this pod restarted)"}[claim.move]
        transitions = claim.record.transitions if claim.record else 0
        log.warning("%s: %s now leads (%s; leaseTransitions %d)", self.lock, self.identity, how, transitions)
        self.on_change(True)

    def start_renewing(self) -> None:
        for target, name in ((self._renew_loop, "lease-renewer"), (self._watchdog, "lease-watchdog")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _renew_loop(self) -> None:
        while not self._stop.is_set():
            ok = False
            try:
                claim = self.try_once()
                if claim is not None and claim.move is not Move.RENEW:
                    self.fence(f"{self.lock} is held by {claim.holder}, not by {self.identity}")
                    return
                ok = claim is not None
                if not ok:
                    log.warning("%s: renewal lost a race (409); retrying", self.lock)
            except Exception as error:
                log.warning("%s: renewal failed: %s", self.lock, error)
            wait = (leadership.renew_period(self.lease_seconds) if ok
                    else leadership.retry_period(self.lease_seconds))
            self._stop.wait(wait)

    def _watchdog(self) -> None:
        # apart from the renewals, so a hung request cannot delay the fencing
        while not self._stop.wait(0.2):
            if leadership.must_stop(self.last_renewed, self.clock(), self.lease_seconds):
                self.leading = False
                self.on_change(False)
                self.fence(f"{self.lock} not renewed for {self.clock() - self.last_renewed:.1f}s (deadline "
                           f"{leadership.renew_deadline(self.lease_seconds):.1f}s): another candidate may take it")
                return

    def release(self) -> None:
        """Stop renewing and give the Lease up (holder empty, one-second lease) if it is still ours."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=leadership.renew_period(self.lease_seconds) + 1)
        if not self.leading:
            return
        self.leading = False
        self.on_change(False)
        try:
            record, version = self.lock.read()
            if record is not None and record.holder == self.identity:
                claim = Claim(Move.RENEW, leadership.released(record), version, self.identity, 0.0)
                done = self.lock.write(claim) is not None
                log.info("%s: %s by %s", self.lock, "released" if done else "not released (409)", self.identity)
        except Exception as error:
            log.warning("%s: could not release: %s", self.lock, error)


class HealthServer:
    """/healthz for a standby (Kopf serves its own once this process leads): 200 while the elector is healthy."""

    def __init__(self, port: int, healthy: Callable[[], bool]) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                ok = self.path.split("?")[0] == "/healthz" and healthy()
                self.send_response(200 if ok else 503)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"standby\n" if ok else b"unhealthy\n")

            def log_message(self, *_: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="standby-health", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
