"""core.check_eval: what an answer means. An answer that cannot be judged is an error, never a pass."""

from __future__ import annotations

from typing import Any

import pytest

from hotfix_operator.core.check_eval import judge_http, judge_pods, judge_prometheus, judge_webhook
from hotfix_operator.core.check_model import HttpProvider, KubernetesProvider, PrometheusProvider

RANGE = PrometheusProvider(address="main", query="x", min=0, max=0.05)


def vector(*values: str) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector",
                                          "result": [{"metric": {}, "value": [1.0, v]} for v in values]}}


class TestHttp:
    def test_status_and_json_body(self) -> None:
        http = HttpProvider.model_validate({"url": "http://a", "expectedStatus": [200, 204],
                                            "body": {"jsonPath": "$.checks[0].status", "value": "ok"}})
        assert judge_http(200, '{"checks": [{"status": "ok"}]}', http)[0] == "pass"
        outcome, value, message = judge_http(200, '{"checks": [{"status": "degraded"}]}', http)
        assert (outcome, value) == ("fail", '"degraded"') and "not == ok" in message
        assert judge_http(500, "", http)[:2] == ("fail", "500")

    def test_numeric_comparison_and_regex(self) -> None:
        latency = HttpProvider.model_validate({"url": "http://a", "body": {"jsonPath": "$.p99",
                                                                            "op": "<=", "value": "250"}})
        assert judge_http(200, '{"p99": 180}', latency)[0] == "pass"
        assert judge_http(200, '{"p99": 400}', latency)[0] == "fail"
        assert judge_http(200, '{"p99": "fast"}', latency)[0] == "fail"
        regex = HttpProvider.model_validate({"url": "http://a", "body": {"regex": "version=4\\.1\\.2"}})
        assert judge_http(200, "ok version=4.1.2 build 7", regex)[0] == "pass"
        assert judge_http(200, "ok version=4.1.1", regex)[0] == "fail"


class TestPrometheus:
    def test_in_range_passes_and_out_of_range_fails_with_the_value(self) -> None:
        assert judge_prometheus(vector("0.01"), RANGE)[:2] == ("pass", "0.01")
        outcome, value, message = judge_prometheus(vector("0.2"), RANGE)
        assert (outcome, value) == ("fail", "0.2") and "above the maximum 0.05" in message

    @pytest.mark.parametrize(("answer", "why"), [
        (vector(), "no series"),
        (vector("NaN"), "NaN"),
        (vector("0.01", "0.02"), "2 series"),
        ({"status": "error", "error": "parse error"}, "parse error"),
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "matrix"),
    ])
    def test_what_cannot_be_judged_is_an_error(self, answer: dict[str, Any], why: str) -> None:
        outcome, _, message = judge_prometheus(answer, RANGE)
        assert outcome == "error" and why in message


def test_webhook_2xx_passes_202_holds_anything_else_fails() -> None:
    assert judge_webhook(200, "")[0] == "pass"
    assert judge_webhook(202, "")[0] == "hold"
    assert judge_webhook(409, "not now")[:2] == ("fail", "409")


def pod(name: str, restarts: int = 0, ready: bool = True, waiting: str | None = None) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {"metadata": {"name": name}, "status": {
        "containerStatuses": [{"restartCount": restarts, "state": state}],
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_green_pods_restarts_crashloops_and_readiness() -> None:
    spec = KubernetesProvider(max_restarts=1)
    assert judge_pods([pod("a"), pod("b", restarts=1)], spec)[0] == "pass"
    assert "2 container restarts" in judge_pods([pod("a", restarts=2)], spec)[2]
    assert "CrashLoopBackOff: a" in judge_pods([pod("a", waiting="CrashLoopBackOff")], spec)[2]
    assert "not ready: b" in judge_pods([pod("a"), pod("b", ready=False)], spec)[2]
    assert judge_pods([], spec)[0] == "error"
