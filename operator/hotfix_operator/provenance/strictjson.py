"""JSON parsing that refuses what a Go verifier would read differently.

Signed documents are produced and checked by Go tools (cosign, slsa-verifier) whose decoder
matches object keys case-insensitively and keeps the last duplicate. Python's decoder keeps
case-distinct keys apart. An object holding "digest" twice, or "digest" and "Digest", could
therefore mean one thing to the signer's tooling and another to us, so we reject both forms.
Non-finite numbers, invalid UTF-8, byte-order marks and lone surrogates are refused too.
"""

from __future__ import annotations

import json
import re
from typing import NoReturn, TypeAlias, cast

from .limits import MAX_JSON_BYTES
from .reasons import Reason, Rejected

JsonValue: TypeAlias = "dict[str, JsonValue] | list[JsonValue] | str | int | float | bool | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, JsonValue]]) -> JsonObject:
    seen: dict[str, str] = {}
    for key, _ in pairs:
        folded = key.casefold()
        if folded in seen:
            first = seen[folded]
            detail = f"duplicate key {key!r}" if first == key else f"keys {first!r} and {key!r} differ only in case"
            raise _DuplicateKey(detail)
        seen[folded] = key
    return dict(pairs)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"non-finite number {name} is not JSON")


def _check_strings(value: JsonValue) -> None:
    stack: list[JsonValue] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                raise ValueError("string holds an unpaired UTF-16 surrogate")
        elif isinstance(item, dict):
            for key, child in item.items():
                if _LONE_SURROGATE.search(key):
                    raise ValueError("key holds an unpaired UTF-16 surrogate")
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)


def parse_json(data: bytes | str, *, what: str, max_bytes: int = MAX_JSON_BYTES) -> JsonValue:
    """Parse one JSON document or raise Rejected(MalformedInput) naming `what`."""
    size = len(data)
    if size > max_bytes:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} is {size} bytes, more than the limit of {max_bytes}")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Rejected(Reason.MALFORMED_INPUT, f"{what} is not valid UTF-8: {exc.reason}") from None
    else:
        text = data
    if text.startswith("\ufeff"):
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} starts with a byte-order mark")
    try:
        value = cast(
            JsonValue,
            json.loads(text, object_pairs_hook=_object_without_duplicates, parse_constant=_reject_constant),
        )
        _check_strings(value)
    except _DuplicateKey as exc:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} is ambiguous JSON: {exc}") from None
    except RecursionError:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} is not valid JSON: {exc}") from None
    return value


def parse_json_object(data: bytes | str, *, what: str, max_bytes: int = MAX_JSON_BYTES) -> JsonObject:
    return as_object(parse_json(data, what=what, max_bytes=max_bytes), what)


def _malformed(what: str, problem: str) -> Rejected:
    return Rejected(Reason.MALFORMED_INPUT, f"{what}: {problem}")


def _kind(value: JsonValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def as_object(value: JsonValue, what: str) -> JsonObject:
    if not isinstance(value, dict):
        raise _malformed(what, f"expected an object, found {_kind(value)}")
    return value


def as_list(value: JsonValue, what: str) -> list[JsonValue]:
    if not isinstance(value, list):
        raise _malformed(what, f"expected an array, found {_kind(value)}")
    return value


def as_str(value: JsonValue, what: str) -> str:
    if not isinstance(value, str):
        raise _malformed(what, f"expected a string, found {_kind(value)}")
    return value


def get_object(obj: JsonObject, key: str, what: str) -> JsonObject:
    if key not in obj:
        raise _malformed(what, f"missing {key!r}")
    return as_object(obj[key], f"{what}.{key}")


def get_list(obj: JsonObject, key: str, what: str) -> list[JsonValue]:
    if key not in obj:
        raise _malformed(what, f"missing {key!r}")
    return as_list(obj[key], f"{what}.{key}")


def get_str(obj: JsonObject, key: str, what: str) -> str:
    if key not in obj:
        raise _malformed(what, f"missing {key!r}")
    return as_str(obj[key], f"{what}.{key}")


def optional_object(obj: JsonObject, key: str, what: str) -> JsonObject | None:
    value = obj.get(key)
    return None if value is None else as_object(value, f"{what}.{key}")


def optional_list(obj: JsonObject, key: str, what: str) -> list[JsonValue] | None:
    value = obj.get(key)
    return None if value is None else as_list(value, f"{what}.{key}")


def optional_str(obj: JsonObject, key: str, what: str) -> str | None:
    value = obj.get(key)
    return None if value is None else as_str(value, f"{what}.{key}")


def get_int(obj: JsonObject, key: str, what: str, *, allow_string: bool = False) -> int:
    """An integer field; protobuf JSON writes 64-bit integers as strings, hence `allow_string`."""
    if key not in obj:
        raise _malformed(what, f"missing {key!r}")
    value = obj[key]
    if isinstance(value, bool):
        raise _malformed(what, f"{key!r} must be an integer, found a boolean")
    if isinstance(value, int):
        result = value
    elif allow_string and isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,20}", value):
        result = int(value)
    else:
        raise _malformed(what, f"{key!r} must be an integer, found {_kind(value)}")
    if not -(2**63) <= result < 2**63:
        raise _malformed(what, f"{key!r} is out of the 64-bit range")
    return result
