"""The Lease decision (core.leadership): who may take or renew a Lease, judged on the candidate's own clock,
and when a leader must stop. Two candidates racing on the real API server: tests/integration/test_ha.py."""

from __future__ import annotations

import datetime

import pytest

from hotfix_operator.core import leadership
from hotfix_operator.core.leadership import LeaseRecord, Move, Seen

WALL = datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)
EARLIER = WALL - datetime.timedelta(hours=1)
LEASE = 15


def held_by(holder: str, duration: int = LEASE, transitions: int = 2) -> LeaseRecord:
    return LeaseRecord(holder, duration, EARLIER, EARLIER, transitions)


def test_no_lease_is_created_held_from_now() -> None:
    claim = leadership.decide(Seen(None, None, 100.0), "a", LEASE, 100.0, WALL)
    assert claim.move is Move.CREATE
    assert claim.record == LeaseRecord("a", LEASE, WALL, WALL, 0)
    assert claim.version is None


def test_held_by_another_and_not_expired_waits_for_what_is_left() -> None:
    seen = Seen(held_by("b"), "7", since=100.0)
    claim = leadership.decide(seen, "a", LEASE, 110.0, WALL)
    assert claim.move is Move.WAIT
    assert (claim.record, claim.holder, claim.expires_in) == (None, "b", pytest.approx(5.0))


def test_expiry_counts_from_when_this_candidate_saw_the_version_not_from_renew_time() -> None:
    # renewTime an hour ago by the holder's clock means nothing: a candidate that has just seen it waits a lease
    seen = leadership.observe(None, held_by("b"), "7", now=500.0)
    assert leadership.decide(seen, "a", LEASE, 500.0 + LEASE - 0.1, WALL).move is Move.WAIT
    assert leadership.decide(seen, "a", LEASE, 500.0 + LEASE, WALL).move is Move.TAKE


def test_seeing_the_same_version_again_keeps_the_first_sighting_and_a_new_one_restarts_it() -> None:
    first = leadership.observe(None, held_by("b"), "7", now=100.0)
    assert leadership.observe(first, held_by("b"), "7", now=112.0) is first
    renewed = leadership.observe(first, held_by("b"), "8", now=112.0)
    assert renewed.since == 112.0
    assert leadership.decide(renewed, "a", LEASE, 120.0, WALL).move is Move.WAIT


def test_an_expired_lease_is_taken_with_one_more_transition_at_the_version_read() -> None:
    seen = Seen(held_by("b", transitions=2), "7", since=100.0)
    claim = leadership.decide(seen, "a", LEASE, 100.0 + LEASE, WALL)
    assert claim.move is Move.TAKE
    assert claim.record == LeaseRecord("a", LEASE, WALL, WALL, 3)
    assert (claim.version, claim.holder) == ("7", "b")


def test_the_holders_own_duration_decides_expiry_not_the_candidates() -> None:
    seen = Seen(held_by("b", duration=60), "7", since=100.0)
    assert leadership.decide(seen, "a", 10, 130.0, WALL).move is Move.WAIT
    assert leadership.decide(seen, "a", 10, 160.0, WALL).move is Move.TAKE


def test_a_lease_without_a_duration_is_given_the_candidates_own() -> None:
    seen = Seen(held_by("b", duration=0), "7", since=100.0)
    assert leadership.decide(seen, "a", LEASE, 100.0 + LEASE - 1, WALL).move is Move.WAIT


def test_a_released_lease_is_taken_at_once() -> None:
    seen = Seen(leadership.released(held_by("b")), "9", since=100.0)
    claim = leadership.decide(seen, "a", LEASE, 100.0, WALL)
    assert claim.move is Move.TAKE
    assert claim.record is not None and claim.record.transitions == 3


def test_the_holder_renews_keeping_acquire_time_and_transitions() -> None:
    seen = Seen(held_by("a", transitions=4), "7", since=100.0)
    claim = leadership.decide(seen, "a", LEASE, 100.0 + 10 * LEASE, WALL)
    assert claim.move is Move.RENEW
    assert claim.record == LeaseRecord("a", LEASE, EARLIER, WALL, 4)
    assert claim.version == "7"  # the write is refused (409) if anyone wrote since: the renew conflict


def test_a_renew_conflict_rereads_and_finds_another_holder_so_the_old_leader_does_not_renew() -> None:
    # the leader's renewal at version 7 lost (409); the re-read shows b took the Lease at version 8
    mine = Seen(held_by("a"), "7", since=100.0)
    after = leadership.observe(mine, held_by("b", transitions=3), "8", now=101.0)
    claim = leadership.decide(after, "a", LEASE, 101.0, WALL)
    assert claim.move is Move.WAIT
    assert claim.holder == "b"


def test_the_leader_stops_two_thirds_into_the_lease_before_anyone_may_take_it() -> None:
    sent = 100.0
    assert not leadership.must_stop(sent, sent + 9.9, LEASE)
    assert leadership.must_stop(sent, sent + 10.0, LEASE)
    # a standby saw that renewal no earlier than it was sent: it may take it only a whole lease later
    standby = Seen(held_by("a"), "7", since=sent)
    assert leadership.decide(standby, "b", LEASE, sent + leadership.renew_deadline(LEASE), WALL).move is Move.WAIT


def test_timings_fit_several_renewals_into_the_deadline() -> None:
    assert leadership.renew_period(LEASE) == 5.0
    assert leadership.renew_deadline(LEASE) == 10.0
    # a renewal fails one period after the last good one: three more tries still fit before the deadline
    left = leadership.renew_deadline(LEASE) - leadership.renew_period(LEASE)
    assert 3 * leadership.retry_period(LEASE) < left
    # a standby looks often, so it counts the expiry from soon after the last renewal
    assert leadership.retry_period(LEASE) == 1.5 and leadership.retry_period(3) == 0.5


def test_bad_settings_are_refused_with_what_to_fix() -> None:
    assert "at least 3" in (leadership.check_lease_seconds(2) or "")
    assert leadership.check_lease_seconds(3) is None
    assert "not a valid object name" in (leadership.check_lease_name("Hotfix_Operator") or "")
    assert leadership.check_lease_name("") is None
    assert leadership.check_lease_name("hotfix-operator.shard-a") is None


def test_each_set_of_watched_namespaces_gets_a_lease_of_its_own() -> None:
    assert leadership.default_lease_name(()) == "hotfix-operator"
    a, b = leadership.default_lease_name(["team-a", "team-b"]), leadership.default_lease_name(["team-c"])
    assert a != b and a.startswith("hotfix-operator-")
    assert leadership.default_lease_name(["team-b", "team-a", "team-a"]) == a
    assert leadership.check_lease_name(a) is None
