"""kubectl hotfix create: a HotfixRelease from flags or -f FILE, checked here with the API's own rules
(every mistake named with its field and what to do) before anything is sent, filed in your name."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from hotfix_operator.plugin import manifest as manifests
from hotfix_operator.plugin.connection import Connection, PluginError
from hotfix_operator.plugin.output import Output
from hotfix_operator.plugin.validation import check_manifest

EXIT_INVALID = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="the release's name (default: <deployment>-<version>)")
    parser.add_argument("-f", "--filename", help="a HotfixRelease manifest (YAML or JSON; - for stdin); "
                                                 "flags given as well override its fields")
    for dest, _, help_text in manifests.SPEC_FLAGS:
        kind = int if dest in manifests.INT_FLAGS else str
        parser.add_argument("--" + dest.replace("_", "-"), dest=dest, type=kind, help=help_text)
    parser.add_argument("--no-auto-rollback", dest="auto_rollback", action="store_false", default=None,
                        help="do not roll back by itself when green fails (default: it does)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check and print the manifest; file nothing (asks who you are unless the "
                             "manifest names requestedBy)")


def _read(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except (OSError, yaml.YAMLError) as error:
        raise PluginError(f"cannot read {path}: {error}", EXIT_INVALID) from error
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise PluginError(f"{path} must hold exactly one HotfixRelease (found {len(documents)} documents)",
                          EXIT_INVALID)
    return documents[0]


def run(args: argparse.Namespace, conn: Connection, out: Output, drill: bool = False) -> int:
    base = _read(args.filename) if args.filename else None
    flags = {dest: getattr(args, dest) for dest, _, _ in manifests.SPEC_FLAGS}
    file_ns = ((base or {}).get("metadata") or {}).get("namespace")
    if args.namespace and file_ns and file_ns != args.namespace:
        raise PluginError(f"the manifest says namespace {file_ns} but -n says {args.namespace}; give one",
                          EXIT_INVALID)
    conn.namespace = args.namespace or file_ns or conn.namespace
    release = manifests.build(base, flags, args.name, conn.namespace, args.auto_rollback)
    if drill:  # kubectl hotfix drill
        release["spec"]["drill"] = True
    me = None
    if not (args.dry_run and isinstance(release["spec"].get("requestedBy"), str)):
        me = conn.whoami()
        manifests.fill_requester(release, me.username)
    problems = check_manifest(release)
    if me is not None:
        problems += list(manifests.admission_problems(release, me.username))
    if problems:
        for problem in manifests.with_flag_hints(problems):
            out.error(str(problem))
        out.error(f"nothing was sent: fix the {len(problems)} problem(s) above"
                  + (f" in {args.filename}" if args.filename else ""))
        return EXIT_INVALID
    if args.dry_run:
        out.document(release, args.output or "yaml")
        return 0
    created = conn.create(release)
    if args.output:
        out.document(created, args.output)
    else:
        name = created["metadata"]["name"]
        what = "drill " if drill else ""
        out.line(f"hotfixrelease.hotfix.dev/{name} {what}created in {conn.namespace} as "
                 f"{release['spec']['requestedBy']}; follow it: kubectl hotfix status {name} -n {conn.namespace} "
                 "--watch")
    return 0
