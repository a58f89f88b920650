"""kubectl hotfix: file, approve, follow and list HotfixReleases from a workstation, as yourself.

Installed as the console script `kubectl-hotfix`, so `kubectl hotfix ...` runs it once it is on PATH.
kubectl does not hand its own flags to a plugin: --kubeconfig, --context, -n/--namespace and
-A/--all-namespaces are read here, before or after the verb, as kubectl reads them."""

from __future__ import annotations

import argparse
import sys

from hotfix_operator import verify_command
from hotfix_operator.plugin import create, decide, drill, listing, status
from hotfix_operator.plugin.connection import PluginError, connect
from hotfix_operator.plugin.output import FORMATS, Output

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _connection_flags(parser: argparse.ArgumentParser, default: object) -> None:
    """kubectl's flags; on each verb with SUPPRESS as default so a flag before the verb is not undone."""
    parser.add_argument("--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", default=default, help="the kubeconfig context to use")
    parser.add_argument("-n", "--namespace", default=default, help="namespace (default: the context's)")
    parser.add_argument("-A", "--all-namespaces", action="store_true", default=default,
                        help="every namespace (list, postmortems)")


def _verb(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str,
          output: bool = False) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    _connection_flags(parser, argparse.SUPPRESS)
    if output:
        parser.add_argument("-o", "--output", choices=FORMATS, default=argparse.SUPPRESS,
                            help="print a json or yaml document instead of the table")
    return parser


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kubectl hotfix", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    _connection_flags(top, None)
    top.set_defaults(all_namespaces=False, output=None)
    sub = top.add_subparsers(dest="verb", required=True, metavar="VERB")
    create.add_arguments(_verb(sub, "create", "file a HotfixRelease from flags or -f FILE, checked first", True))
    drill.add_arguments(_verb(sub, "drill", "rehearse a hotfix: green up and checked beside blue, then removed; "
                                            "no traffic moves", True))
    decide.add_decision_arguments(_verb(sub, "approve", "approve a HotfixRelease (or, with --undo, its undo) as "
                                                        "yourself"), False)
    decide.add_decision_arguments(_verb(sub, "reject", "reject a HotfixRelease (or, with --undo, its undo) as "
                                                       "yourself (--comment says why)"), True)
    decide.add_abort_arguments(_verb(sub, "abort", "stop a HotfixRelease and put production back"))
    decide.add_abort_arguments(_verb(sub, "undo", "put back the version that ran before a Succeeded hotfix"))
    status.add_arguments(_verb(sub, "status", "where a HotfixRelease stands; --watch to follow it", True))
    _verb(sub, "list", "the HotfixReleases of a namespace (-A: all)", True)
    pm = _verb(sub, "postmortems", "the post-mortem each promoted hotfix owes", True)
    pm.add_argument("--missing", action="store_true", help="only those not complete (exit 1 when any)")
    verify = sub.add_parser("verify", help="the provenance gate on an image, before filing (hotfix-operator verify)",
                            description=verify_command.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verify_command.add_arguments(verify)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.verb == "verify":
        return verify_command.run(args)
    out = Output.standard()
    try:
        conn = connect(args.kubeconfig, args.context, args.namespace, args.all_namespaces)
        if args.verb == "create":
            return create.run(args, conn, out)
        if args.verb == "drill":
            return drill.run(args, conn, out)
        if args.verb in ("approve", "reject"):
            return decide.decide(args, conn, out, "Approve" if args.verb == "approve" else "Reject")
        if args.verb == "abort":
            return decide.abort(args, conn, out)
        if args.verb == "undo":
            return decide.undo(args, conn, out)
        if args.verb == "status":
            return status.run(args, conn, out)
        if args.verb == "list":
            return listing.run_list(args, conn, out)
        if args.verb == "postmortems":
            return listing.run_postmortems(args, conn, out)
    except PluginError as error:
        out.error(error.message)
        return error.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
