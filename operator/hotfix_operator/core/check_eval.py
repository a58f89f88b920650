"""What an answer means for a check: an HTTP status and body, a Prometheus query result, a webhook's
answer, green's pods. The shell fetches; these functions judge. Each returns (outcome, value, message),
where an outcome is "pass", "fail" (the target answered, wrongly), "error" (nothing to judge) or "hold".
Pure."""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from hotfix_operator.core.check_model import BodyCondition, HttpProvider, KubernetesProvider, PrometheusProvider

Outcome = Literal["pass", "fail", "error", "hold"]
Judgement = tuple[Outcome, str | None, str]

_PATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
_MISSING = object()


def json_path(document: Any, path: str) -> Any:
    """The `$.a.b[0]['c-d']` subset of JSONPath: enough to name one value, nothing that selects many."""
    if not path.startswith("$"):
        raise ValueError(f"JSONPath {path!r} must start with $")
    value, rest = document, path[1:]
    while rest:
        step = _PATH_STEP.match(rest)
        if step is None:
            raise ValueError(f"JSONPath {path!r}: cannot read {rest!r} (use .field, [index] or ['field'])")
        field, index, quoted = step.groups()
        if index is not None:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else _MISSING
        else:
            key = field if field is not None else quoted
            value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
        if value is _MISSING:
            return _MISSING
        rest = rest[step.end():]
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def judge_body(body: str, condition: BodyCondition) -> Judgement:
    if condition.regex is not None:
        found = re.search(condition.regex, body)
        shown = found.group(0)[:80] if found else body[:80]
        return ("pass" if found else "fail"), shown, "" if found else f"body does not match /{condition.regex}/"
    assert condition.json_path is not None
    try:
        document = json.loads(body)
    except ValueError:
        return "fail", body[:80], "body is not JSON"
    value = json_path(document, condition.json_path)
    if value is _MISSING:
        return "fail", None, f"body has no {condition.json_path}"
    try:
        ok = compare(value, condition.op, condition.value or "")
    except ValueError as exc:
        return "fail", json.dumps(value)[:80], f"{condition.json_path}: {exc}"
    shown = json.dumps(value)[:80]
    return ("pass" if ok else "fail"), shown, "" if ok else f"{condition.json_path} = {shown}, not {condition.op} " \
        f"{condition.value}"


def compare(value: Any, op: str, expected: str) -> bool:
    """The body's value against the spec's (a string in the API): numbers compare as numbers, booleans
    as true/false, anything else as text; order comparisons need numbers."""
    if _is_number(value):
        try:
            return _COMPARE[op](value, float(expected))
        except ValueError:
            raise ValueError(f"is the number {value}, compared with {expected!r}, which is not one") from None
    if op not in ("==", "!="):
        raise ValueError(f"is {json.dumps(value)[:40]}, not a number, so it cannot be compared with {op}")
    if isinstance(value, bool):
        return _COMPARE[op](json.dumps(value), expected.strip().lower())
    return _COMPARE[op](value if isinstance(value, str) else json.dumps(value), expected)


def judge_http(status: int, body: str, http: HttpProvider) -> Judgement:
    if status not in http.expected_status:
        return "fail", str(status), f"answered HTTP {status}, expected {list(http.expected_status)}"
    if http.body is None:
        return "pass", str(status), f"answered HTTP {status}"
    outcome, value, message = judge_body(body, http.body)
    return outcome, value, message or f"answered HTTP {status}; body condition holds"


def judge_webhook(status: int, body: str) -> Judgement:
    if status == 202:
        return "hold", "202", "the webhook holds the check (202 Accepted); asking again next interval"
    if 200 <= status < 300:
        return "pass", str(status), f"the webhook answered {status}"
    return "fail", str(status), f"the webhook answered {status}: {body[:120]}"


def judge_prometheus(answer: Mapping[str, Any], prom: PrometheusProvider) -> Judgement:
    """An instant query's answer; no series, several series, NaN and non-numbers are errors, never passes."""
    if answer.get("status") != "success":
        return "error", None, f"Prometheus refused the query: {answer.get('error', answer.get('status'))}"
    data = answer.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list):
        raw = result[1] if len(result) == 2 else None
    elif kind == "vector" and isinstance(result, list):
        if not result:
            return "error", None, "the query returned no series"
        if len(result) > 1:
            return "error", None, f"the query returned {len(result)} series; make it return one (e.g. sum(...))"
        raw = (result[0].get("value") or [None, None])[1]
    else:
        return "error", None, f"the query returned a {kind}; give a query that returns one number"
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "error", None, f"the query's value {raw!r} is not a number"
    if math.isnan(value):
        return "error", "NaN", "the query's value is NaN (no data to judge)"
    shown = f"{value:g}"
    if prom.min is not None and value < prom.min:
        return "fail", shown, f"{shown} is below the minimum {prom.min:g}"
    if prom.max is not None and value > prom.max:
        return "fail", shown, f"{shown} is above the maximum {prom.max:g}"
    return "pass", shown, f"{shown} is within range"


def judge_pods(pods: Sequence[Mapping[str, Any]], spec: KubernetesProvider) -> Judgement:
    """Green's pods (as the API server lists them): restarts, CrashLoopBackOff, readiness."""
    if not pods:
        return "error", None, "green has no pods"
    restarts, crashing, not_ready = 0, [], []
    for pod in pods:
        name = str((pod.get("metadata") or {}).get("name"))
        status = pod.get("status") or {}
        for container in status.get("containerStatuses") or []:
            restarts += int(container.get("restartCount") or 0)
            if ((container.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff":
                crashing.append(name)
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        if ready is None or ready.get("status") != "True":
            not_ready.append(name)
    value = f"restarts={restarts} crashLoop={len(crashing)} notReady={len(not_ready)}"
    if crashing:
        return "fail", value, f"pods in CrashLoopBackOff: {', '.join(sorted(set(crashing)))}"
    if restarts > spec.max_restarts:
        return "fail", value, f"{restarts} container restarts, more than maxRestarts {spec.max_restarts}"
    if not_ready:
        return "fail", value, f"pods not ready: {', '.join(not_ready)}"
    return "pass", value, f"{len(pods)} pods ready, {restarts} restarts"
