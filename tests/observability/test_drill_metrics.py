"""Drills are counted apart: hotfix_drills_total and hotfix_drill_stage_seconds, and nothing the SLA
panels and alerts read (releases, phases, SLA, approval wait, time to production) ever sees one."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from hotfix_operator.api import Phase
from hotfix_operator.metrics import Metrics
from tests.core.test_drills import drill_release, run, world_for
from tests.core.test_lifecycle_checks import answers

pytestmark = pytest.mark.unit
SLA_SERIES = ("hotfix_releases_total", "hotfix_phase_transitions_total", "hotfix_sla_breaches_total",
              "hotfix_time_to_production_seconds", "hotfix_approval_wait_seconds", "hotfix_active_releases",
              "hotfix_sla_remaining_seconds", "hotfix_provenance_verifications_total", "hotfix_rollbacks_total")


def test_a_drill_counts_only_in_the_drill_series() -> None:
    world = world_for(drill_release())
    world.answer = answers({"health": ["pass"]})
    _, decisions, _ = run(world)
    metrics = Metrics(CollectorRegistry())
    before = None
    for decision in decisions:
        if before is not None:
            metrics.record(before, decision.status, "shop", "drill-1")
        before = decision.status
    assert before is not None and before.phase == Phase.DRILL_PASSED
    get = metrics.registry.get_sample_value
    assert get("hotfix_drills_total", {"namespace": "shop", "outcome": "DrillPassed"}) == 1
    assert get("hotfix_drill_stage_seconds_count", {"stage": "verification"}) == 1
    assert get("hotfix_drill_stage_seconds_count", {"stage": "detection"}) is None  # not measured
    for family in metrics.registry.collect():
        if family.name in SLA_SERIES or family.name + "_total" in SLA_SERIES:
            assert all(s.value == 0 for s in family.samples if not s.name.endswith("_created")), family.name
            assert not any("Drill" in str(s.labels) for s in family.samples), family.name
