"""Leader election on a coordination.k8s.io/v1 Lease, decided purely: Kubernetes' own rules (client-go's
leaderelection package) as functions of what a candidate read and when.

- No Lease: create it, holding it from now (leaseTransitions 0).
- The Lease is this candidate's: renew it (renewTime now; acquireTime and leaseTransitions kept).
- Another holds it: wait until it expires, then take it (acquireTime now, leaseTransitions + 1).
  A released Lease (holderIdentity empty) may be taken at once.
- Expiry is judged on this candidate's own monotonic clock, from the moment it first saw the Lease's
  current version, plus the holder's leaseDurationSeconds, as client-go does: the candidates' wall
  clocks need not agree, and a candidate that has just started waits one whole lease before taking one
  it has not seen change.
- Every write names the resourceVersion it read (create: none may exist), so of two candidates that
  decide at once the API server accepts one and answers the other 409: they can never both hold it.
- The leader renews every third of the lease and stops acting (`must_stop`) once it has not renewed for
  `renew_deadline` seconds, two thirds of the lease, before any other candidate may consider the Lease
  expired (a full lease after it last saw it change, which is after the leader sent that renewal). A
  standby looks every tenth of the lease (at least every half second).
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

MIN_LEASE_SECONDS = 3
DEFAULT_LEASE_NAME = "hotfix-operator"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class LeaseRecord:
    """spec of a coordination.k8s.io/v1 Lease, as the election reads and writes it."""

    holder: str  # holderIdentity; "" when released
    duration_seconds: int  # leaseDurationSeconds
    acquired: datetime.datetime | None  # acquireTime
    renewed: datetime.datetime | None  # renewTime
    transitions: int  # leaseTransitions


@dataclass(frozen=True)
class Seen:
    """The Lease as one candidate last read it, and since when (its monotonic clock) it has seen this version."""

    record: LeaseRecord | None  # None: there is no Lease
    version: str | None  # metadata.resourceVersion
    since: float


class Move(StrEnum):
    CREATE = "create"  # no Lease: create it (fails with 409 if another candidate created it first)
    TAKE = "take"  # another's, expired or released: replace it at the version read
    RENEW = "renew"  # this candidate's: replace it at the version read
    WAIT = "wait"  # another holds it and it has not expired


@dataclass(frozen=True)
class Claim:
    move: Move
    record: LeaseRecord | None  # what to write; None for WAIT
    version: str | None  # the resourceVersion the write must match; None for CREATE and WAIT
    holder: str  # who holds the Lease as read ("" for none)
    expires_in: float  # WAIT: seconds until this candidate may take it; 0 otherwise


def observe(previous: Seen | None, record: LeaseRecord | None, version: str | None, now: float) -> Seen:
    """What a candidate knows after reading the Lease at `now`: the time it first saw this version is kept."""
    if previous is not None and version is not None and previous.version == version:
        return previous
    return Seen(record, version, now)


def decide(seen: Seen, me: str, lease_seconds: int, now: float, wall: datetime.datetime) -> Claim:
    """May `me` take or renew the Lease it saw? `now` is the monotonic clock `seen.since` is on; `wall`
    (UTC) is written as acquireTime/renewTime for people and other tools to read."""
    record = seen.record
    if record is None:
        return Claim(Move.CREATE, LeaseRecord(me, lease_seconds, wall, wall, 0), None, "", 0.0)
    if record.holder == me:
        # ours (also after a restart of this same pod, whose earlier process is gone): renew
        return Claim(Move.RENEW, replace(record, duration_seconds=lease_seconds, renewed=wall,
                                         acquired=record.acquired or wall), seen.version, me, 0.0)
    left = expires_in(seen, lease_seconds, now)
    if left > 0:
        return Claim(Move.WAIT, None, None, record.holder, left)
    return Claim(Move.TAKE, LeaseRecord(me, lease_seconds, wall, wall, record.transitions + 1), seen.version,
                 record.holder, 0.0)


def expires_in(seen: Seen, lease_seconds: int, now: float) -> float:
    """Seconds until the Lease as seen expires for this candidate (0: expired, released or absent). A
    Lease without a usable leaseDurationSeconds is given this candidate's own, never less."""
    record = seen.record
    if record is None or not record.holder:
        return 0.0
    duration = record.duration_seconds if record.duration_seconds > 0 else lease_seconds
    return max(0.0, seen.since + duration - now)


def released(record: LeaseRecord) -> LeaseRecord:
    """What a leader writes when it stops on purpose (client-go's ReleaseOnCancel): no holder, a one-second
    lease, the transitions kept, so a standby takes it at its next look instead of a whole lease later."""
    return replace(record, holder="", duration_seconds=1)


def renew_deadline(lease_seconds: int) -> float:
    """How long a leader may go without a successful renewal before it must stop acting."""
    return lease_seconds * 2.0 / 3.0


def renew_period(lease_seconds: int) -> float:
    """How often the leader renews."""
    return lease_seconds / 3.0


def retry_period(lease_seconds: int) -> float:
    """How soon a leader tries again after a renewal failed (several tries fit before the deadline), and how
    often a standby looks at the Lease (so it sees a renewal, and counts the expiry from it, soon after it)."""
    return max(0.5, lease_seconds / 10.0)


def must_stop(last_renewed: float, now: float, lease_seconds: int) -> bool:
    """True once the leader has gone `renew_deadline` without a renewal it knows landed. `last_renewed` is
    when that renewal was sent (not answered), so the deadline counts from the earliest moment another
    candidate could have seen it."""
    return now - last_renewed >= renew_deadline(lease_seconds)


def check_lease_seconds(value: int) -> str | None:
    """A refusal for an unusable --lease-seconds, or None."""
    if value < MIN_LEASE_SECONDS:
        return (f"--lease-seconds {value} is too short: at least {MIN_LEASE_SECONDS} (the leader renews every "
                f"third of it and stops acting after two thirds without a renewal)")
    return None


def check_lease_name(name: str) -> str | None:
    """A refusal for a --lease-name the API server would refuse, or None (empty: the default is used)."""
    if name and (len(name) > 253 or not _DNS_SUBDOMAIN.match(name)):
        return f"--lease-name {name!r} is not a valid object name (lower-case letters, digits, '-' and '.')"
    return None


def default_lease_name(namespaces: Iterable[str]) -> str:
    """The Lease replicas share when none is named: one for the whole cluster, or one per set of watched
    namespaces, so shards that watch different namespaces never wait on each other's Lease."""
    watched = sorted(set(namespaces))
    if not watched:
        return DEFAULT_LEASE_NAME
    return f"{DEFAULT_LEASE_NAME}-{hashlib.sha256(','.join(watched).encode()).hexdigest()[:10]}"
