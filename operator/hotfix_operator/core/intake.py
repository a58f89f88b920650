"""The phases before production changes: Pending (what the schema cannot check), Verifying (the
provenance gate, before anyone is asked to approve), Queued (one hotfix per target) and
AwaitingApproval. Nothing here acts on the cluster. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hotfix_operator.api import POD_TEMPLATE_HASH, ConditionType, Phase, Reason
from hotfix_operator.core.governance import AdmissionCheck, judge, observe_approvals, timer_end, waiting_line
from hotfix_operator.core.step import Step


def pending(s: Step) -> None:
    problem = target_problem(s)
    if problem:
        s.reject(problem[0], problem[1], condition=ConditionType.INPUT_VALID)
        return
    image = s.obs.image
    if image is None:
        s.wait()
        return
    if not image.ok:
        if image.transient:
            s.set_condition(ConditionType.INPUT_VALID, "Unknown", image.reason, f"{image.message}; retrying")
            s.say(f"cannot check the image yet: {image.message}; retrying")
            s.wait(10)
            return
        s.reject(image.reason, image.message, condition=ConditionType.INPUT_VALID)
        return
    t = s.spec.target
    # a message on a passing check: the manifest was not read, and the provenance gate says why
    found = image.message or f"image manifest {s.spec.artifact.image.split('@')[1][:19]}… found and matches its digest"
    s.set_condition(ConditionType.INPUT_VALID, "True", Reason.VALID,
                    f"Deployment {t.deployment} (container {t.container}) and Service {t.service} exist; {found}")
    s.enter(Phase.VERIFYING, "verifying the image's signed provenance against the namespace's HotfixPolicy")


def target_problem(s: Step) -> tuple[Reason, str] | None:
    t, ns = s.spec.target, s.release.namespace
    blue, service = s.obs.blue, s.obs.service
    if blue is None:
        return Reason.TARGET_NOT_FOUND, f"Deployment {ns}/{t.deployment} does not exist"
    if blue.container_image(t.container) is None:
        names = [c.get("name") for c in blue.pod_template.get("spec", {}).get("containers", [])]
        return Reason.CONTAINER_NOT_FOUND, (f"Deployment {t.deployment} has no container {t.container!r} "
                                            f"(it has: {', '.join(map(str, names))})")
    if service is None:
        return Reason.SERVICE_NOT_FOUND, f"Service {ns}/{t.service} does not exist"
    if not service.selector:
        return Reason.SERVICE_HAS_NO_SELECTOR, f"Service {t.service} has no selector; blue-green needs one to switch"
    if POD_TEMPLATE_HASH in service.selector:
        return Reason.SERVICE_ALREADY_PINNED, (f"Service {t.service} already selects {POD_TEMPLATE_HASH}="
                                               f"{service.selector[POD_TEMPLATE_HASH]}; another rollout controls it "
                                               "— remove that key from its selector first")
    pod_labels = blue.pod_template.get("metadata", {}).get("labels", {})
    if any(pod_labels.get(k) != v for k, v in service.selector.items()):
        return Reason.SERVICE_DOES_NOT_SELECT_TARGET, (f"Service {t.service} selects {dict(service.selector)}, "
                                                       f"which does not match Deployment {t.deployment}'s pod "
                                                       f"labels {pod_labels}")
    if t.preview_service and s.obs.preview_service is None:
        return Reason.PREVIEW_SERVICE_NOT_FOUND, f"preview Service {ns}/{t.preview_service} does not exist"
    return None


def verifying(s: Step) -> None:
    plan, check = s.obs.check_plan, s.obs.provenance
    if check is None or plan is None:
        s.wait()
        return
    if not check.ok:
        if check.transient:
            attempts = s.status.verify_attempts + 1
            delay = min(60.0, 2.0 ** attempts)
            s.update(verify_attempts=attempts)
            s.set_condition(ConditionType.PROVENANCE_VERIFIED, "Unknown", check.reason,
                            f"{check.message}; retry {attempts} in {delay:.0f}s (the gate is never skipped)")
            s.say(f"cannot verify provenance yet: {check.message}; retrying in {delay:.0f}s")
            s.wait(delay)
            return
        s.update(policy=check.policy)
        s.reject(check.reason, check.message, condition=ConditionType.PROVENANCE_VERIFIED)
        return
    if not plan.ok:  # after the provenance verdict, so a missing policy is reported as the gate reports it
        if plan.transient:
            s.say(f"cannot plan the health checks yet: {plan.message}; retrying")
            s.wait(10)
            return
        s.reject(plan.reason, plan.message, condition=ConditionType.INPUT_VALID)
        return
    summary = dict(check.summary or {})
    s.update(policy=check.policy, provenance=summary, verify_attempts=0, checks=plan.states)
    s.stamp(verified=s.now)
    line = provenance_line(summary)
    s.set_condition(ConditionType.PROVENANCE_VERIFIED, "True", Reason.VERIFIED, line)
    s.add_audit("ProvenanceVerified", f"policy {check.policy}: {line}")
    enter_queue_or_approval(s)


def provenance_line(summary: Mapping[str, Any]) -> str:
    """One line a person reads: who signed, which builder, which source and commit."""
    signers = ", ".join(str(signer.get("signer")) for signer in summary.get("signers", []))
    commit = str(summary.get("commitSha", ""))
    predicates = ", ".join(summary.get("predicateTypes", []))
    return (f"signed by {signers or 'nobody'}; built by {summary.get('builderId')} from "
            f"{summary.get('sourceRepository')}@{commit[:12]}; predicates {predicates}")


def enter_queue_or_approval(s: Step) -> None:
    if s.obs.queue_ahead:
        ahead = s.obs.queue_ahead[0]
        s.update(queued_behind=ahead)
        s.enter(Phase.QUEUED, f"waiting for HotfixRelease {ahead} to finish with Deployment "
                f"{s.spec.target.deployment} (one hotfix per target at a time)")
        s.requeue_after = 5
        return
    s.update(queued_behind=None)
    if s.status.drill is not None and s.status.drill.approvals == "NotRequired":
        s.stamp(approved=s.now)
        s.add_audit(Reason.DRILL_APPROVAL_SKIPPED, "drill: the HotfixPolicy does not require approvals on drills "
                    "(spec.approvals.drills: NotRequired), so AwaitingApproval is skipped")
        s.set_condition(ConditionType.APPROVED, "True", Reason.DRILL_APPROVAL_SKIPPED,
                        "drill: approvals not required by the HotfixPolicy")
        s.enter(Phase.DEPLOYING, "drill: starting green next to blue; no traffic will move")
        return
    # The first message an approver sees already says how to approve; the next poll narrows "who".
    s.enter(Phase.AWAITING_APPROVAL, approval_hint(s, "approval under the namespace's HotfixPolicy"))


def queued(s: Step) -> None:
    if s.obs.queue_ahead:
        if s.obs.queue_ahead[0] != s.status.queued_behind:
            s.update(queued_behind=s.obs.queue_ahead[0])
            s.say(f"waiting for HotfixRelease {s.obs.queue_ahead[0]} to finish with Deployment "
                  f"{s.spec.target.deployment}")
        s.wait(5)
        return
    enter_queue_or_approval(s)


# What an approver types: their own name and groups come from the API server (kubectl auth whoami),
# which admission checks against the request.
APPROVE_COMMAND = (
    'kubectl -n NAMESPACE patch hfr NAME --type=json -p "[{\\"op\\":\\"add\\",'
    '\\"path\\":\\"/spec/approval/approvals/-\\",\\"value\\":{'
    '\\"approver\\":\\"$(kubectl auth whoami -o jsonpath=\'{.status.userInfo.username}\')\\",'
    '\\"decision\\":\\"Approve\\",'
    '\\"groups\\":$(kubectl auth whoami -o jsonpath=\'{.status.userInfo.groups}\')}}]"'
)


def approval_hint(s: Step, waiting: str) -> str:
    command = APPROVE_COMMAND.replace("NAMESPACE", s.release.namespace).replace("NAME", s.release.name)
    return (f"needs {waiting}; to approve: kubectl hotfix approve {s.release.name} -n {s.release.namespace} "
            f"(without the plugin: {command})")


def awaiting_approval(s: Step) -> None:
    check, rules = s.obs.approvals, s.obs.rules
    if check is None or rules is None:
        s.say("cannot read the approval rules or rights now (HotfixPolicy or API unavailable); retrying")
        s.wait(10)
        return
    if not check.admission.ok:
        hold_for_admission(s, check.admission)
        return
    if s.status.admission_fingerprint not in (None, check.admission.fingerprint):
        s.update(waiting_for=None)
        s.reject(Reason.ADMISSION_POLICY_CHANGED, "the admission policy that proves who approves was replaced, "
                 "removed or edited since this release was filed, so none of its approvals can be trusted; file a "
                 "new HotfixRelease", condition=ConditionType.APPROVED)
        return
    s.update(admission_fingerprint=check.admission.fingerprint)
    verdict = judge(s.spec, rules, check.rights)
    seen = observe_approvals(s.status.observed_approvals, s.spec, s.now, check.rights)
    s.update(observed_approvals=seen, approved_by=verdict.approvers,
             approvals_required=rules.approvals_needed(s.spec.risk_level))
    note = f" (ignored: {'; '.join(verdict.ignored)})" if verdict.ignored else ""
    if verdict.rejection is not None:
        who, comment = verdict.rejection.approver, verdict.rejection.comment
        s.update(waiting_for=None)
        s.reject(Reason.APPROVAL_REJECTED, f"rejected by {who}" + (f": {comment}" if comment else ""),
                 condition=ConditionType.APPROVED, actor=who)
        return
    if not verdict.satisfied:
        waiting = waiting_line(verdict, s.spec)
        s.update(waiting_for=waiting)
        hint = approval_hint(s, waiting) + note
        s.set_condition(ConditionType.APPROVED, "False", Reason.AWAITING_APPROVAL, hint)
        s.say(hint)
        s.wait(10)  # re-check rights and the admission policy while waiting
        return
    names = ", ".join(verdict.approvers)
    timer = timer_end(verdict, seen, rules, s.spec)
    if timer is not None and s.now < timer:
        s.update(waiting_for=f"wait timer until {timer:%H:%M:%S}Z", wait_timer_ends=timer)
        message = (f"approved by {names}; {s.spec.risk_level}-risk releases wait until {timer:%H:%M:%S}Z "
                   f"(HotfixPolicy wait timer, {rules.wait_for(s.spec.risk_level).seconds}s after the last approval)")
        s.set_condition(ConditionType.APPROVED, "False", Reason.WAIT_TIMER, message)
        s.say(message)
        s.wait(min(10.0, (timer - s.now).total_seconds()))
        return
    s.update(waiting_for=None, wait_timer_ends=timer)
    s.stamp(approved=s.now)
    s.set_condition(ConditionType.APPROVED, "True", Reason.APPROVED, f"approved by {names}{note}")
    s.enter(Phase.DEPLOYING, f"approved by {names}; starting green next to blue", reason=Reason.APPROVED, actor=names)


def hold_for_admission(s: Step, admission: AdmissionCheck) -> None:
    """Fail closed: without the admission policy nobody's identity is proven, so nothing is counted."""
    message = (f"no approval is counted while the admission policy is not as shipped: {admission.message}. "
               "Install it: kubectl apply --server-side -f crds/admission.yaml")
    if s.status.admission_fingerprint is None:
        s.update(admission_fingerprint=admission.fingerprint)
    first = s.status.condition(ConditionType.APPROVED)
    s.set_condition(ConditionType.APPROVED, "False", Reason.ADMISSION_POLICY_MISSING, message)
    s.update(waiting_for="the admission policy crds/admission.yaml")
    s.say(message)
    if first is None or first.reason != Reason.ADMISSION_POLICY_MISSING:
        s.post_event("Warning", Reason.ADMISSION_POLICY_MISSING, message)
    s.wait(10)
