"""The operator's own list-and-watch, against a loopback server speaking the API server's watch protocol: a paged
list, a stream of events (split anywhere, longer than a read buffer), bookmarks, an expired version that means
listing again and telling what vanished as deleted, and failures retried from the last version seen.

That the protocol matches the real API server is proven by every integration test: the operator's cutovers read
these stores (tests/integration)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from hotfix_operator.adapters import kind_watch
from hotfix_operator.adapters.kind_watch import Connection, Kind, KindWatches

TOKEN = "Bearer t0ken"


def pod(name: str, version: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}", "resourceVersion": version,
                         "labels": labels, "managedFields": [{"manager": "kubelet"}]}}


def event(kind: str, body: Mapping[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": body}).encode() + b"\n"


class FakeApiServer:
    """Answers lists from `lists` (one answer per list, each a list of pages; `continue` is a page's number) and
    watches from `watches` (one
    script per watch: bytes to send, a number to pause, or an HTTP status to answer instead); records each query."""

    def __init__(self, lists: list[list[dict[str, Any]]], watches: list[list[bytes | float] | int]) -> None:
        self.lists, self.watches = lists, watches
        self.queries: list[dict[str, str]] = []
        self.auth: set[str | None] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.queries.append(dict(request.query))
        self.auth.add(request.headers.get("Authorization"))
        if request.query.get("watch") != "true":
            pages, number = self.lists[0], int(request.query.get("continue") or 0)
            if number == len(pages) - 1:  # this list is answered: the next one answers the next list
                self.lists.pop(0)
            return web.json_response(pages[number])
        script = self.watches.pop(0) if self.watches else [3600.0]
        if isinstance(script, int):
            return web.json_response({"kind": "Status", "code": script}, status=script)
        response = web.StreamResponse()
        await response.prepare(request)
        for step in script:
            if isinstance(step, float):
                await asyncio.sleep(step)
            else:
                await response.write(step)
        return response


@asynccontextmanager
async def serving(server: FakeApiServer) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/shop/pods", server.handle)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def pods_kind(told: list[tuple[str, str]]) -> Kind:
    return Kind("pods", "", "v1", "pods", lambda body: [(body["metadata"]["namespace"], body["metadata"]["name"])],
                lambda kind, body: told.append((kind, body["metadata"]["name"])))


async def watch_until(server: FakeApiServer, done: Callable[[KindWatches], bool],
                      told: list[tuple[str, str]]) -> KindWatches:
    async with serving(server) as url:
        watches = KindWatches([pods_kind(told)], ["shop"])
        watches.start(lambda: Connection(url, {"Authorization": TOKEN}))
        try:
            for _ in range(200):
                if done(watches):
                    return watches
                await asyncio.sleep(0.02)
            raise AssertionError(f"never got there: told {told}, queries {server.queries}")
        finally:
            await watches.stop()


def test_a_paged_list_fills_the_store_and_only_then_is_it_listed() -> None:
    told: list[tuple[str, str]] = []
    pages = [{"metadata": {"continue": "1"}, "items": [pod("a", "3")]},
             {"metadata": {"resourceVersion": "10"}, "items": [pod("b", "4")]}]
    server = FakeApiServer([pages], [])
    watches = asyncio.run(watch_until(server, lambda w: w.listed and len(server.queries) >= 3, told))
    assert told == [("ADDED", "a"), ("ADDED", "b")]
    assert sorted(list(watches.stores["pods"]["shop"])) == ["a", "b"]
    assert server.queries[1] == {"limit": "500", "continue": "1"}
    assert server.queries[2]["resourceVersion"] == "10" and server.queries[2]["allowWatchBookmarks"] == "true"
    assert server.auth == {TOKEN}


def test_events_split_anywhere_and_longer_than_a_read_buffer_are_each_told_once() -> None:
    told: list[tuple[str, str]] = []
    big = pod("big", "12")
    big["metadata"]["annotations"] = {"note": "x" * 200_000}
    stream = event("ADDED", pod("c", "11")) + event("MODIFIED", big) + event("DELETED", pod("a", "13"))
    chunks: list[bytes | float] = [stream[:7], 0.01, stream[7:70_000], 0.01, stream[70_000:]]
    server = FakeApiServer([[{"metadata": {"resourceVersion": "10"}, "items": [pod("a", "3")]}]], [chunks])
    watches = asyncio.run(watch_until(server, lambda w: len(told) == 4, told))
    assert told == [("ADDED", "a"), ("ADDED", "c"), ("MODIFIED", "big"), ("DELETED", "a")]
    assert sorted(list(watches.stores["pods"]["shop"])) == ["big", "c"]


def test_a_bookmark_moves_the_version_the_next_watch_starts_from() -> None:
    told: list[tuple[str, str]] = []
    bookmark = event("BOOKMARK", {"metadata": {"resourceVersion": "42"}})
    server = FakeApiServer([[{"metadata": {"resourceVersion": "10"}, "items": []}]],
                           [[event("ADDED", pod("c", "11")), bookmark]])
    asyncio.run(watch_until(server, lambda w: len(server.queries) >= 3, told))
    assert [q.get("resourceVersion") for q in server.queries[1:3]] == ["10", "42"]
    assert told == [("ADDED", "c")]  # a bookmark is no object


def test_an_expired_version_lists_again_and_tells_what_vanished_as_deleted_with_its_labels() -> None:
    told: list[tuple[str, str]] = []
    bodies: list[dict[str, Any]] = []
    gone = event("ERROR", {"kind": "Status", "code": 410, "reason": "Expired"})
    server = FakeApiServer([[{"metadata": {"resourceVersion": "10"}, "items": [pod("a", "3", app="x"), pod("b", "4")]}],
                            [{"metadata": {"resourceVersion": "50"}, "items": [pod("b", "44")]}]],
                           [[gone]])

    async def run() -> KindWatches:
        async with serving(server) as url:
            kind = pods_kind(told)

            def record(event_type: str, body: Mapping[str, Any]) -> None:
                bodies.append(dict(body))
                kind.on_event(event_type, body)
            recording = Kind(kind.store, kind.group, kind.version, kind.plural, kind.index, record)
            watches = KindWatches([recording], ["shop"])
            watches.start(lambda: Connection(url, {}))
            for _ in range(200):
                if len(told) == 4:
                    break
                await asyncio.sleep(0.02)
            await watches.stop()
            return watches

    watches = asyncio.run(run())
    assert told == [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a"), ("MODIFIED", "b")]
    assert bodies[2] == {"metadata": {"name": "a", "namespace": "shop", "uid": "uid-a", "labels": {"app": "x"}}}
    assert list(watches.stores["pods"]["shop"]) == ["b"]
    assert server.queries[-1]["resourceVersion"] == "50"


def test_a_failed_watch_is_retried_from_the_last_version_seen_without_listing_again() -> None:
    told: list[tuple[str, str]] = []
    server = FakeApiServer([[{"metadata": {"resourceVersion": "10"}, "items": []}]],
                           [[event("ADDED", pod("c", "11"))], 500])
    asyncio.run(watch_until(server, lambda w: len(server.queries) >= 4, told))
    assert [(q.get("watch"), q.get("resourceVersion")) for q in server.queries] == [
        (None, None), ("true", "10"), ("true", "11"), ("true", "11")]


def test_an_expired_version_answered_as_http_410_lists_again() -> None:
    told: list[tuple[str, str]] = []
    server = FakeApiServer([[{"metadata": {"resourceVersion": "10"}, "items": [pod("a", "3")]}],
                            [{"metadata": {"resourceVersion": "20"}, "items": []}]], [410])
    asyncio.run(watch_until(server, lambda w: ("DELETED", "a") in told, told))
    assert told == [("ADDED", "a"), ("DELETED", "a")]


def test_a_store_files_an_object_under_its_keys_and_moves_it_when_they_change() -> None:
    store = kind_watch.Store()
    store.put("u1", [("shop", "a"), ("web", "a2")])
    store.put("u2", [("shop", "b")])
    assert sorted(list(store["shop"])) == ["a", "b"] and list(store["web"]) == ["a2"]
    store.put("u1", [("web", "a3")])
    assert list(store["shop"]) == ["b"] and list(store["web"]) == ["a3"]
    store.drop("u2")
    assert "shop" not in store and store.get("shop") is None and store.objects() == 1
