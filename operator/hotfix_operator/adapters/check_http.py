"""The network side of health checks: resolve a host, send one request, read a bounded answer.

No redirect is ever followed (a check's target is the host the policy allowed, nothing it points to),
and the answer is read up to a limit, so a hostile or broken endpoint cannot flood the operator."""

from __future__ import annotations

import functools
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

# A check's answer is read up to this many bytes; a body condition is judged on that much.
BODY_LIMIT = 64 * 1024


class CheckTransportError(Exception):
    """Nothing to judge: refused, timed out, reset, not HTTP."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: str


def resolve(host: str) -> tuple[str, ...]:
    """Every address `host` resolves to now (an IP literal resolves to itself); () when it does not."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return ()
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


@functools.cache
def default_tls() -> ssl.SSLContext:
    """What verify=True means to httpx (the certifi bundle, hostnames checked), built once: a new client would
    load and parse the bundle again for every request, plain http included."""
    return httpx.create_ssl_context(verify=True, trust_env=False)


def request(method: str, url: str, *, timeout: float, headers: dict[str, str] | None = None,
            json_body: Any = None, verify: str | bool = True) -> Answer:
    tls: ssl.SSLContext | str | bool = default_tls() if verify is True else verify
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, verify=tls, trust_env=False) as client, \
                client.stream(method, url, headers=headers, json=json_body) as response:
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= BODY_LIMIT:
                    break
            body = b"".join(chunks)[:BODY_LIMIT].decode("utf-8", errors="replace")
            return Answer(response.status_code, body)
    except httpx.TimeoutException as exc:
        raise CheckTransportError(f"no answer within {timeout:g}s ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise CheckTransportError(f"{type(exc).__name__}: {exc}"[:300]) from exc
