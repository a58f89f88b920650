"""kubectl hotfix approve | reject | abort | undo: as yourself, in the shape the admission policy checks
(crds/admission.yaml): an approval names its author and carries exactly the author's groups as the
API server sees them (a SelfSubjectReview, like `kubectl auth whoami`), appended with a JSON patch so
nothing else changes; an abort sets spec.abort {by: you, reason}. `approve --undo` (and `reject --undo`)
appends the same entry to spec.undo.approvals instead, for an undo the HotfixPolicy wants approved. A
refusal is the API server's own message on one line, with what to do."""

from __future__ import annotations

import argparse
from typing import Any

from hotfix_operator.plugin.connection import Connection, Identity, PluginError
from hotfix_operator.plugin.output import Output

APPROVALS_PATH = "/spec/approval/approvals/-"
UNDO_APPROVALS_PATH = "/spec/undo/approvals/-"


def approval_entry(me: Identity, decision: str, comment: str | None, group: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"approver": me.username, "decision": decision}
    if comment:
        entry["comment"] = comment
    if group:
        entry["group"] = group
    entry["groups"] = list(me.groups)
    return entry


def approval_patch(entry: dict[str, Any], undo: bool = False) -> list[dict[str, Any]]:
    """Append `entry` to the hotfix's approvals, or (undo) to its undo's."""
    return [{"op": "add", "path": UNDO_APPROVALS_PATH if undo else APPROVALS_PATH, "value": entry}]


def abort_patch(me: Identity, reason: str) -> dict[str, Any]:
    return {"spec": {"abort": {"by": me.username, "reason": reason}}}


def add_decision_arguments(parser: argparse.ArgumentParser, comment_required: bool) -> None:
    parser.add_argument("name", help="the HotfixRelease")
    parser.add_argument("--comment", required=comment_required,
                        help="why (required to reject: the requester reads it)" if comment_required
                        else "what you reviewed (recorded with your approval)")
    parser.add_argument("--group", help="approve as a member of this group (e.g. hotfix-security, "
                                        "when the policy requires one); admission checks you are in it")
    parser.add_argument("--undo", action="store_true",
                        help="decide on the undo of a Succeeded hotfix (spec.undo, when the HotfixPolicy "
                             "wants an undo approved) instead of the hotfix itself")


def undo_patch(me: Identity, reason: str) -> dict[str, Any]:
    return {"spec": {"undo": {"by": me.username, "reason": reason}}}


def undo(args: argparse.Namespace, conn: Connection, out: Output) -> int:
    """spec.undo as yourself; a second undo, or one outside the window, is the API server's refusal."""
    reason = args.reason.strip()
    if not reason:
        raise PluginError("undo needs --reason: say why the previous version comes back (it is recorded)", 2)
    me = conn.whoami()
    conn.patch(args.name, undo_patch(me, reason), f"undo {conn.namespace}/{args.name} as {me.username}")
    out.line(f"hotfixrelease.hotfix.dev/{args.name} undo requested by {me.username}; the operator brings the previous "
             f"version back through the blue-green path: kubectl hotfix status {args.name} -n {conn.namespace} --watch")
    return 0


def add_abort_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the HotfixRelease")
    parser.add_argument("--reason", required=True, help="why it is stopped (recorded in the audit)")


def decide(args: argparse.Namespace, conn: Connection, out: Output, decision: str) -> int:
    comment = (args.comment or "").strip()
    if decision == "Reject" and not comment:
        raise PluginError("reject needs --comment: say why, so the requester knows what to change", 2)
    me = conn.whoami()
    verb, done = ("approve", "approved") if decision == "Approve" else ("reject", "rejected")
    undo = bool(getattr(args, "undo", False))
    what = "the undo of " if undo else ""
    conn.patch(args.name, approval_patch(approval_entry(me, decision, comment or None, args.group), undo),
               f"{verb} {what}{conn.namespace}/{args.name} as {me.username}")
    out.line(f"hotfixrelease.hotfix.dev/{args.name} {'undo ' if undo else ''}{done} by {me.username}; "
             f"follow it: kubectl hotfix status {args.name} -n {conn.namespace} --watch")
    return 0


def abort(args: argparse.Namespace, conn: Connection, out: Output) -> int:
    reason = args.reason.strip()
    if not reason:
        raise PluginError("abort needs --reason: say why it is stopped (it is recorded in the audit)", 2)
    me = conn.whoami()
    conn.patch(args.name, abort_patch(me, reason), f"abort {conn.namespace}/{args.name} as {me.username}")
    out.line(f"hotfixrelease.hotfix.dev/{args.name} aborted by {me.username}; the operator puts production back "
             f"as it was: kubectl hotfix status {args.name} -n {conn.namespace} --watch")
    return 0
