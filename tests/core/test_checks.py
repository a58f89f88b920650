"""core.checks: which checks a release runs, when each is due, and what a measurement does to it."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from hotfix_operator.api import CheckPhase, CheckStage
from hotfix_operator.core.check_model import Checks, CheckSpec, CheckState, Measurement
from hotfix_operator.core.checks import (
    TemplateError,
    due,
    failure_line,
    plan,
    record,
    render,
    seconds_to_next,
    verdict,
)
from tests.support.releases import T0

PRE, POST = CheckStage.PRE_PROMOTION, CheckStage.POST_PROMOTION


def http_check(name: str = "health", **fields: Any) -> CheckSpec:
    return CheckSpec.model_validate({"name": name, "http": {"url": "http://checkout-preview/healthz"}, **fields})


def state(spec: CheckSpec, stage: CheckStage = PRE) -> CheckState:
    return CheckState(name=spec.name, stage=stage, source="release", spec=spec)


def measure(states: tuple[CheckState, ...], outcome: str, at: int, name: str = "health",
            value: str = "200") -> tuple[CheckState, ...]:
    m = Measurement(name=name, stage=states[0].stage, outcome=outcome, at=T0 + datetime.timedelta(seconds=at),
                    value=value, message=f"answered {value}")
    return record(states, [m], T0)


class TestPlan:
    def test_the_policys_checks_come_first_and_a_release_cannot_shadow_them(self) -> None:
        policy = Checks(pre_promotion=(http_check("policy-health"),))
        release = Checks(pre_promotion=(http_check("mine"),), post_promotion=(http_check("errors"),))
        planned = plan(policy, release)
        assert [(s.name, s.source, s.stage) for s in planned] == [
            ("policy-health", "policy", PRE), ("mine", "release", PRE), ("errors", "release", POST)]
        with pytest.raises(TemplateError, match="used twice"):
            plan(policy, Checks(post_promotion=(http_check("policy-health"),)))

    def test_a_check_needs_exactly_one_provider(self) -> None:
        with pytest.raises(ValueError, match="exactly one of http, prometheus, webhook or kubernetes"):
            CheckSpec.model_validate({"name": "x"})
        with pytest.raises(ValueError, match="exactly one"):
            CheckSpec.model_validate({"name": "x", "http": {"url": "http://a"}, "kubernetes": {}})


class TestRender:
    def test_fills_known_names_and_refuses_unknown_or_empty_ones(self) -> None:
        values = {"previewService": "checkout-preview", "greenPodHash": "7d4f", "namespace": "shop"}
        assert render("http://{{ previewService }}.{{namespace}}/h?hash={{ greenPodHash }}", values) == \
            "http://checkout-preview.shop/h?hash=7d4f"
        with pytest.raises(TemplateError, match="unknown template variable"):
            render("http://{{ secret }}/", values)
        with pytest.raises(TemplateError, match="has no value"):
            render("http://{{ bluePodHash }}/", values)


class TestMeasurements:
    def test_a_check_is_due_after_its_initial_delay_then_every_interval_counted_in_whole_seconds(self) -> None:
        """Recorded times are whole seconds cut down, so each wait gets one second on top: the stage that
        started "at T0" may have started at T0 + 0.9 s."""
        states = (state(http_check(initialDelaySeconds=3, intervalSeconds=5, count=3)),)
        assert due(states, PRE, T0, T0 + datetime.timedelta(seconds=3)) == ()
        assert len(due(states, PRE, T0, T0 + datetime.timedelta(seconds=4))) == 1
        assert due(states, POST, T0, T0 + datetime.timedelta(seconds=4)) == ()
        after = measure(states, "pass", 4)
        assert due(after, PRE, T0, T0 + datetime.timedelta(seconds=9)) == ()
        assert seconds_to_next(after, PRE, T0, T0 + datetime.timedelta(seconds=9)) == 1.0
        assert len(due(after, PRE, T0, T0 + datetime.timedelta(seconds=10))) == 1

    def test_without_an_initial_delay_the_first_measurement_is_due_when_the_stage_starts(self) -> None:
        states = (state(http_check(intervalSeconds=1)),)
        assert len(due(states, PRE, T0, T0)) == 1

    def test_a_measurement_recorded_at_a_second_is_not_repeated_at_the_next_one(self) -> None:
        """Taken at 12:00:00.95 and recorded as 12:00:00, it would be due again at 12:00:01, 50 ms later:
        a one-second interval must keep the measurements at least a second apart (CI saw two in 160 ms)."""
        after = measure((state(http_check(intervalSeconds=1, count=3)),), "pass", 0)
        assert due(after, PRE, T0, T0 + datetime.timedelta(seconds=1)) == ()
        assert len(due(after, PRE, T0, T0 + datetime.timedelta(seconds=2))) == 1

    def test_passes_after_count_measurements_within_the_failure_limit(self) -> None:
        states = (state(http_check(count=3, failureLimit=1)),)
        states = measure(states, "pass", 0)
        states = measure(states, "fail", 5, value="500")
        assert states[0].phase == CheckPhase.RUNNING and states[0].failures == 1
        states = measure(states, "pass", 10)
        assert states[0].phase == CheckPhase.PASSED and states[0].measurements == 3
        assert verdict(states, PRE).passed

    def test_one_failure_past_the_limit_fails_and_names_value_and_threshold(self) -> None:
        states = (state(http_check(count=5, failureLimit=1)),)
        states = measure(states, "fail", 0, value="500")
        states = measure(states, "fail", 5, value="503")
        result = verdict(states, PRE)
        assert states[0].phase == CheckPhase.FAILED and result.failed is not None and not result.passed
        line = failure_line(result.failed)
        assert "check health (http) failed 2 of 2" in line and "last value 503" in line and "[200]" in line

    def test_errors_count_only_in_a_row_and_are_not_failures(self) -> None:
        states = (state(http_check(count=2, consecutiveErrorLimit=2)),)
        for at in (0, 5):
            states = measure(states, "error", at)
        states = measure(states, "pass", 10)
        assert states[0].consecutive_errors == 0 and states[0].errors == 2 and states[0].failures == 0
        for at in (15, 20, 25):
            states = measure(states, "error", at)
        assert states[0].phase == CheckPhase.ERROR
        assert "could not be evaluated 3 times in a row" in failure_line(states[0])

    def test_a_duration_check_passes_once_its_time_is_over(self) -> None:
        states = (state(http_check(durationSeconds=10, intervalSeconds=4)),)
        states = measure(states, "pass", 0)
        states = measure(states, "pass", 8)
        assert states[0].phase == CheckPhase.RUNNING
        states = measure(states, "pass", 12)
        assert states[0].phase == CheckPhase.PASSED

    def test_a_webhook_hold_is_not_a_result_until_its_limit(self) -> None:
        spec = CheckSpec.model_validate({"name": "gate", "webhook": {"url": "http://gate/", "maxHoldSeconds": 10}})
        states = (state(spec),)
        states = measure(states, "hold", 0, name="gate")
        states = measure(states, "hold", 5, name="gate")
        assert states[0].phase == CheckPhase.RUNNING and states[0].measurements == 0
        states = measure(states, "hold", 10, name="gate")
        assert states[0].phase == CheckPhase.FAILED and "longer than 10s" in states[0].message

    def test_a_finished_check_ignores_late_measurements(self) -> None:
        states = measure((state(http_check()),), "pass", 0)
        assert measure(states, "fail", 5) == states
