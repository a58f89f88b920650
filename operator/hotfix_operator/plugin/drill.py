"""kubectl hotfix drill: file a HotfixRelease marked `spec.drill: true` — the real path (input checks,
provenance gate, approvals if the HotfixPolicy asks for them on drills, green beside blue, the
pre-promotion checks) that stops before any traffic moves, removes green and ends DrillPassed or
DrillFailed with each stage's time against the SLA budget.

It is `create` with a drill's defaults: --target names the Deployment, --service defaults to it,
--container to the image's repository name (as `kubectl create deployment` names it), and the version,
justification, ticket, severity and risk are filled in when not given. --commit and --source-repo are
still needed: the provenance gate checks the image against them."""

from __future__ import annotations

import argparse
import datetime

from hotfix_operator.plugin import create
from hotfix_operator.plugin.connection import Connection
from hotfix_operator.plugin.output import Output

DRILL_VERSION = "0.0.0"
# RFC 2606's reserved .invalid: a drill has no incident ticket
DRILL_TICKET = "https://drill.invalid/"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    create.add_arguments(parser)
    parser.add_argument("--target", dest="deployment", help="the Deployment to rehearse a hotfix of")


def defaults(args: argparse.Namespace, now: datetime.datetime) -> None:
    """Fill what a drill does not ask for (flags given, and a -f file's fields, win)."""
    if args.filename:
        return
    target = args.deployment
    if target:
        args.service = args.service or target
        args.ticket = args.ticket or DRILL_TICKET + target
        args.justification = args.justification or (
            f"Drill of the hotfix path for Deployment {target}: green is checked beside blue and removed; "
            "no traffic moves.")
        if not args.name:
            args.name = f"{target}-drill-{now:%Y%m%d-%H%M%S}"[:63].rstrip("-")
    if args.image and not args.container:
        repository = args.image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
        args.container = repository or None
    args.version = args.version or DRILL_VERSION
    args.severity = args.severity or "P1"
    args.risk = args.risk or "low"


def run(args: argparse.Namespace, conn: Connection, out: Output) -> int:
    defaults(args, datetime.datetime.now(datetime.UTC))
    return create.run(args, conn, out, drill=True)
