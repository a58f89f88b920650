"""GitHub's official OpenAPI description (npm package @octokit/openapi) and a router over it.

The loopback server routes every request through this index of the description's own path
templates, so a request the description does not define can never reach a handler.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from openapi_core import Config, OpenAPI

REPO_ROOT = Path(__file__).resolve().parents[3]
INSTALLER = REPO_ROOT / "hack" / "install-octokit-openapi.sh"
UPLOADS_ORIGIN = "https://uploads.github.com"
API_ORIGIN = "https://api.github.com"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

ServerName = Literal["api", "uploads"]


def installed_spec_path() -> Path:
    """Runs the pinned installer (quiet and fast once cached) and returns the description's path."""
    result = subprocess.run(["bash", str(INSTALLER)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{INSTALLER} failed ({result.returncode}):\n{result.stderr}")
    path = Path(result.stdout.strip().splitlines()[-1])
    if not path.is_file():
        raise RuntimeError(f"{INSTALLER} printed {path}, which is not a file")
    return path


@dataclass(frozen=True)
class Operation:
    """One method on one path template of the description."""

    operation_id: str
    method: str
    template: str
    server: ServerName
    parameter_names: tuple[str, ...]
    pattern: re.Pattern[str]
    literal_length: int

    @property
    def origin(self) -> str:
        return UPLOADS_ORIGIN if self.server == "uploads" else API_ORIGIN


@dataclass(frozen=True)
class RouteMatch:
    operation: Operation
    path_params: Mapping[str, str]

    def normalized_path(self) -> str:
        """The template filled with the parameters, each escaped as one segment."""
        path = self.operation.template
        for name, value in self.path_params.items():
            path = path.replace("{" + name + "}", urllib.parse.quote(value, safe=""))
        return path


class GitHubSpec:
    """The parsed description: raw document, an openapi-core handle and the route index."""

    def __init__(self, document: dict[str, Any], source: Path | None = None) -> None:
        self.document = document
        self.source = source
        self.version = str(document.get("info", {}).get("version", "unknown"))
        # The description itself is GitHub's published artefact; validating the 13 MB document
        # on every run would cost seconds and protect against nothing we control.
        config = Config(
            spec_validator_cls=None,
            # GitHub's vendor media type for contents is JSON without a +json suffix.
            extra_media_type_deserializers={"application/vnd.github.object": _json_bytes},
        )
        self.openapi = OpenAPI.from_dict(document, config=config)
        self.operations = tuple(self._index_operations())
        self._by_template = {(op.method, op.template): op for op in self.operations}

    def resolve(self, node: Mapping[str, Any]) -> dict[str, Any]:
        """Follows local $refs until a concrete node is reached."""
        seen = 0
        current: Mapping[str, Any] = node
        while "$ref" in current:
            pointer = str(current["$ref"])
            if not pointer.startswith("#/"):
                raise ValueError(f"only local references are supported, got {pointer}")
            target: Any = self.document
            for part in pointer[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            current = target
            seen += 1
            if seen > 64:
                raise ValueError(f"reference cycle at {pointer}")
        return dict(current)

    def schema(self, name: str) -> dict[str, Any]:
        return dict(self.document["components"]["schemas"][name])

    def operation(self, method: str, template: str) -> Operation:
        try:
            return self._by_template[(method.upper(), template)]
        except KeyError:
            raise KeyError(f"{method.upper()} {template} is not in GitHub's OpenAPI description") from None

    def raw_operation(self, operation: Operation) -> dict[str, Any]:
        return dict(self.document["paths"][operation.template][operation.method.lower()])

    def find(self, method: str, server: ServerName, raw_path: str) -> RouteMatch | None:
        """The most specific operation whose template matches the still-escaped request path."""
        best: RouteMatch | None = None
        for operation in self.operations:
            if operation.method != method.upper() or operation.server != server:
                continue
            found = operation.pattern.fullmatch(raw_path)
            if found is None:
                continue
            if best is not None and best.operation.literal_length >= operation.literal_length:
                continue
            params = {
                name: urllib.parse.unquote(value)
                for name, value in zip(operation.parameter_names, found.groups(), strict=True)
            }
            best = RouteMatch(operation, params)
        return best

    def _index_operations(self) -> list[Operation]:
        operations = []
        for template, item in self.document["paths"].items():
            for method, raw in item.items():
                if method not in HTTP_METHODS:
                    continue
                server: ServerName = "api"
                if any(str(s.get("url", "")).startswith(UPLOADS_ORIGIN) for s in raw.get("servers", [])):
                    server = "uploads"
                multi_segment = {
                    param["name"]
                    for param in (self.resolve(p) for p in [*item.get("parameters", []), *raw.get("parameters", [])])
                    if param.get("in") == "path" and param.get("x-multi-segment")
                }
                pattern, names, literal_length = _compile_template(template, multi_segment)
                operations.append(
                    Operation(
                        operation_id=str(raw.get("operationId", f"{method} {template}")),
                        method=method.upper(),
                        template=template,
                        server=server,
                        parameter_names=names,
                        pattern=pattern,
                        literal_length=literal_length,
                    )
                )
        return operations


def _compile_template(template: str, multi_segment: set[str]) -> tuple[re.Pattern[str], tuple[str, ...], int]:
    """A regex for a path template; multi-segment parameters (x-multi-segment) may span slashes."""
    parts: list[str] = []
    names: list[str] = []
    literal_length = 0
    for piece in re.split(r"(\{[^}]+\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            name = piece[1:-1]
            names.append(name)
            parts.append("(.+)" if name in multi_segment else "([^/]+)")
        else:
            literal_length += len(piece)
            parts.append(re.escape(piece))
    return re.compile("".join(parts)), tuple(names), literal_length


def _json_bytes(data: bytes | str, **media_type_parameters: str) -> Any:
    return json.loads(data)


@functools.cache
def load_github_spec() -> GitHubSpec:
    """Parsed once per process: the description is large and never changes within a run."""
    path = installed_spec_path()
    with path.open("rb") as handle:
        document = json.load(handle)
    return GitHubSpec(document, source=path)
