"""Assertions on provenance verdicts, shared by every suite that asks the verifier for one."""

from __future__ import annotations

from hotfix_operator.provenance import Reason, VerificationResult


def refused(result: VerificationResult, reason: Reason, *fragments: str) -> None:
    """The verdict refuses for `reason`, its message names every fragment, and it vouches for nothing.

    A refusal that still carried a summary could be mistaken downstream for verified provenance,
    so its absence is part of what refused means.
    """
    assert not result.ok, result
    assert result.reason == reason, f"{result.reason}: {result.message}"
    assert result.summary is None, result.summary
    for fragment in fragments:
        assert fragment in result.message, result.message
