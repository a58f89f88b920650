"""The operator's own list-and-watch of the kinds a cutover decides on (Deployments, ReplicaSets, Services,
EndpointSlices, pods): each event updates one store of the watch cache and tells one callback, nothing more.

Why not Kopf's watches for these: Kopf treats every event of every object as a cause to handle (a per-object
memory and worker, a body wrapper, loggers, an error throttler, the indexers, then handler selection and
invocation), about 0.9 ms of CPU per event on a 2-core machine, and these kinds bring five of every six events a
hotfix causes (docs/scale.md). A store update and a wake-up need a parsed line of JSON. Kopf keeps the
HotfixReleases (their daemons and finalizer), HotfixPolicies and namespaces.

The protocol is the API server's: a paginated list gives the store and a resourceVersion, a watch from it with
bookmarks streams one JSON event per line, and an expired version (410 Gone) means list again: what vanished
meanwhile is told as deleted. Any other failure (the API server restarting, a dropped connection) retries with
backoff from the last version seen. A store is whole once its first list is in (`KindWatches.listed`); until
then reconciles read live.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson

log = logging.getLogger(__name__)
Body = Mapping[str, Any]
# what a body is stored under: (key, entry) pairs, as watch_cache reads them
Index = Callable[[Body], Iterable[tuple[Hashable, Any]]]
# told every change: the event type (ADDED, MODIFIED, DELETED) and the object
OnEvent = Callable[[str, Body], None]
PAGE_SIZE = 500
WATCH_SECONDS = 120
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
# what is kept of an object's metadata to tell its deletion when a relist finds it gone
KEPT_METADATA = ("name", "namespace", "uid", "labels", "ownerReferences")


@dataclass(frozen=True)
class Kind:
    store: str  # the watch cache's name for it
    group: str  # "" for the core API
    version: str
    plural: str
    index: Index
    on_event: OnEvent

    def path(self, namespace: str | None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{root}/namespaces/{quote(namespace, safe='')}/{self.plural}" if namespace else f"{root}/{self.plural}"

    def title(self) -> str:
        return ".".join(part for part in (self.plural, self.version, self.group) if part)


class Store(Mapping[Hashable, Iterable[Any]]):
    """key -> the entries stored under it, as watch_cache reads a store. Written on the event loop only; a
    reader on another thread copies one key's entries with `list()`, which holds the GIL throughout."""

    def __init__(self) -> None:
        self._by_key: dict[Hashable, dict[str, Any]] = {}
        self._keys_of: dict[str, tuple[Hashable, ...]] = {}

    def __getitem__(self, key: Hashable) -> Iterable[Any]:
        return self._by_key[key].values()

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)

    def objects(self) -> int:
        return len(self._keys_of)

    def put(self, uid: str, pairs: Iterable[tuple[Hashable, Any]]) -> None:
        self.drop(uid)
        keys = []
        for key, entry in pairs:
            self._by_key.setdefault(key, {})[uid] = entry
            keys.append(key)
        if keys:
            self._keys_of[uid] = tuple(keys)

    def drop(self, uid: str) -> None:
        for key in self._keys_of.pop(uid, ()):
            entries = self._by_key.get(key)
            if entries is not None:
                entries.pop(uid, None)
                if not entries:
                    del self._by_key[key]


@dataclass
class Connection:
    """Where the API server is and how to authenticate, as the kubernetes client loaded it."""
    server: str
    headers: Mapping[str, str] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | bool = True


def authorization(conf: Any) -> str | None:
    """The Authorization header the kubernetes client's configuration carries (a bearer token), if any; asked
    each time, since the client's refresh hook may rotate it."""
    header: str | None = conf.get_api_key_with_prefix("BearerToken") or conf.get_api_key_with_prefix("authorization")
    return header


def kube_connection() -> Callable[[], Connection]:
    """The credentials the kubernetes client loaded (--kubeconfig or in-cluster), as Kopf's login uses them: the
    TLS context built once, the token read at every connection (the client's refresh hook may rotate it)."""
    from kubernetes import client

    conf = client.Configuration.get_default_copy()
    context: ssl.SSLContext | bool = True
    if conf.host.startswith("https"):
        context = ssl.create_default_context(cafile=conf.ssl_ca_cert)
        if not conf.verify_ssl:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        if conf.cert_file:
            context.load_cert_chain(conf.cert_file, conf.key_file)

    def connect() -> Connection:
        header = authorization(conf)
        return Connection(conf.host, {"Authorization": header} if header else {}, context)
    return connect


class Gone(Exception):
    """The resourceVersion is too old to watch from: list again."""


class KindWatch:
    """One kind in one namespace (or cluster-wide): its list, its watch, and what it has seen."""

    def __init__(self, kind: Kind, namespace: str | None, store: Store, session: aiohttp.ClientSession,
                 connect: Callable[[], Connection]) -> None:
        self.kind, self.namespace, self.store = kind, namespace, store
        self._session, self._connect = session, connect
        self._seen: dict[str, dict[str, Any]] = {}  # uid -> KEPT_METADATA of what this watch holds
        self.listed = asyncio.Event()

    async def run(self) -> None:
        where = f"in '{self.namespace}'" if self.namespace else "cluster-wide"
        log.debug("Starting the watch-stream for %s %s.", self.kind.title(), where)
        failures = 0
        version: str | None = None
        while True:
            try:
                if version is None:
                    version = await self._list()
                    self.listed.set()
                version = await self._watch(version)
                failures = 0
            except Gone:
                version = None
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the API server restarting, a dropped connection: retry from where we were
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.warning("watching %s %s failed (%s); retrying in %.1fs", self.kind.title(), where,
                            error or type(error).__name__, delay)
                await asyncio.sleep(delay)

    async def _get(self, query: Mapping[str, str | int], limits: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        connection = self._connect()  # each time: a rotated token is read again
        url = f"{connection.server}{self.kind.path(self.namespace)}?{urlencode(query)}"
        response = await self._session.get(url, headers=connection.headers, ssl=connection.ssl_context,
                                           timeout=limits)
        if response.status == 410:
            response.release()
            raise Gone()
        if response.status != 200:
            text = (await response.text())[:300]
            response.release()
            raise RuntimeError(f"HTTP {response.status}: {text}")
        return response

    async def _list(self) -> str:
        """List every object, page by page, and make the store exactly that; the version to watch from."""
        items: list[Body] = []
        token = ""
        while True:
            query: dict[str, str | int] = {"limit": PAGE_SIZE, **({"continue": token} if token else {})}
            async with await self._get(query, aiohttp.ClientTimeout(total=60)) as response:
                page = await response.json(loads=orjson.loads)
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            token = meta.get("continue") or ""
            if not token:
                break
        listed = {str((item.get("metadata") or {}).get("uid")): item for item in items}
        for uid in [uid for uid in self._seen if uid not in listed]:
            self._tell("DELETED", {"metadata": self._seen[uid]})
        for uid, item in listed.items():
            self._tell("MODIFIED" if uid in self._seen else "ADDED", item)
        return str(meta.get("resourceVersion") or "")

    async def _watch(self, version: str) -> str:
        """Watch from `version` until the server ends the stream; the last version seen."""
        query: dict[str, str | int] = {"watch": "true", "resourceVersion": version, "allowWatchBookmarks": "true",
                 "timeoutSeconds": WATCH_SECONDS}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=WATCH_SECONDS + 30)
        async with await self._get(query, timeout) as response:
            pending = bytearray()
            async for chunk in response.content.iter_any():
                pending.extend(chunk)
                if b"\n" not in chunk:  # the middle of a long object: nothing to split yet
                    continue
                *lines, rest = pending.split(b"\n")
                pending = bytearray(rest)
                for line in lines:
                    if line.strip():
                        version = self._handle(orjson.loads(line), version)
        return version

    def _handle(self, event: Mapping[str, Any], version: str) -> str:
        kind, body = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if body.get("code") == 410:
                raise Gone()
            raise RuntimeError(f"watch error: {body.get('message') or body}")
        found = (body.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._tell(kind, body)
        return str(found) if found else version

    def _tell(self, kind: str, body: Body) -> None:
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid"))
        if kind == "DELETED":
            self.store.drop(uid)
            self._seen.pop(uid, None)
        else:
            self.store.put(uid, self.kind.index(body))
            self._seen[uid] = {key: meta[key] for key in KEPT_METADATA if key in meta}
        try:
            self.kind.on_event(kind, body)
        except Exception:  # a wake-up going wrong must not stop the store from following the cluster
            log.exception("handling a %s %s event failed", self.kind.title(), kind)


class KindWatches:
    """Every kind in every watched namespace (or cluster-wide), sharing one store per kind."""

    def __init__(self, kinds: Sequence[Kind], namespaces: Sequence[str] = ()) -> None:
        self.kinds, self.namespaces = tuple(kinds), tuple(namespaces)
        self.stores: dict[str, Store] = {kind.store: Store() for kind in self.kinds}
        self._watches: list[KindWatch] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    @property
    def listed(self) -> bool:
        """Whether every watch has its first list in, so every store is whole."""
        return bool(self._watches) and all(watch.listed.is_set() for watch in self._watches)

    def start(self, connect: Callable[[], Connection]) -> None:
        self._session = aiohttp.ClientSession()
        for kind in self.kinds:
            for namespace in self.namespaces or (None,):
                watch = KindWatch(kind, namespace, self.stores[kind.store], self._session, connect)
                self._watches.append(watch)
                self._tasks.append(asyncio.create_task(watch.run(), name=f"watch {kind.title()} {namespace or ''}"))

    async def wait_listed(self) -> None:
        await asyncio.gather(*(watch.listed.wait() for watch in self._watches))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
