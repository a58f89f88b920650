"""The status view, the plain lines and the list table, rendered to text as a terminal would show them."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from hotfix_operator.plugin.render import LiveStatus, list_table, plain_line, status_renderable
from hotfix_operator.plugin.summary import summarize
from tests.plugin.test_summary import NOW, release


def text(renderable: object, terminal: bool = False) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=160, force_terminal=terminal, color_system="truecolor" if terminal else None
            ).print(renderable)
    return buffer.getvalue()


def test_the_status_view_shows_every_part() -> None:
    s = summarize(release(phase="Promoted", message="baking on green until 09:31:00Z", approvals="1/1",
                          approvedBy=["bob"], slaDeadline="2026-11-23T09:42:00Z",
                          timestamps={"created": "2026-11-23T09:12:00Z", "promoted": "2026-11-23T09:20:00Z"},
                          conditions=[{"type": "TrafficSwitched", "status": "True", "reason": "TrafficSwitched"}],
                          checks=[{"name": "error-rate", "stage": "postPromotion", "phase": "Running"}]), NOW)
    out = text(status_renderable(s))
    for expected in ("shop/checkout-hotfix", "Promoted", "baking on green", "1/1 (approved by bob)",
                     "met with 22m00s to spare", "Timeline", "traffic on green", "Conditions", "TrafficSwitched",
                     "Checks", "error-rate", "postPromotion", "Decisions", "Next"):
        assert expected in out, (expected, out)
    assert "\x1b[" not in out, "no colours when the output is not a terminal"
    assert "\x1b[" in text(status_renderable(s), terminal=True)


def test_the_live_view_reads_the_clock_each_time_it_is_drawn() -> None:
    times = iter([datetime(2026, 11, 23, 9, 30, tzinfo=UTC), datetime(2026, 11, 23, 9, 31, tzinfo=UTC)])
    view = LiveStatus(release(phase="AwaitingApproval", slaDeadline="2026-11-23T09:42:00Z"), lambda: next(times))
    assert "12m00s left" in text(view)
    assert "11m00s left" in text(view)


def test_plain_line_and_list_table() -> None:
    s = summarize(release(phase="Deploying", message="approved by bob; starting green"), NOW)
    assert plain_line(s, NOW) == "09:30:00  Deploying         approved by bob; starting green"
    table = text(list_table([s], all_namespaces=True))
    assert table.split()[:7] == ["NAMESPACE", "NAME", "PHASE", "TARGET", "APPROVALS", "SLA", "AGE"]
    assert "shop" in table and "checkout-hotfix" in table and "18m00s" in table
