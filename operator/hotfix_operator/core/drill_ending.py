"""DrillEnding: a drill's verdict is in (core.drill); remove green without moving traffic, give both
Services their original selectors back, then DrillPassed or DrillFailed. Pure.

The active Service was pinned to blue's pod-template-hash and stayed on it throughout (pinning keeps the
very pods that served), so this is core.traffic's tear-down with blue as the serving side: green is
deleted only while the EndpointSlices list only blue pods, and the drill ends only once both Services
have their original selectors and blue is seen serving behind them."""

from __future__ import annotations

from hotfix_operator.api import ConditionType, Phase, Reason
from hotfix_operator.core.drill import report
from hotfix_operator.core.step import Step
from hotfix_operator.core.traffic import green_pods_left, hold_traffic, owns_green, switch, tear_down_green


def ending(s: Step) -> None:
    blue_hash = s.bg.blue_hash
    if s.bg.original_selector is not None and blue_hash is not None:
        if (owns_green(s) or green_pods_left(s)) and s.obs.service is not None:
            hold_traffic(s, blue_hash, None, "drill: keep traffic on blue while green is removed")
            if switch(s, blue_hash, "blue") is None:
                return
        if tear_down_green(s, blue_hash, "blue"):
            return
    drill = s.status.drill
    assert drill is not None
    passed = drill.outcome == "Passed"
    s.stamp(completed=s.now)
    service = s.spec.target.service
    line = f"{drill.message}; green removed, Service {service} has its original selector ({report(drill)})"
    s.set_condition(ConditionType.TRAFFIC_SWITCHED, "False", Reason.DRILL_STOPPED_BEFORE_SWITCH,
                    f"drill: traffic never left blue; Service {s.spec.target.service} has its original selector")
    s.enter(Phase.DRILL_PASSED if passed else Phase.DRILL_FAILED, f"drill {'passed' if passed else 'failed'}: {line}",
            reason=Reason.DRILL_PASSED if passed else Reason.DRILL_FAILED, warning=not passed)
