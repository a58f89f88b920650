"""leader.Elector against a Lease kept in memory with the API server's optimistic concurrency (a write names
the resourceVersion it read, or fails with 409): the standby's wait, the leader's renewals without reads,
the way back to reading after a conflict, the fencing on another holder and at the deadline, the release.
The same against the real API server, with real processes: tests/integration/test_ha.py."""

from __future__ import annotations

import datetime
import threading
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from hotfix_operator.core import leadership
from hotfix_operator.core.leadership import Claim, LeaseRecord, Move
from hotfix_operator.leader import Elector, LeaseLock

pytestmark = pytest.mark.unit
WALL = datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)
LEASE = 9


@dataclass
class MemoryLease:
    """One Lease as the API server keeps it: a record and a resourceVersion that every write bumps."""

    record: LeaseRecord | None = None
    version: int = 0
    reads: int = 0
    writes: list[Claim] = field(default_factory=list)

    def read(self) -> tuple[LeaseRecord | None, str | None]:
        self.reads += 1
        return self.record, (str(self.version) if self.record else None)

    def write(self, claim: Claim) -> str | None:
        exists = self.record is not None
        if (claim.move is Move.CREATE and exists) or (claim.move is not Move.CREATE and claim.version != str(
                self.version)):
            return None  # 409
        self.writes.append(claim)
        self.record, self.version = claim.record, self.version + 1
        return str(self.version)

    def __str__(self) -> str:
        return "Lease test/lease"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(lease: MemoryLease, me: str, clock: Clock, fences: list[str] | None = None) -> Elector:
    fenced = fences if fences is not None else []
    return Elector(cast(LeaseLock, lease), me, LEASE, clock=clock, wall=lambda: WALL, fence=fenced.append)


def test_the_first_creates_a_second_waits_and_renewals_need_no_reads() -> None:
    lease, clock = MemoryLease(), Clock()
    a, b = elector(lease, "a", clock), elector(lease, "b", clock)
    a.acquire()
    assert a.leading and lease.record is not None and lease.record.holder == "a"
    claim = b.try_once()
    assert claim is not None and claim.move is Move.WAIT and claim.holder == "a"
    reads = lease.reads
    for _ in range(3):
        clock.now += leadership.renew_period(LEASE)
        renewed = a.try_once()
        assert renewed is not None and renewed.move is Move.RENEW
    assert lease.reads == reads  # renewed at the version its own last write left
    assert a.last_renewed == clock.now


def test_a_conflict_sends_the_leader_back_to_reading_and_another_holder_fences_it() -> None:
    lease, clock, fences = MemoryLease(), Clock(), []
    a = elector(lease, "a", clock, fences)
    a.acquire()
    # another candidate wrote the Lease behind a's back (a partition healed after it took over)
    lease.record, lease.version = LeaseRecord("b", LEASE, WALL, WALL, 1), lease.version + 1
    assert a.try_once() is None  # 409 at the version a wrote last
    reads = lease.reads
    claim = a.try_once()
    assert lease.reads == reads + 1
    assert claim is not None and claim.move is Move.WAIT and claim.holder == "b"
    # the renew loop itself fences on that answer
    loop = elector(lease, "a", clock, fences)
    loop.leading, loop.seen = True, a.seen
    thread = threading.Thread(target=loop._renew_loop)
    thread.start()
    thread.join(timeout=5)
    assert fences and "held by b, not by a" in fences[0]


def test_the_watchdog_fences_two_thirds_into_the_lease_without_a_renewal() -> None:
    lease, clock, fences = MemoryLease(), Clock(), []
    a = elector(lease, "a", clock, fences)
    a.acquire()
    changes: list[bool] = []
    a.on_change = changes.append
    clock.now = a.last_renewed + leadership.renew_deadline(LEASE) - 0.01
    assert a.healthy()
    clock.now = a.last_renewed + leadership.renew_deadline(LEASE)
    assert not a.healthy()
    thread = threading.Thread(target=a._watchdog)
    thread.start()
    thread.join(timeout=5)
    assert fences and "not renewed for 6.0s (deadline 6.0s)" in fences[0]
    assert changes == [False]


def test_a_standby_takes_an_expired_lease_and_a_released_one_at_once() -> None:
    lease, clock = MemoryLease(), Clock()
    a, b = elector(lease, "a", clock), elector(lease, "b", clock)
    a.acquire()
    assert b.try_once() is not None  # b sees a's version now
    clock.now += LEASE - 0.5
    waiting = b.try_once()
    assert waiting is not None and waiting.move is Move.WAIT and waiting.expires_in == pytest.approx(0.5)
    clock.now += 0.5
    taken = b.try_once()
    assert taken is not None and taken.move is Move.TAKE
    assert lease.record == LeaseRecord("b", LEASE, WALL, WALL, 1)
    b.leading = True
    b.release()
    assert lease.record == LeaseRecord("", 1, WALL, WALL, 1)
    c = elector(lease, "c", clock)
    took = c.try_once()
    assert took is not None and took.move is Move.TAKE and lease.record.holder == "c"


def test_a_release_by_a_leader_that_lost_the_lease_writes_nothing() -> None:
    lease, clock = MemoryLease(), Clock()
    a = elector(lease, "a", clock)
    a.acquire()
    lease.record, lease.version = LeaseRecord("b", LEASE, WALL, WALL, 1), lease.version + 1
    writes = len(lease.writes)
    a.release()
    assert len(lease.writes) == writes and lease.record.holder == "b"


def test_the_health_server_answers_for_a_standby() -> None:
    import urllib.error
    import urllib.request

    from hotfix_operator.leader import HealthServer

    healthy = {"ok": True}
    server = HealthServer(0, lambda: healthy["ok"])
    port = cast(Any, server.server).server_address[1]
    try:
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status == 200
        healthy["ok"] = False
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert refused.value.code == 503
    finally:
        server.close()
