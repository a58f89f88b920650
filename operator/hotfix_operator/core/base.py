"""The base of every typed model of the HotfixRelease and HotfixPolicy: camelCase on the wire, frozen,
unknown fields ignored (the API server's schema is the authority on shape)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)
