"""Health checks in the shell: plan them at Verifying (the policy's and the release's, each target
judged by core.egress before anything connects), and measure the ones core.checks says are due.

A measurement never raises: whatever goes wrong is an "error" measurement with the reason, which the
check's consecutiveErrorLimit then weighs. Due checks are measured in parallel, each bounded by its
own timeout, so one slow target cannot hold the others."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlsplit

from hotfix_operator.adapters import check_http
from hotfix_operator.adapters.kube import KubeAdapter
from hotfix_operator.adapters.policies import CheckSettings, PolicyProblem, PolicyResolver, PolicySource
from hotfix_operator.api import Reason
from hotfix_operator.core import check_eval, egress
from hotfix_operator.core.check_model import CheckState, Measurement
from hotfix_operator.core.checks import TemplateError, plan, render
from hotfix_operator.core.model import Release, Status
from hotfix_operator.core.observations import CheckPlan
from hotfix_operator.core.undo import observed_green, run_state

# Stands in for a pod-template-hash at Verifying, when green does not exist yet: a hash may be in a
# URL's path or query, never in its host (the host is what the policy allows).
HASH_PLACEHOLDER = "0hashplaceholder0"


def variables(release: Release, status: Status, *, planning: bool = False) -> dict[str, str]:
    bg, t = run_state(status), release.spec.target  # while undoing, the undo's own run (core.undo)
    return {
        "namespace": release.namespace, "release": release.name, "version": release.spec.version,
        "incidentId": status.incident_id or "", "activeService": t.service, "previewService": t.preview_service or "",
        "greenDeployment": observed_green(release, status),
        "greenPodHash": HASH_PLACEHOLDER if planning else bg.green_hash or "",
        "bluePodHash": HASH_PLACEHOLDER if planning else bg.blue_hash or "",
    }


class Probes:
    def __init__(self, kube: KubeAdapter, policies: PolicyResolver, api_server: str | None,
                 resolve: Callable[[str], tuple[str, ...]] = check_http.resolve) -> None:
        self.kube = kube
        self.policies = policies
        self.api_server = api_server
        self.resolve = resolve

    # -- at Verifying ----------------------------------------------------------------------------

    def plan(self, release: Release, status: Status, policies: PolicySource) -> CheckPlan:
        try:
            policy = policies.for_namespace(release.namespace)
        except PolicyProblem as problem:
            return CheckPlan(ok=False, reason=problem.reason, message=str(problem), transient=problem.transient)
        settings = policy.checks
        try:
            states = plan(settings.checks, release.spec.checks)
        except TemplateError as exc:
            return CheckPlan(ok=False, reason=Reason.CHECK_INVALID, message=str(exc))
        values = variables(release, status, planning=True)
        rules = egress.EgressRules(release.namespace, settings.allowed_hosts, self.api_server)
        planned = []
        for state in states:
            outcome = self._place(state, values, rules, settings, policy.name)
            if isinstance(outcome, CheckPlan):
                return outcome
            planned.append(outcome)
        return CheckPlan(ok=True, states=tuple(planned))

    def _place(self, state: CheckState, values: Mapping[str, str], rules: egress.EgressRules,
               settings: CheckSettings, policy: str) -> CheckState | CheckPlan:
        """The check with where it may connect, or the refusal (naming the check and the host)."""
        spec, where = state.spec, f"check {state.name} ({state.stage.value}, from the {state.source})"

        def invalid(message: str) -> CheckPlan:
            return CheckPlan(ok=False, reason=Reason.CHECK_INVALID, message=f"{where}: {message}")

        url, changes = spec.url, dict[str, Any]()
        try:
            if spec.prometheus is not None:
                render(spec.prometheus.query, values)
                address = settings.prometheus.get(spec.prometheus.address)
                if address is None:
                    listed = ", ".join(sorted(settings.prometheus)) or "none"
                    return invalid(f"names Prometheus {spec.prometheus.address!r}, which HotfixPolicy {policy} "
                                   f"does not list (it lists: {listed})")
                url, changes = address, {"address": address.rstrip("/")}
                rules = egress.EgressRules(rules.namespace, (*rules.allowed, egress.normalise(address)),
                                           rules.api_server)
            elif url is not None:
                url = render(url, values)
        except TemplateError as exc:
            return invalid(str(exc))
        if spec.http is not None and spec.http.headers_from is not None:
            refs = settings.header_sets.get(spec.http.headers_from)
            if refs is None:
                return invalid(f"uses header set {spec.http.headers_from!r}, which HotfixPolicy {policy} does not "
                               "define")
            changes["headers"] = refs
        if url is None:  # a kubernetes check reads the API server through the operator's own client
            return state
        host = urlsplit(url).hostname or ""
        if HASH_PLACEHOLDER in host:
            return invalid("a pod hash may appear in the URL's path or query, never in its host")
        verdict = egress.judge(url, rules, self.resolve(host) if host else ())
        if not verdict.ok or verdict.target is None:
            return CheckPlan(ok=False, reason=Reason.CHECK_TARGET_NOT_ALLOWED, message=(
                f"{where} may not connect to {host or url}: {verdict.problem}. Nothing was sent. Point it at a "
                f"Service in namespace {rules.namespace}, or ask a cluster administrator to add the host to "
                f"HotfixPolicy {policy}'s checks.allowedHosts"))
        return state.model_copy(update={**changes, "target": verdict.target.host_port, "explicit": verdict.explicit})

    # -- while a stage runs ----------------------------------------------------------------------

    def measure(self, release: Release, status: Status, due: tuple[CheckState, ...],
                now: datetime.datetime) -> tuple[Measurement, ...]:
        if not due:
            return ()
        values = variables(release, status)
        with ThreadPoolExecutor(max_workers=min(len(due), 8)) as pool:
            results = list(pool.map(lambda c: self._measure(release, status, c, values), due))
        return tuple(Measurement(name=c.name, stage=c.stage, outcome=outcome, at=now, value=value,
                                 message=text[:500]) for c, (outcome, value, text) in zip(due, results, strict=True))

    def _measure(self, release: Release, status: Status, check: CheckState,
                 values: Mapping[str, str]) -> check_eval.Judgement:
        spec = check.spec
        try:
            if spec.kubernetes is not None:
                return check_eval.judge_pods(self.kube.green_pods(release), spec.kubernetes)
            if spec.prometheus is not None:
                query = quote(render(spec.prometheus.query, values), safe="")
                endpoint = f"{check.address}/api/v1/query?query={query}"
                answer = self._send(release.namespace, check, "GET", endpoint)
                return check_eval.judge_prometheus(_json(answer), spec.prometheus)
            url = render(spec.url or "", values)
            if spec.webhook is not None:
                payload = webhook_payload(release, status, check)
                answer = self._send(release.namespace, check, "POST", url, json_body=payload)
                return check_eval.judge_webhook(answer.status, answer.body)
            assert spec.http is not None
            headers = self._headers(check, status.policy or "")
            answer = self._send(release.namespace, check, spec.http.method, url, headers=headers)
            return check_eval.judge_http(answer.status, answer.body, spec.http)
        except (check_http.CheckTransportError, TemplateError, PolicyProblem, ValueError) as exc:
            return "error", None, str(exc)

    def _send(self, namespace: str, check: CheckState, method: str, url: str, **kwargs: Any) -> check_http.Answer:
        """Connect only to the host:port planned at Verifying, re-judging what its name resolves to now."""
        target = egress.parse_target(url)
        if target.host_port != check.target:
            raise ValueError(f"{target.host_port} is not the target planned at Verifying ({check.target})")
        rules = egress.EgressRules(namespace, (target.host_port,) if check.explicit else (), self.api_server)
        verdict = egress.judge(url, rules, self.resolve(target.host))
        if not verdict.ok:
            raise ValueError(f"refused before connecting: {verdict.problem}")
        return check_http.request(method, url, timeout=float(check.spec.timeout_seconds), **kwargs)

    def _headers(self, check: CheckState, policy: str) -> dict[str, str]:
        return {ref.header: self.policies.secret_value(policy, ref.secret_name, ref.key).strip()
                for ref in check.headers}


def _json(answer: check_http.Answer) -> dict[str, Any]:
    import json

    try:
        data = json.loads(answer.body)
    except ValueError as exc:
        raise ValueError(f"Prometheus answered HTTP {answer.status} with something that is not JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("Prometheus answered with JSON that is not an object")
    return data


def webhook_payload(release: Release, status: Status, check: CheckState) -> dict[str, Any]:
    """What a webhook learns of the hotfix: enough to decide, nothing secret."""
    return {
        "release": release.name, "namespace": release.namespace, "version": release.spec.version,
        "tag": release.spec.tag, "commitSha": release.spec.commit_sha, "image": release.spec.artifact.image,
        "incidentId": status.incident_id, "phase": status.phase.value if status.phase else None,
        "check": check.name, "stage": check.stage.value, "greenPodHash": run_state(status).green_hash,
        "greenDeployment": run_state(status).green_deployment,
    }


__all__ = ["Probes", "variables", "webhook_payload"]
