"""Turning a HotfixPolicy spec (a mapping from the Kubernetes object) into a policy, or a reason."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from .policy import ProvenancePolicy
from .reasons import Reason, Rejected


def load_policy(spec: Mapping[str, object]) -> ProvenancePolicy:
    """Validate the provenance section of a HotfixPolicy; raises Rejected(PolicyInvalid) naming each problem."""
    try:
        return ProvenancePolicy.model_validate(spec)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'spec'}: {error['msg']}" for error in exc.errors()
        )
        raise Rejected(Reason.POLICY_INVALID, f"provenance policy is invalid: {problems}") from None
