"""Where traffic goes, and proof that it went there. Pure.

The operator points Services with selectors, but traffic follows the EndpointSlices the
controller-manager publishes, which may lag or stall. So a switch counts only once the active
Service's EndpointSlices list ready pods of the new side and no others; nothing that serves, or that
the Service would fall back to, is removed before that; and every "since the switch" timer starts at
the time it was seen. Past SWITCH_CONFIRM_SECONDS the operator warns, once, and keeps both sides up.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from hotfix_operator.api import LABEL_RELEASE_UID, OPERATOR, POD_TEMPLATE_HASH, ConditionType, Reason
from hotfix_operator.core.actions import DeleteDeployment, SetServiceSelector
from hotfix_operator.core.model import BlueGreen
from hotfix_operator.core.observations import Observations
from hotfix_operator.core.step import Step

# How long a selector change may take to show on the EndpointSlices before the operator warns. It never
# gives up: both sides stay up until the change is seen, however long that takes.
SWITCH_CONFIRM_SECONDS = 15.0


def ensure_selector(s: Step, service: str, desired: Mapping[str, str], why: str, *, ahead: bool = False) -> None:
    """Give `service` the `desired` selector. `ahead`: the write may go before the status write
    (core.actions.SetServiceSelector.ahead_of_status)."""
    current = s.obs.service if service == s.spec.target.service else s.obs.preview_service
    if current is None:
        return
    # What this reconcile already asked for counts as the selector: a phase chained after another acts on
    # the same observations. A later phase's selector replaces it, so one decision writes a Service once,
    # and a write ahead of the status write cannot be overtaken by one after it.
    queued = [a for a in s.actions if isinstance(a, SetServiceSelector) and a.service == service]
    selector = queued[-1].selector if queued else current.selector
    if dict(selector) == dict(desired):
        return
    for action in queued:
        s.actions.remove(action)
    if dict(current.selector) != dict(desired):
        s.act(SetServiceSelector(service, dict(desired), why, ahead_of_status=ahead))


def recorded(bg: BlueGreen, selector: Mapping[str, str]) -> bool:
    """Whether `bg` accounts for the active Service having `selector`: its original one, the side traffic is
    held on, or the side a switch under way moves it from. True when there is nothing to go by yet."""
    if bg.original_selector is None:
        return True
    sides = (h for h in (bg.active_hash, bg.switch_from) if h)
    return dict(selector) in [bg.original_selector, *({**bg.original_selector, POD_TEMPLATE_HASH: h} for h in sides)]


# the audit entries that say where the active Service is (tests.support.chaos.recorded_moves reads them)
MOVES = ("PinnedBlue", Reason.TRAFFIC_SWITCHED, Reason.SELECTOR_UNRECORDED)
UNDONE = "the move the entry before this one noted was not carried out"


def describe(selector: Mapping[str, str]) -> str:
    pod_hash = selector.get(POD_TEMPLATE_HASH)
    return f"{POD_TEMPLATE_HASH}={pod_hash}" if pod_hash else f"selector {dict(selector)}"


def account_for_unrecorded(s: Step, before: BlueGreen) -> None:
    """Once a reconcile has decided: if the active Service was seen on a selector that `before` (the status
    it started from) does not account for, say so in the audit trail, with where this decision puts it. That
    is a switch written ahead of a status write that never landed (the operator stopped in between), or
    someone else's edit; either way the audit trail then accounts for every selector the Service had."""
    t, service = s.spec.target, s.obs.service
    if service is None or recorded(before, service.selector):
        return
    found = f"Service {t.service}: found on {describe(service.selector)}, which status does not record"
    queued = [a for a in s.actions if isinstance(a, SetServiceSelector) and a.service == t.service]
    then = f"setting it to {describe(queued[-1].selector)}" if queued else "leaving it there, where this step wants it"
    line = f"{found} (a switch written just before the operator stopped, or someone else's edit); {then}"
    last = next((e for e in reversed(s.status.audit) if e.action in MOVES), None)
    if last is not None and last.detail == line:
        return  # noted by a reconcile whose move was not carried out; this one carries it out
    if last is not None and last.detail.startswith(found + " ") and "; setting it to " in last.detail:
        # the move that entry noted did not happen: the Service is still where it was found
        line += f"; {UNDONE}"
    s.add_audit(Reason.SELECTOR_UNRECORDED, line)
    s.post_event("Warning", Reason.SELECTOR_UNRECORDED, line)


def pinned(s: Step, pod_hash: str) -> dict[str, str]:
    """The target Service's original selector narrowed to one ReplicaSet's pods."""
    assert s.bg.original_selector is not None
    return {**s.bg.original_selector, POD_TEMPLATE_HASH: pod_hash}


def hold_traffic(s: Step, active_hash: str, preview_hash: str | None, why: str, *, switch_ahead: bool = False,
                 preview_ahead: bool = False) -> None:
    """Re-assert both Services this release owns: the active one on `active_hash`, the preview on
    `preview_hash` (None: its original selector). A change of the active hash opens a pending switch.
    `switch_ahead`, `preview_ahead`: that Service's write may go before the status write (ensure_selector)."""
    t = s.spec.target
    ensure_selector(s, t.service, pinned(s, active_hash), why, ahead=switch_ahead)
    if t.preview_service:
        preview = pinned(s, preview_hash) if preview_hash else s.bg.preview_original_selector
        if preview is not None:
            ensure_selector(s, t.preview_service, preview, f"preview Service: {why}", ahead=preview_ahead)
    if s.bg.active_hash != active_hash:
        # the side the Service is seen on, which is not the recorded one when a switch was decided and never
        # carried out: its TrafficSwitched entry then says where traffic really came from
        seen = s.obs.service.selector.get(POD_TEMPLATE_HASH) if s.obs.service is not None else None
        s.update_bg(active_hash=active_hash, switch_from=seen or s.bg.active_hash, switch_requested=s.now,
                    switch_warned=False)


def ips_of(obs: Observations, pod_hash: str) -> frozenset[str]:
    """The ready pod IPs of `pod_hash`."""
    return obs.pod_ips_by_hash.get(pod_hash, frozenset())


def lists_only(endpoints: frozenset[str], obs: Observations, pod_hash: str) -> bool:
    """`endpoints` are ready pods, and only pods of `pod_hash`."""
    return bool(endpoints) and endpoints <= ips_of(obs, pod_hash)


def serving_from(s: Step, pod_hash: str) -> bool:
    """The active Service's EndpointSlices list ready pods, and only pods of `pod_hash`."""
    return lists_only(s.obs.endpoint_ips, s.obs, pod_hash)


def preview_share(obs: Observations, pod_hash: str) -> str:
    """How many of the preview Service's ready endpoints are pods of `pod_hash`, as the messages say it."""
    endpoints = obs.preview_endpoint_ips
    return f"{len(endpoints & ips_of(obs, pod_hash))} of {len(endpoints)} ready endpoints"


def preview_lists_only(obs: Observations, pod_hash: str) -> bool:
    """Checks sent through the preview Service reach pods of `pod_hash` alone: its EndpointSlices list only
    them. True when there is no preview Service (the checks then address what they test themselves)."""
    return obs.preview_service is None or lists_only(obs.preview_endpoint_ips, obs, pod_hash)


def wait_for_preview(s: Step, pod_hash: str, side: str, since: datetime.datetime) -> bool:
    """Whether the preview Service's EndpointSlices list only `side`'s pods (pods of `pod_hash`); if not, say
    so and wait: a check measured now could be answered by the pods the preview Service selected before."""
    if preview_lists_only(s.obs, pod_hash):
        return True
    detail = f"{preview_share(s.obs, pod_hash)} are {side} pods"
    message = (f"waiting for preview Service {s.spec.target.preview_service}'s EndpointSlices to list only {side} "
               f"pods ({detail}); its checks start then, and traffic stays where it is")
    waited = (s.now - since).total_seconds()
    if waited >= SWITCH_CONFIRM_SECONDS:
        message += (f". {waited:.0f}s since {side} was available: check that kube-controller-manager (its "
                    "EndpointSlice controller) is running, and that the preview Service selects "
                    f"{POD_TEMPLATE_HASH}={pod_hash}")
    s.say(message)
    s.wait_until(since, SWITCH_CONFIRM_SECONDS)
    return False


def switch(s: Step, to_hash: str, side: str) -> datetime.datetime | None:
    """When traffic was first seen on `side` (pods of `to_hash`), or None while the EndpointSlices do
    not show it yet. The TrafficSwitched audit entry is written here, at the observed time."""
    bg, t = s.bg, s.spec.target
    if bg.switch_requested is None and bg.serving_hash == to_hash:
        return bg.serving_since
    service = s.obs.service
    if service is None or dict(service.selector) != pinned(s, to_hash) or not serving_from(s, to_hash):
        report_unconfirmed(s, to_hash, side)
        return None
    before = bg.switch_from or bg.serving_hash
    s.update_bg(serving_hash=to_hash, serving_since=s.now, switch_from=None, switch_requested=None,
                switch_warned=False)
    line = (f"Service {t.service}: {POD_TEMPLATE_HASH} {before} -> {to_hash}; its EndpointSlices list only "
            f"{side} pods ({len(s.obs.endpoint_ips)} ready)")
    s.add_audit(Reason.TRAFFIC_SWITCHED, line)
    s.post_event("Normal", Reason.TRAFFIC_SWITCHED, line)
    return s.now


def report_unconfirmed(s: Step, to_hash: str, side: str) -> None:
    """Say how far the switch to `side` has got; past the bound, warn once. Nothing is removed."""
    t, endpoints = s.spec.target, s.obs.endpoint_ips
    on_side = len(endpoints & ips_of(s.obs, to_hash))
    detail = f"{on_side} of {len(endpoints)} ready endpoints of Service {t.service} are {side} pods"
    waited = (s.now - (s.bg.switch_requested or s.now)).total_seconds()
    if waited < SWITCH_CONFIRM_SECONDS:
        s.set_condition(ConditionType.TRAFFIC_SWITCHED, "Unknown", Reason.ENDPOINTS_UPDATING, detail)
        s.say(f"waiting for Service {t.service}'s EndpointSlices to list only {side} pods ({detail})")
        s.wait_until(s.bg.switch_requested, SWITCH_CONFIRM_SECONDS)
        return
    message = (f"Service {t.service}'s EndpointSlices still do not list only {side} pods {waited:.0f}s after "
               f"its selector moved ({detail}); both sides are kept running until they do. Check that "
               "kube-controller-manager (its EndpointSlice controller) is running and up to date")
    s.set_condition(ConditionType.TRAFFIC_SWITCHED, "Unknown", Reason.ENDPOINTS_NOT_CONFIRMED, message)
    s.say(message)
    if not s.bg.switch_warned:
        s.update_bg(switch_warned=True)
        s.post_event("Warning", Reason.ENDPOINTS_NOT_CONFIRMED, message, OPERATOR)
    s.wait()


def owns_green(s: Step) -> bool:
    green = s.obs.green
    return green is not None and green.labels.get(LABEL_RELEASE_UID) == s.release.uid


def green_pods_left(s: Step) -> bool:
    return s.obs.green_pod_count > 0


def tear_down_green(s: Step, serving_hash: str, side: str) -> bool:
    """Delete green once `side` is seen serving, wait for its pods to go, give the preview Service and then
    the active one their original selectors back, and see `side` serving behind them. True while any of
    that is under way."""
    t = s.spec.target
    # With no Service there is nothing to route; otherwise never delete what may still serve.
    serving = s.obs.service is None or serving_from(s, serving_hash)
    if owns_green(s):
        assert s.obs.green is not None
        if not serving:
            report_unconfirmed(s, serving_hash, side)
            return True
        s.act(DeleteDeployment(s.obs.green.name, s.release.uid))
        s.say(f"removing green {s.obs.green.name}")
    elif green_pods_left(s):
        s.say("waiting for green pods to terminate")
    elif restore_preview(s):
        s.say(f"restoring preview Service {t.preview_service}'s original selector")
    elif not green_gone_from_preview(s, serving_hash):
        s.say(f"waiting for preview Service {t.preview_service}'s EndpointSlices to list only {side} pods "
              f"({preview_share(s.obs, serving_hash)}): until they do, the EndpointSlice controller may "
              f"still count green's pods, and would list them behind Service {t.service}'s original selector. "
              "If this lasts, check that kube-controller-manager is running and up to date")
    elif restore_active(s):
        s.say(f"restoring Service {t.service}'s original selector")
    elif not serving:
        s.say(f"waiting for Service {t.service}'s EndpointSlices to list {side} pods under its original selector")
    else:
        return False
    s.wait()
    return True


def green_gone_from_preview(s: Step, serving_hash: str) -> bool:
    """Whether the EndpointSlice controller is seen to have counted green's pods out, so that giving the
    active Service its original selector (which matches them too) cannot list them.

    The active Service's own EndpointSlices cannot show this: pinned to the serving side, they list only it
    before and after the selector comes back, and the controller writes nothing when nothing changes. The
    preview Service's can, when it has the same original selector: it was not pinned to the serving side
    while green was removed (core.cutover keeps it on green or on its original selector), so its slices
    list only the serving side's pods only once the controller synced them under that selector with no
    ready green pod in its view. A later sync of the active Service reads a view at least as new. Without
    such a preview there is nothing to see: True."""
    bg, obs = s.bg, s.obs
    if obs.preview_service is None or bg.preview_original_selector is None or \
            bg.preview_original_selector != bg.original_selector:
        return True
    return lists_only(obs.preview_endpoint_ips, obs, serving_hash)


def restore_preview(s: Step) -> bool:
    """Emit what gives the preview Service its original selector; True while not done."""
    t, bg = s.spec.target, s.bg
    if t.preview_service and bg.preview_original_selector is not None and s.obs.preview_service is not None and \
            dict(s.obs.preview_service.selector) != bg.preview_original_selector:
        s.act(SetServiceSelector(t.preview_service, bg.preview_original_selector, "restore the preview Service"))
        return True
    return False


def restore_active(s: Step) -> bool:
    """Emit what gives the active Service its original selector; True while not done."""
    t, bg = s.spec.target, s.bg
    if bg.original_selector is not None and s.obs.service is not None and \
            dict(s.obs.service.selector) != bg.original_selector:
        s.act(SetServiceSelector(t.service, bg.original_selector, "restore the original selector"))
        return True
    return False
