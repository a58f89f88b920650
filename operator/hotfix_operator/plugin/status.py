"""kubectl hotfix status NAME [--watch] [--timeout DURATION]: the phase, message, timeline, conditions,
approvals, SLA countdown, per-check rows and the next step. --watch follows the object through a
Kubernetes watch (no polling): a live view on a terminal, one line per change otherwise, and leaves
with 0 on Succeeded, 1 on RolledBack, Rejected, Failed or Expired, 2 when --timeout passes first."""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException
from rich.live import Live
from urllib3.exceptions import HTTPError

from hotfix_operator.api import API_GROUP, API_VERSION, PLURAL
from hotfix_operator.plugin.connection import Connection, PluginError, refusal
from hotfix_operator.plugin.output import Output
from hotfix_operator.plugin.render import LiveStatus, plain_line, status_renderable
from hotfix_operator.plugin.summary import exit_code, parse_duration, summarize

EXIT_TIMEOUT = 2
WATCH_CHUNK_SECONDS = 300  # the longest single watch request; it is re-opened from the last resourceVersion


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the HotfixRelease")
    parser.add_argument("-w", "--watch", action="store_true",
                        help="follow it until it finishes (exit 0 Succeeded; 1 RolledBack, Rejected, Failed, "
                             "Expired; 2 timeout)")
    parser.add_argument("--timeout", type=_duration, help="with --watch: give up after this long (90s, 5m, 1h30m)")


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def now() -> datetime:
    return datetime.now(UTC)


def run(args: argparse.Namespace, conn: Connection, out: Output) -> int:
    if not args.watch:
        show(conn.get(args.name), args.output, out)
        return 0
    deadline = time.monotonic() + args.timeout if args.timeout is not None else math.inf
    if args.output:
        return _follow(conn, args.name, deadline, lambda obj: out.document(summarize(obj, now()).to_json(),
                                                                             args.output), out)
    if out.out.is_terminal:
        return _follow_live(conn, args.name, deadline, out)
    last: list[tuple[str, str]] = []

    def changed(obj: dict[str, Any]) -> None:
        s = summarize(obj, now())
        if not last or last[-1] != (s.phase, s.message):
            last.append((s.phase, s.message))
            out.line(plain_line(s, now()))

    return _follow(conn, args.name, deadline, changed, out)


def show(obj: dict[str, Any], fmt: str | None, out: Output) -> None:
    s = summarize(obj, now())
    if fmt:
        out.document(s.to_json(), fmt)
    else:
        out.out.print(status_renderable(s))


def _follow_live(conn: Connection, name: str, deadline: float, out: Output) -> int:
    view: LiveStatus | None = None
    with Live(console=out.out, refresh_per_second=2, transient=False) as live:
        def changed(obj: dict[str, Any]) -> None:
            nonlocal view
            if view is None:
                view = LiveStatus(obj, now)
                live.update(view, refresh=True)
            else:
                view.obj = obj
                live.refresh()

        return _follow(conn, name, deadline, changed, out)


def _follow(conn: Connection, name: str, deadline: float, changed: Callable[[dict[str, Any]], None],
            out: Output) -> int:
    phase = "?"
    for obj in releases(conn, name, deadline):
        changed(obj)
        phase = str((obj.get("status") or {}).get("phase") or "Pending")
        code = exit_code(phase)
        if code is not None:
            return code
    out.error(f"timed out waiting for {conn.namespace}/{name} to finish: it is {phase}; "
              f"kubectl hotfix status {name} -n {conn.namespace} shows where it stands")
    return EXIT_TIMEOUT


def releases(conn: Connection, name: str, deadline: float) -> Iterator[dict[str, Any]]:
    """The release now, then each version of it a watch delivers, until `deadline` (monotonic) passes."""
    obj = conn.get(name)
    yield obj
    version = obj["metadata"]["resourceVersion"]
    while (left := deadline - time.monotonic()) > 0:
        seconds = max(1, min(WATCH_CHUNK_SECONDS, math.ceil(left)))
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            conn.custom.list_namespaced_custom_object, API_GROUP, API_VERSION, conn.namespace, PLURAL,
            field_selector=f"metadata.name={name}", resource_version=version, timeout_seconds=seconds,
            allow_watch_bookmarks=True, _request_timeout=seconds + 10)
        stale = False
        try:
            for event in stream:
                kind, item = event["type"], event["object"]
                if kind == "DELETED":
                    raise PluginError(f"{conn.namespace}/{name} was deleted while it was watched")
                if kind == "ERROR":  # 410 Gone: the version is too old to go on from
                    stale = True
                    break
                version = item["metadata"]["resourceVersion"]
                if kind != "BOOKMARK":
                    yield item
                if time.monotonic() >= deadline:
                    return
        except ApiException as error:
            if error.status != 410:
                raise refusal(error, f"watch {conn.namespace}/{name}", conn.namespace) from None
            stale = True
        except HTTPError as error:
            raise PluginError(f"lost the watch on {conn.namespace}/{name} ({type(error).__name__}); "
                              "run the command again") from None
        if stale:  # start again from the object as it is now
            obj = conn.get(name)
            version = obj["metadata"]["resourceVersion"]
            yield obj
