"""Checks each request and response of the loopback server against GitHub's OpenAPI description.

openapi-core does the heavy lifting (parameters, request bodies, response status codes, response
bodies and headers, all against the description's own schemas). Two rules are added on top:

* Request bodies may not carry properties the description does not declare. GitHub silently
  ignores unknown properties, so a misspelt one (``make_latset``) would otherwise pass here and
  do nothing in production.
* A few failures GitHub documents once for the whole API rather than per operation (bad
  credentials, rate limits, server errors) are accepted on every operation, provided their body
  has the shape of the description's ``basic-error``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openapi_core.datatypes import RequestParameters
from openapi_core.exceptions import OpenAPIError
from openapi_schema_validator import OAS30Validator
from werkzeug.datastructures import Headers, ImmutableMultiDict

from .spec import GitHubSpec, RouteMatch

# Statuses GitHub can return from any endpoint, described in its REST documentation on
# authentication, rate limits and troubleshooting instead of in each operation.
API_WIDE_ERROR_STATUSES = frozenset({401, 403, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Violation:
    """A request or response that GitHub's OpenAPI description does not allow."""

    kind: str  # unknown-operation | request | response | unimplemented
    method: str
    path: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.method} {self.path}: {self.detail}"


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    query: Sequence[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes
    content_type: str


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> ApiResponse:
        return cls(status, json.dumps(payload).encode(), headers=dict(headers or {}))

    @classmethod
    def empty(cls, status: int, headers: Mapping[str, str] | None = None) -> ApiResponse:
        return cls(status, b"", content_type="", headers=dict(headers or {}))


class _CoreRequest:
    """An ApiRequest in the shape openapi-core reads, routed by our own template match."""

    def __init__(self, match: RouteMatch, request: ApiRequest) -> None:
        self.host_url = match.operation.origin
        self.path = match.normalized_path()
        self.path_pattern = match.operation.template
        self.method = request.method.lower()
        self.body: bytes | None = request.body or None
        self.content_type = request.content_type.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.query)),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
            path=dict(match.path_params),
        )


class _CoreResponse:
    def __init__(self, response: ApiResponse) -> None:
        self.status_code = response.status
        self.content_type = response.content_type.lower()
        self.headers = Headers(list(response.headers.items()))
        self.data: bytes | None = response.body or None


class ContractValidator:
    """Answers 'what is wrong with this exchange' with a list of human-readable problems."""

    def __init__(self, spec: GitHubSpec) -> None:
        self.spec = spec
        self._basic_error = OAS30Validator(spec.schema("basic-error"))

    def check_request(self, match: RouteMatch, request: ApiRequest) -> list[str]:
        # validate_* rather than unmarshal_*: the same checks without building Python values.
        try:
            self.spec.openapi.validate_request(_CoreRequest(match, request))
        except OpenAPIError as error:
            return [_describe(error)]
        return list(self._undeclared_body_properties(match, request))

    def check_response(self, match: RouteMatch, request: ApiRequest, response: ApiResponse) -> list[str]:
        documented = self._documented_statuses(match)
        if str(response.status) not in documented and response.status in API_WIDE_ERROR_STATUSES:
            return self._check_api_wide_error(response)
        try:
            self.spec.openapi.validate_response(_CoreRequest(match, request), _CoreResponse(response))
        except OpenAPIError as error:
            return [_describe(error)]
        return []

    def _documented_statuses(self, match: RouteMatch) -> set[str]:
        return set(self.spec.raw_operation(match.operation).get("responses", {}))

    def _check_api_wide_error(self, response: ApiResponse) -> list[str]:
        try:
            payload = json.loads(response.body or b"null")
        except ValueError as error:
            return [f"{response.status} body is not JSON: {error}"]
        return [
            f"{response.status} body is not a basic-error: {error.message}"
            for error in self._basic_error.iter_errors(payload)
        ]

    def _undeclared_body_properties(self, match: RouteMatch, request: ApiRequest) -> list[str]:
        if not request.body or "json" not in request.content_type:
            return []
        operation = self.spec.raw_operation(match.operation)
        body_spec = operation.get("requestBody")
        if body_spec is None:
            return ["the operation takes no request body"]
        content = self.spec.resolve(body_spec).get("content", {})
        media = content.get("application/json")
        if media is None or "schema" not in media:
            return []
        return [
            f"request body property {path} is not declared by the description"
            for path in self._undeclared(media["schema"], json.loads(request.body), "$")
        ]

    def _undeclared(self, schema_node: Mapping[str, Any], value: Any, where: str) -> Iterable[str]:
        schema = self.spec.resolve(schema_node)
        if isinstance(value, list):
            items = schema.get("items")
            if isinstance(items, Mapping):
                for index, item in enumerate(value):
                    yield from self._undeclared(items, item, f"{where}[{index}]")
            return
        if not isinstance(value, dict):
            return
        declared = self._declared_properties(schema)
        if declared is None:
            return
        for key, item in value.items():
            if key not in declared:
                yield f"{where}.{key}"
            else:
                yield from self._undeclared(declared[key], item, f"{where}.{key}")

    def _declared_properties(self, schema: Mapping[str, Any]) -> dict[str, Any] | None:
        """Properties an object may carry, or None when the schema admits arbitrary keys."""
        if schema.get("additionalProperties") not in (None, False):
            return None
        declared: dict[str, Any] = dict(schema.get("properties", {}))
        alternatives = [*schema.get("allOf", []), *schema.get("anyOf", []), *schema.get("oneOf", [])]
        for alternative in alternatives:
            nested = self._declared_properties(self.spec.resolve(alternative))
            if nested is None:
                return None
            declared.update(nested)
        if not declared and schema.get("type") != "object":
            return None
        return declared


def _describe(error: Exception) -> str:
    """The error with the schema messages openapi-core keeps one level down."""
    text = str(error)
    for source in (error, error.__cause__):
        schema_errors = getattr(source, "schema_errors", None)
        if schema_errors:
            details = "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in schema_errors)
            return f"{type(error).__name__}: {details}"
    if error.__cause__ is not None and str(error.__cause__) not in text:
        text = f"{text}: {error.__cause__}"
    return f"{type(error).__name__}: {text}"
