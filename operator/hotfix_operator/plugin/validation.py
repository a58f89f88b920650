"""A HotfixRelease checked on the workstation with the API's own rules, before anything is sent.

Three layers, in the order the API server applies them: the CRD's openAPIV3Schema (types, required
fields, lengths, bounds; fields it does not know would be dropped), the CRD's CEL rules
(x-kubernetes-validations, the same messages the API server answers with), then the pydantic Spec the
operator reads. The schema and rules are read from the CRD shipped in the package
(hotfix_operator/data/hotfixrelease.yaml is crds/hotfixrelease.yaml), so they cannot drift apart.

CEL is not evaluated by a CEL engine: each rule is split into the few shapes the CRD uses (`matches`,
`startsWith`, `in [...]`, `trim().size()`, `isURL`/`url()`, `has`, field comparisons, counts
of fields set). A rule of
another shape is listed by `unchecked_rules()` (a unit test keeps that list empty) and left to the
API server. Transition rules (those reading `oldSelf`) do not apply when a release is created.
"""

from __future__ import annotations

import difflib
import functools
import re
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema
import pydantic
import yaml

from hotfix_operator.api import API_VERSION, KIND
from hotfix_operator.core.model import Spec

Predicate = Callable[[Any], bool]


@dataclass(frozen=True)
class Problem:
    """One mistake in a manifest: the field (`spec.commitSha`) and what to do about it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@functools.cache
def crd_schema() -> dict[str, Any]:
    """The served version's openAPIV3Schema from the packaged CRD."""
    text = (resources.files("hotfix_operator") / "data" / "hotfixrelease.yaml").read_text()
    crd = next(d for d in yaml.safe_load_all(text)
               if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition")
    version = next(v for v in crd["spec"]["versions"] if v["name"] == API_VERSION)
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def check_manifest(manifest: dict[str, Any]) -> list[Problem]:
    """Every mistake the API server would refuse (or silently drop) in a new HotfixRelease."""
    schema = crd_schema()
    problems = [*_identity_problems(manifest), *_schema_problems(schema, manifest)]
    problems += list(_unknown_fields(schema, manifest, ""))
    problems += list(_rule_problems(schema, manifest, ""))
    if not problems:
        problems += _model_problems(manifest.get("spec"))
    return _unique(problems)


def _identity_problems(manifest: dict[str, Any]) -> Iterator[Problem]:
    if manifest.get("kind") != KIND:
        yield Problem("kind", f"must be {KIND}, not {manifest.get('kind')!r}")
    name = (manifest.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name) or len(name) > 253:
        yield Problem("metadata.name", f"{name!r} is not a Kubernetes object name: lowercase letters, digits, "
                                       "'-' and '.', starting and ending with a letter or digit")


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _schema_problems(schema: dict[str, Any], manifest: dict[str, Any]) -> Iterator[Problem]:
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path))):
        where = _path(error.absolute_path)
        value = error.validator_value
        if error.validator == "required":
            missing = [r for r in value if r not in (error.instance or {})]
            for field in missing:
                yield Problem(f"{where}.{field}" if where else field, "is required")
            continue
        yield Problem(where or "(manifest)", _schema_message(error))


def _schema_message(error: jsonschema.ValidationError) -> str:
    value: Any = error.validator_value
    instance: Any = error.instance
    match error.validator:
        case "type":
            return f"must be a{'n' if str(value)[0] in 'aeiou' else ''} {value}, not {type(instance).__name__}"
        case "maxLength":
            return f"is {len(instance)} characters; at most {value} are allowed"
        case "minLength":
            return "must not be empty" if value == 1 else f"must be at least {value} characters"
        case "minimum":
            return f"must be at least {value}"
        case "maximum":
            return f"must be at most {value}"
        case "maxItems":
            return f"may hold at most {value} items"
        case "pattern":
            return f"{instance!r} does not match {value}"
        case "enum":
            return f"must be one of {', '.join(map(str, value))}"
    return str(error.message)


def _unknown_fields(schema: dict[str, Any], value: Any, where: str) -> Iterator[Problem]:
    """Fields the schema does not declare: the API server would prune them, so a typo would go unnoticed."""
    if isinstance(value, dict) and schema.get("type") == "object":
        props: dict[str, Any] = schema.get("properties") or {}
        if props and not schema.get("x-kubernetes-preserve-unknown-fields"):
            for key in value:
                if key not in props:
                    close = difflib.get_close_matches(key, list(props), n=1)
                    hint = f" (did you mean {close[0]}?)" if close else f"; known fields: {', '.join(props)}"
                    yield Problem(f"{where}.{key}" if where else key, f"is not a field of this API{hint}")
        for key, sub in props.items():
            if key in value and key != "status":
                yield from _unknown_fields(sub, value[key], f"{where}.{key}" if where else key)
    elif isinstance(value, list) and schema.get("type") == "array":
        for i, item in enumerate(value):
            yield from _unknown_fields(schema.get("items") or {}, item, f"{where}[{i}]")


def _rule_problems(schema: dict[str, Any], value: Any, where: str) -> Iterator[Problem]:
    if value is None:
        return
    for rule in schema.get("x-kubernetes-validations") or ():
        predicate = compile_rule(rule["rule"])
        if predicate is None:
            continue  # a transition rule, or a shape this module does not read: the API server checks it
        try:
            ok = predicate(value)
        except (TypeError, AttributeError, KeyError):
            continue  # a wrong type: the schema check already named it
        if not ok:
            yield Problem(where or "(manifest)", rule.get("message") or f"fails the rule {rule['rule']}")
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key in value and key != "status":
                yield from _rule_problems(sub, value[key], f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _rule_problems(schema.get("items") or {}, item, f"{where}[{i}]")


def _model_problems(spec: Any) -> list[Problem]:
    try:
        Spec.model_validate(spec)
    except pydantic.ValidationError as error:
        return [Problem(_path(("spec", *e["loc"])), e["msg"]) for e in error.errors()]
    return []


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


# -- the CEL rules' shapes ---------------------------------------------------------------------------

_STRING = r"'((?:[^'\\]|\\.)*)'"


def _literal(text: str) -> str:
    """A single-quoted CEL string literal's value (`\\\\` is one backslash, `\\'` a quote)."""
    return re.sub(r"\\(.)", r"\1", text)


def _field(value: dict[str, Any], name: str) -> Any:
    return value[name] if isinstance(value, dict) else getattr(value, name)


def _matches(m: re.Match[str]) -> Predicate:
    pattern = re.compile(_literal(m[1]))
    return lambda v: pattern.search(v) is not None


def _starts_with(m: re.Match[str]) -> Predicate:
    prefix = _literal(m[1])
    return lambda v: bool(v.startswith(prefix))


def _trimmed_size(m: re.Match[str]) -> Predicate:
    least = int(m[1])
    return lambda v: len(v.strip()) >= least


def _one_of(m: re.Match[str]) -> Predicate:
    choices = [_literal(s) for s in re.findall(_STRING, m[1])]
    return lambda v: v in choices


def _scheme(m: re.Match[str]) -> Predicate:
    scheme = _literal(m[1])
    return lambda v: urllib.parse.urlsplit(v).scheme == scheme


def _has(m: re.Match[str]) -> Predicate:
    negated, name = bool(m[1]), m[2]
    return lambda v: (name in v) != negated


def _compare(m: re.Match[str]) -> Predicate:
    left, equal, right = m[1], m[2] == "==", m[3]
    return lambda v: (_field(v, left) == _field(v, right)) == equal


ATOMS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], Predicate]], ...] = tuple(
    (re.compile(pattern), build) for pattern, build in (
        (rf"self\.matches\({_STRING}\)", _matches),
        (rf"self\.startsWith\({_STRING}\)", _starts_with),
        (r"self\.trim\(\)\.size\(\) >= (\d+)", _trimmed_size),
        (r"self in \[(.*)\]", _one_of),
        (r"isURL\(self\)", lambda m: lambda v: bool(urllib.parse.urlsplit(v).scheme)),
        (rf"url\(self\)\.getScheme\(\) == {_STRING}", _scheme),
        (r"url\(self\)\.getHostname\(\) != ''", lambda m: lambda v: bool(urllib.parse.urlsplit(v).hostname)),
        (r"(!?)has\(self\.(\w+)\)", _has),
        (r"self\.(\w+) (==|!=) self\.(\w+)", _compare),
    ))


def _count_present(rule: str) -> Predicate | None:
    """`(has(self.a) ? 1 : 0) + (has(self.b) ? 1 : 0) == N`: exactly N of these fields are set."""
    match = re.fullmatch(r"((?:\(has\(self\.\w+\) \? 1 : 0\)(?: \+ )?)+) == (\d+)", rule.strip())
    if not match:
        return None
    names, wanted = re.findall(r"has\(self\.(\w+)\)", match[1]), int(match[2])
    return lambda v: sum(n in v for n in names) == wanted


def _not_both(rule: str) -> Predicate | None:
    """`!(has(self.a) && has(self.b))`: not both."""
    match = re.fullmatch(r"!\(has\(self\.(\w+)\) && has\(self\.(\w+)\)\)", rule.strip())
    if not match:
        return None
    a, b = match[1], match[2]
    return lambda v: not (a in v and b in v)


def _one_or_other(rule: str) -> Predicate | None:
    """`has(self.a) != has(self.b)`: exactly one of the two."""
    match = re.fullmatch(r"has\(self\.(\w+)\) != has\(self\.(\w+)\)", rule.strip())
    if not match:
        return None
    a, b = match[1], match[2]
    return lambda v: (a in v) != (b in v)


# rules read whole, before a rule is split into || and && of atoms
WHOLE_RULES: tuple[Callable[[str], Predicate | None], ...] = (_count_present, _not_both, _one_or_other)


def _atom(text: str) -> Predicate | None:
    for pattern, build in ATOMS:
        match = pattern.fullmatch(text.strip())
        if match:
            return build(match)
    return None


def compile_rule(rule: str) -> Predicate | None:
    """A CRD rule as a Python predicate on `self`; None for a transition rule or an unknown shape."""
    if "oldSelf" in rule:
        return None
    for whole in WHOLE_RULES:
        if (predicate := whole(rule)) is not None:
            return predicate
    disjuncts: list[list[Predicate]] = []
    for alternative in rule.split(" || "):
        conjuncts = [_atom(part) for part in alternative.split(" && ")]
        if any(c is None for c in conjuncts):
            return None
        disjuncts.append([c for c in conjuncts if c is not None])
    return lambda v: any(all(c(v) for c in conjuncts) for conjuncts in disjuncts)


def unchecked_rules(schema: dict[str, Any] | None = None, where: str = "") -> list[str]:
    """Non-transition rules of the CRD this module cannot evaluate (the API server still does)."""
    schema = crd_schema() if schema is None else schema
    found = [f"{where or '(root)'}: {r['rule']}" for r in schema.get("x-kubernetes-validations") or ()
             if "oldSelf" not in r["rule"] and compile_rule(r["rule"]) is None]
    for key, sub in (schema.get("properties") or {}).items():
        if key != "status":
            found += unchecked_rules(sub, f"{where}.{key}" if where else key)
    if isinstance(schema.get("items"), dict):
        found += unchecked_rules(schema["items"], f"{where}[]")
    return found
