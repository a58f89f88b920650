"""How a Summary looks: rich renderables for a terminal (colours only there: rich drops them when the
output is not one), one plain line per change for logs and pipes, and the tables of `list` and
`postmortems`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hotfix_operator.api import CheckPhase
from hotfix_operator.plugin.summary import CHECK_FIELDS, FAILURE_PHASES, SUCCESS_PHASES, Summary, summarize


def phase_style(phase: str) -> str:
    if phase in SUCCESS_PHASES:
        return "bold green"
    if phase in FAILURE_PHASES:
        return "bold red"
    return "bold yellow"


def check_style(phase: str) -> str:
    styles: dict[str, str] = {CheckPhase.PASSED: "green", CheckPhase.FAILED: "bold red", CheckPhase.ERROR: "red"}
    return styles.get(phase, "yellow")


def _table(*columns: str, title: str | None = None) -> Table:
    table = Table(*columns, title=title, title_justify="left", title_style="bold", box=None, pad_edge=False,
                  show_edge=False, header_style="bold")
    return table


def _field(label: str, value: str | Text) -> Text:
    text = Text.assemble((f"{label:<11}", "bold"), value if isinstance(value, Text) else Text(value))
    return text


def approvals_line(s: Summary) -> str:
    line = s.approvals
    if s.approved_by:
        line += f" (approved by {', '.join(s.approved_by)})"
    if s.waiting_for:
        line += f"; waiting for {s.waiting_for}"
    return line


def sla_text(s: Summary) -> Text:
    style = {"running": "cyan", "met": "green", "breached": "bold red"}.get(s.sla.state, "")
    deadline = f" (deadline {s.sla.deadline})" if s.sla.deadline else ""
    return Text(s.sla.text + deadline, style=style)


def status_renderable(s: Summary) -> RenderableType:
    parts: list[RenderableType] = [
        _field("Name", f"{s.namespace}/{s.name}"),
        _field("Phase", Text(s.phase, style=phase_style(s.phase))),
        _field("Message", s.message or "-"),
        _field("Release", f"{s.version} to Deployment {s.target}, requested by {s.requested_by}"),
        _field("Approvals", approvals_line(s)),
        _field("SLA", sla_text(s)),
    ]
    if s.abort:
        parts.append(_field("Aborted", f"by {s.abort.get('by', '?')}: {s.abort.get('reason', '')}"))
    parts += [t for t in (decisions_table(s), timeline_table(s), conditions_table(s), checks_table(s)) if t]
    parts.append(_field("Next", Text(s.next_step, style="bold")))
    return Group(*parts)


def decisions_table(s: Summary) -> Table | None:
    if not s.decisions:
        return None
    table = _table("APPROVER", "DECISION", "COMMENT", title="Decisions")
    for d in s.decisions:
        table.add_row(d["approver"], Text(d["decision"], style="green" if d["decision"] == "Approve" else "red"),
                      d["comment"])
    return table


def timeline_table(s: Summary) -> Table | None:
    if not s.timeline:
        return None
    table = _table("TIME", "EVENT", title="Timeline")
    for what, when in s.timeline:
        table.add_row(when, what)
    return table


def conditions_table(s: Summary) -> Table | None:
    if not s.conditions:
        return None
    table = _table("TYPE", "STATUS", "REASON", "MESSAGE", title="Conditions")
    for c in s.conditions:
        style = {"True": "green", "False": "red"}.get(c["status"], "")
        table.add_row(c["type"], Text(c["status"], style=style), c["reason"], c["message"])
    return table


def checks_table(s: Summary) -> Table | None:
    """status.checks[]: one row per check (name, stage, phase, last value, message), once the operator writes them."""
    if not s.checks:
        return None
    table = _table(*(f.upper() for f in CHECK_FIELDS), title="Checks")
    for check in s.checks:
        table.add_row(*(Text(check[f], style=check_style(check[f])) if f == "phase" else check[f]
                        for f in CHECK_FIELDS))
    return table


class LiveStatus:
    """The status of one release, re-summarized each time rich draws it, so the SLA countdown ticks."""

    def __init__(self, obj: dict[str, Any], clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.obj = obj
        self.clock = clock

    def __rich__(self) -> RenderableType:
        return status_renderable(summarize(self.obj, self.clock()))


def plain_line(s: Summary, now: datetime) -> str:
    """One line per change, for output that is not a terminal: `HH:MM:SS  Phase  message`."""
    return f"{now.astimezone(UTC):%H:%M:%S}  {s.phase:<17} {s.message}".rstrip()


def list_table(summaries: Iterable[Summary], all_namespaces: bool) -> Table:
    columns = ["NAME", "PHASE", "TARGET", "APPROVALS", "SLA", "AGE"]
    table = _table(*(["NAMESPACE", *columns] if all_namespaces else columns))
    for s in summaries:
        row: list[str | Text] = [s.name, Text(s.phase, style=phase_style(s.phase)), s.target, s.approvals,
                                 s.sla.text, s.age]
        table.add_row(*([s.namespace, *row] if all_namespaces else row))
    return table


def rows_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    table = _table(*columns)
    for row in rows:
        table.add_row(*row)
    return table
