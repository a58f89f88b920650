"""kubectl hotfix list and kubectl hotfix postmortems: the releases of a namespace (or -A all), one
row each; and the post-mortem each promoted hotfix owes (status.postmortem, see core.model's
PostmortemArea), --missing for those not yet complete (exit 1 when there are any)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from hotfix_operator.api import ConditionType, Phase, release_tag
from hotfix_operator.core.followup_results import PostmortemState
from hotfix_operator.plugin.connection import Connection
from hotfix_operator.plugin.output import Output
from hotfix_operator.plugin.render import list_table, rows_table
from hotfix_operator.plugin.summary import summarize

# phases from which a hotfix has reached production and so owes a post-mortem
PROMOTED_PHASES = frozenset({Phase.FINALIZING.value, Phase.SUCCEEDED.value})
POSTMORTEM_COLUMNS = ("NAME", "PHASE", "TAG", "POSTMORTEM", "DUE", "PULL REQUEST", "ISSUE")


def _sorted(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"].get("creationTimestamp", ""),
                                        o["metadata"]["name"]))


def run_list(args: argparse.Namespace, conn: Connection, out: Output) -> int:
    now = datetime.now(UTC)
    summaries = [summarize(o, now) for o in _sorted(conn.releases())]
    if args.output:
        out.document([s.to_json() for s in summaries], args.output)
    elif not summaries:
        out.err.print(f"No HotfixReleases in {'any namespace' if conn.all_namespaces else conn.namespace}.")
    else:
        out.out.print(list_table(summaries, conn.all_namespaces))
    return 0


def postmortem_row(obj: dict[str, Any]) -> dict[str, Any] | None:
    """What one release owes in post-mortem, or None if it never reached production."""
    status = obj.get("status") or {}
    area = status.get("postmortem")
    phase = str(status.get("phase") or "")
    if not isinstance(area, dict) and phase not in PROMOTED_PHASES:
        return None
    area = area if isinstance(area, dict) else {}
    complete_condition = any(c.get("type") == ConditionType.POSTMORTEM_COMPLETE and c.get("status") == "True"
                             for c in status.get("conditions") or ())
    state = str(area.get("state") or ("Filed" if area.get("filed") else "Not filed yet"))
    return {
        "namespace": obj["metadata"].get("namespace", ""), "name": obj["metadata"]["name"], "phase": phase,
        "tag": str(status.get("tag") or release_tag(str((obj.get("spec") or {}).get("version", "")))),
        "state": state, "complete": complete_condition or state == PostmortemState.COMPLETE,
        "dueAt": area.get("dueAt"), "pullRequest": area.get("pullRequest"), "issue": area.get("issue"),
        "path": area.get("path"),
    }


def run_postmortems(args: argparse.Namespace, conn: Connection, out: Output) -> int:
    rows = [r for o in _sorted(conn.releases()) if (r := postmortem_row(o)) is not None]
    if args.missing:
        rows = [r for r in rows if not r["complete"]]
    if args.output:
        out.document(rows, args.output)
    elif not rows:
        where = "any namespace" if conn.all_namespaces else conn.namespace
        out.err.print(f"Every promoted hotfix in {where} has its post-mortem." if args.missing
                      else f"No hotfix in {where} has reached production yet.")
    else:
        name = (lambda r: f"{r['namespace']}/{r['name']}") if conn.all_namespaces else (lambda r: r["name"])
        out.out.print(rows_table(POSTMORTEM_COLUMNS, ([name(r), r["phase"], r["tag"], r["state"], r["dueAt"] or "-",
                                                       r["pullRequest"] or "-", r["issue"] or "-"] for r in rows)))
    return 1 if args.missing and rows else 0
