"""in-toto Statements (v0.1 and v1): what an attestation is about and what it claims."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .reasons import Reason, Rejected, abbreviate_pair
from .strictjson import JsonObject, as_object, as_str, get_list, get_str, optional_object, parse_json_object

STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
STATEMENT_TYPES = (STATEMENT_V01, STATEMENT_V1)
_HEX = re.compile(r"[0-9a-fA-F]+")


@dataclass(frozen=True)
class Subject:
    name: str
    digests: Mapping[str, str]


@dataclass(frozen=True)
class Statement:
    statement_type: str
    predicate_type: str
    subjects: tuple[Subject, ...]
    predicate: JsonObject

    def sha256_subjects(self) -> list[str]:
        return [f"sha256:{subject.digests['sha256']}" for subject in self.subjects if "sha256" in subject.digests]


def read_statement(payload: bytes) -> Statement:
    """Parse verified payload bytes as a Statement; `_type` outside v0.1/v1 is refused."""
    what = "in-toto statement"
    document = parse_json_object(payload, what=what)
    statement_type = get_str(document, "_type", what)
    if statement_type not in STATEMENT_TYPES:
        raise Rejected(
            Reason.STATEMENT_TYPE_NOT_ALLOWED,
            f"statement _type {statement_type!r} is not {' or '.join(STATEMENT_TYPES)}",
        )
    predicate_type = get_str(document, "predicateType", what)
    if not predicate_type:
        raise Rejected(Reason.PREDICATE_TYPE_MISSING, "statement has an empty predicateType")
    subjects = []
    for index, raw in enumerate(get_list(document, "subject", what)):
        entry = as_object(raw, f"{what} subject {index}")
        digests: dict[str, str] = {}
        for algorithm, value in as_object(entry.get("digest"), f"{what} subject {index} digest").items():
            text = as_str(value, f"{what} subject {index} digest {algorithm}")
            if not _HEX.fullmatch(text):
                raise Rejected(Reason.MALFORMED_INPUT, f"{what} subject {index} {algorithm} digest is not hex")
            digests[algorithm] = text.lower()
        name = entry.get("name")
        subjects.append(Subject(name=name if isinstance(name, str) else "", digests=digests))
    if not subjects:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} has no subject")
    predicate = optional_object(document, "predicate", what) or {}
    return Statement(
        statement_type=statement_type, predicate_type=predicate_type, subjects=tuple(subjects), predicate=predicate
    )


def require_subject(statement: Statement, artifact_digest: str) -> None:
    """The statement must be about this artifact: otherwise it is replayed from another image."""
    subjects = statement.sha256_subjects()
    if artifact_digest in subjects:
        return
    if not subjects:
        raise Rejected(Reason.DIGEST_MISMATCH, f"{statement.predicate_type} statement names no sha256 subject")
    expected, actual = abbreviate_pair(artifact_digest, subjects[0], keep=19)
    others = f" (and {len(subjects) - 1} more)" if len(subjects) > 1 else ""
    raise Rejected(
        Reason.DIGEST_MISMATCH,
        f"{statement.predicate_type} statement is about {actual}{others} ≠ requested image {expected}",
    )
