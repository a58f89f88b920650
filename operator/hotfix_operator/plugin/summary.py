"""What `kubectl hotfix status` and `list` show of a HotfixRelease, as plain data: a function of the
object and the time now, so the terminal view, the plain lines and `-o json|yaml` all say the same.

Status is read leniently (a missing or unknown field is shown as absent, never an error): this is a
display of what the operator wrote, and the operator's schema grows (status.checks, for one)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from hotfix_operator.api import Phase
from hotfix_operator.formats import parse_utc_iso, utc_iso

# status.timestamps, in the order a hotfix goes through them, with the words the timeline shows
TIMELINE: tuple[tuple[str, str], ...] = (
    ("created", "filed"),
    ("verified", "provenance verified"),
    ("approved", "approved"),
    ("greenCreated", "green created"),
    ("greenAvailable", "green available"),
    ("promoted", "traffic on green"),
    ("foldStarted", "fold started"),
    ("folded", "traffic on the folded Deployment"),
    ("rollbackStarted", "rollback started"),
    ("blueRestored", "traffic back on blue"),
    ("completed", "completed"),
)
# status.checks[] items (being added to the API): these keys, in this order, when present
CHECK_FIELDS: tuple[str, ...] = ("name", "stage", "phase", "lastValue", "message")
# From the API's own words: a finished phase that needs a person is a failure (Stalled), any other a success
# (Succeeded, Undone, DrillPassed).
SUCCESS_PHASES = frozenset(p.value for p in Phase if p.terminal and not p.stalled)
FAILURE_PHASES = frozenset(p.value for p in Phase if p.stalled)


def duration(seconds: float) -> str:
    """A short human duration: 45s, 4m05s, 2h03m, 3d04h."""
    s = int(abs(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def parse_duration(text: str) -> float:
    """`90`, `90s`, `5m`, `1h30m`, `2h`, `1d` as seconds (what --timeout takes); ValueError otherwise."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)([dhms])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration: write it like 90s, 5m or 1h30m")
    unit = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return sum(float(n) * unit[u] for n, u in parts)


@dataclass(frozen=True)
class Sla:
    deadline: str | None
    state: str  # "running", "met", "breached", "none"
    text: str  # "12m03s left", "met with 4m left", "breached 2m ago", "-"
    seconds_left: float | None = None


def sla_of(status: dict[str, Any], now: datetime) -> Sla:
    """The SLA runs until traffic reaches the hotfix (timestamps.promoted), against status.slaDeadline."""
    deadline = parse_utc_iso(status.get("slaDeadline"))
    if deadline is None:
        return Sla(None, "none", "-")
    promoted = parse_utc_iso((status.get("timestamps") or {}).get("promoted"))
    if promoted is not None:
        left = (deadline - promoted).total_seconds()
        return (Sla(utc_iso(deadline), "met", f"met with {duration(left)} to spare") if left >= 0
                else Sla(utc_iso(deadline), "breached", f"missed by {duration(left)}"))
    left = (deadline - now).total_seconds()
    if status.get("phase") in FAILURE_PHASES:
        return Sla(utc_iso(deadline), "none", "stopped (never reached production)")
    if left < 0:
        return Sla(utc_iso(deadline), "breached", f"breached {duration(left)} ago", left)
    return Sla(utc_iso(deadline), "running", f"{duration(left)} left", left)


@dataclass(frozen=True)
class Summary:
    name: str
    namespace: str
    phase: str
    message: str
    version: str
    target: str
    requested_by: str
    age: str
    approvals: str  # "have/needed", as the printer column
    approved_by: tuple[str, ...]
    waiting_for: str | None
    decisions: tuple[dict[str, str], ...]  # spec.approval.approvals: approver, decision, comment
    abort: dict[str, str] | None
    timeline: tuple[tuple[str, str], ...]  # (what, when) in time order
    conditions: tuple[dict[str, str], ...]
    checks: tuple[dict[str, str], ...]
    sla: Sla
    next_step: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.phase in SUCCESS_PHASES | FAILURE_PHASES

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["timeline"] = [{"event": what, "time": when} for what, when in self.timeline]
        data.pop("extra")
        return data


def summarize(obj: dict[str, Any], now: datetime) -> Summary:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    created = parse_utc_iso(meta.get("creationTimestamp"))
    phase = str(status.get("phase") or "Pending")
    message = str(status.get("message") or "")
    return Summary(
        name=str(meta.get("name", "")), namespace=str(meta.get("namespace", "")), phase=phase, message=message,
        version=str(spec.get("version", "")), target=str((spec.get("target") or {}).get("deployment", "")),
        requested_by=str(spec.get("requestedBy", "")),
        age=duration((now - created).total_seconds()) if created else "-",
        approvals=str(status.get("approvals") or "-"),
        approved_by=tuple(str(a) for a in status.get("approvedBy") or ()),
        waiting_for=status.get("waitingFor"),
        decisions=tuple({"approver": str(a.get("approver", "")), "decision": str(a.get("decision", "")),
                         "comment": str(a.get("comment", ""))}
                        for a in (spec.get("approval") or {}).get("approvals") or ()),
        abort={k: str(v) for k, v in spec["abort"].items()} if isinstance(spec.get("abort"), dict) else None,
        timeline=timeline(status.get("timestamps") or {}),
        conditions=tuple({k: str(c.get(k, "")) for k in ("type", "status", "reason", "message")}
                         for c in status.get("conditions") or ()),
        checks=checks(status.get("checks")),
        sla=sla_of(status, now),
        next_step=next_step(phase, message),
    )


def timeline(timestamps: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    seen = [(when, what) for key, what in TIMELINE if (when := parse_utc_iso(timestamps.get(key))) is not None]
    return tuple((what, utc_iso(when)) for when, what in sorted(seen, key=lambda p: p[0]))


def checks(items: Any) -> tuple[dict[str, str], ...]:
    """status.checks[] rows (name, stage, phase, lastValue, message); empty until the operator writes them."""
    if not isinstance(items, list):
        return ()
    return tuple({k: "" if item.get(k) is None else str(item.get(k)) for k in CHECK_FIELDS}
                 for item in items if isinstance(item, dict))


def next_step(phase: str, message: str) -> str:
    """What happens next, in the operator's own words (status.message says it), or that nothing will."""
    if phase in SUCCESS_PHASES:
        return "nothing: the hotfix is live"
    if phase in FAILURE_PHASES:
        return f"nothing more happens to this release ({phase}); file a new HotfixRelease to try again"
    return message or "waiting for the operator to pick the release up"


def exit_code(phase: str) -> int | None:
    """`status --watch` leaves with 0 on success, 1 on a rollback, rejection, failure or expiry; else goes on."""
    if phase in SUCCESS_PHASES:
        return 0
    if phase in FAILURE_PHASES:
        return 1
    return None

