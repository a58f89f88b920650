"""Running health checks, decided purely: which checks a release has (the policy's first, then its
own), which measurements are due, what a measurement does to a check, and what a stage's checks add
up to. The shell measures (shell: probes); nothing here connects anywhere."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hotfix_operator.api import CheckPhase, CheckStage
from hotfix_operator.core.check_model import Checks, CheckSpec, CheckState, Measurement

TEMPLATE = re.compile(r"\{\{\s*([A-Za-z]+)\s*\}\}")
# What a URL or query template may name; the values come from the release and the cluster, never free text.
VARIABLES = ("namespace", "release", "version", "incidentId", "activeService", "previewService",
             "greenDeployment", "greenPodHash", "bluePodHash")


class TemplateError(ValueError):
    pass


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill `{{ name }}` placeholders; an unknown or not-yet-known name is an error, never left blank."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in VARIABLES:
            raise TemplateError(f"unknown template variable {{{{ {name} }}}} (known: {', '.join(VARIABLES)})")
        if not values.get(name):
            raise TemplateError(f"{{{{ {name} }}}} has no value for this release")
        return values[name]

    return TEMPLATE.sub(fill, template)


def plan(policy: Checks, release: Checks) -> tuple[CheckState, ...]:
    """Every check the release runs: the policy's (which a requester cannot remove) and its own. A
    requester's check may not reuse a name the policy's checks use, so the policy's can't be shadowed."""
    states: list[CheckState] = []
    for stage in CheckStage:
        for source, specs in (("policy", policy.of(stage)), ("release", release.of(stage))):
            for spec in specs:
                states.append(CheckState(name=spec.name, stage=stage, source=source, spec=spec))  # type: ignore[arg-type]
    seen: dict[str, CheckState] = {}
    for state in states:
        if state.name in seen:
            other = seen[state.name]
            raise TemplateError(f"check name {state.name!r} is used twice ({other.source} {other.stage.value} and "
                                f"{state.source} {state.stage.value}); give each check its own name")
        seen[state.name] = state
    return tuple(states)


def of_stage(states: Iterable[CheckState], stage: CheckStage) -> tuple[CheckState, ...]:
    return tuple(s for s in states if s.stage == stage)


# Status times are whole seconds, cut down (controller.utcnow): a measurement recorded at 12:00:00 may have
# been taken at 12:00:00.95. A wait counted from a recorded time gets this step on top, so it lasts at least
# what the check asks (at most a step more); without it two measurements 1 s apart could come 50 ms apart.
CLOCK_STEP = datetime.timedelta(seconds=1)


def _at_least(since: datetime.datetime, seconds: float) -> datetime.datetime:
    """The first moment `seconds` have surely passed since a recorded time (no wait: `since` itself)."""
    return since + datetime.timedelta(seconds=seconds) + CLOCK_STEP if seconds > 0 else since


def _next_at(state: CheckState, stage_started: datetime.datetime) -> datetime.datetime:
    first = _at_least(stage_started, state.spec.initial_delay_seconds)
    if state.last_measured_at is None:
        return first
    return max(first, _at_least(state.last_measured_at, state.spec.interval_seconds))


def due(states: Iterable[CheckState], stage: CheckStage, stage_started: datetime.datetime,
        now: datetime.datetime) -> tuple[CheckState, ...]:
    return tuple(s for s in of_stage(states, stage) if not s.phase.finished and now >= _next_at(s, stage_started))


def seconds_to_next(states: Iterable[CheckState], stage: CheckStage, stage_started: datetime.datetime,
                    now: datetime.datetime) -> float | None:
    waiting = [_next_at(s, stage_started) for s in of_stage(states, stage) if not s.phase.finished]
    if not waiting:
        return None
    return max(0.0, (min(waiting) - now).total_seconds())


def record(states: tuple[CheckState, ...], measurements: Iterable[Measurement],
           stage_started: datetime.datetime) -> tuple[CheckState, ...]:
    """Fold this reconcile's measurements into the checks they belong to (others are left as they are)."""
    by_name = {m.name: m for m in measurements}
    return tuple(_apply(s, by_name[s.name], stage_started) if s.name in by_name and not s.phase.finished
                 and by_name[s.name].stage == s.stage else s for s in states)


def _apply(state: CheckState, m: Measurement, stage_started: datetime.datetime) -> CheckState:
    spec = state.spec
    changes: dict[str, object] = {"started_at": state.started_at or m.at, "phase": CheckPhase.RUNNING}
    if m.outcome == "hold":
        since = state.holding_since or m.at
        changes.update(holding_since=since, last_measured_at=m.at, message=m.message or "held by the webhook")
        limit = spec.webhook.max_hold_seconds if spec.webhook else 0
        if (m.at - since).total_seconds() >= limit:
            changes.update(phase=CheckPhase.FAILED, finished_at=m.at,
                           message=f"the webhook held the check longer than {limit}s")
        return state.model_copy(update=changes)
    changes.update(last_measured_at=m.at, holding_since=None)
    if m.outcome == "error":
        errors = state.consecutive_errors + 1
        changes.update(errors=state.errors + 1, consecutive_errors=errors, last_error=m.message,
                       message=f"could not evaluate ({errors} in a row, limit {spec.consecutive_error_limit}): "
                               f"{m.message}")
        if errors > spec.consecutive_error_limit:
            changes.update(phase=CheckPhase.ERROR, finished_at=m.at)
        return state.model_copy(update=changes)
    failures = state.failures + (1 if m.outcome == "fail" else 0)
    measured = state.measurements + 1
    changes.update(measurements=measured, failures=failures, consecutive_errors=0, last_value=m.value,
                   message=m.message)
    if failures > spec.failure_limit:
        changes.update(phase=CheckPhase.FAILED, finished_at=m.at)
    elif _enough(spec, measured, stage_started, m.at):
        changes.update(phase=CheckPhase.PASSED, finished_at=m.at)
    return state.model_copy(update=changes)


def _enough(spec: CheckSpec, measured: int, stage_started: datetime.datetime, at: datetime.datetime) -> bool:
    if spec.duration_seconds is not None:
        return at >= _at_least(stage_started, spec.initial_delay_seconds + spec.duration_seconds)
    return measured >= (spec.count or 1)


@dataclass(frozen=True)
class StageVerdict:
    passed: bool
    # the first check that failed or errored, if any
    failed: CheckState | None
    running: tuple[CheckState, ...]

    @property
    def summary(self) -> str:
        names = ", ".join(f"{s.name} ({s.measurements} measured)" for s in self.running)
        return f"running: {names}" if names else "all passed"


def verdict(states: Iterable[CheckState], stage: CheckStage) -> StageVerdict:
    mine = of_stage(states, stage)
    failed = next((s for s in mine if s.phase in (CheckPhase.FAILED, CheckPhase.ERROR)), None)
    running = tuple(s for s in mine if not s.phase.finished)
    return StageVerdict(passed=failed is None and not running, failed=failed, running=running)


def failure_line(state: CheckState) -> str:
    """What a person reads on the rollback: the check, its last value and what it needed."""
    spec = state.spec
    if state.phase == CheckPhase.ERROR:
        return (f"check {state.name} ({spec.provider}) could not be evaluated {state.consecutive_errors} times in a "
                f"row (consecutiveErrorLimit {spec.consecutive_error_limit}): {state.last_error}")
    return (f"check {state.name} ({spec.provider}) failed {state.failures} of {state.measurements} measurements "
            f"(failureLimit {spec.failure_limit}); last value {state.last_value}, needed {threshold(spec)}"
            + (f": {state.message}" if state.message else ""))


def threshold(spec: CheckSpec) -> str:
    if spec.http is not None:
        body = spec.http.body
        need = f"status in {list(spec.http.expected_status)}"
        if body is not None and body.json_path:
            need += f" and {body.json_path} {body.op} {body.value!r}"
        elif body is not None and body.regex:
            need += f" and a body matching /{body.regex}/"
        return need
    if spec.prometheus is not None:
        low = spec.prometheus.min if spec.prometheus.min is not None else "-inf"
        high = spec.prometheus.max if spec.prometheus.max is not None else "+inf"
        return f"a value in [{low}, {high}]"
    if spec.webhook is not None:
        return "a 2xx answer"
    assert spec.kubernetes is not None
    return f"restarts <= {spec.kubernetes.max_restarts}, no CrashLoopBackOff, every pod ready"
