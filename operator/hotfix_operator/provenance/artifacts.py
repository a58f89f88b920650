"""Checking one Sigstore bundle against one artifact digest, without the provenance rules.

This is the signature layer of the gate on its own: who signed, whether the log agrees, and
that the signature (or, for DSSE, the statement's subject) is about this artifact. The
operator uses `verify_provenance`; this entry point serves artifacts that are not images
(a release binary, the evidence bundle) and conformance testing.
"""

from __future__ import annotations

from .bundles import verify_bundle
from .inputs import BundleArtifact
from .policy import SignerPolicy
from .reasons import Reason, Rejected
from .results import SignatureCheck
from .statement import read_statement, require_subject


def verify_bundle_signature(bundle: BundleArtifact, *, artifact_digest: str, policy: SignerPolicy) -> SignatureCheck:
    """Never raises; `ok` only when the bundle is validly signed by a trusted signer for this digest."""
    try:
        verified = verify_bundle(bundle, policy, artifact_digest=artifact_digest)
        if verified.envelope is not None:
            require_subject(read_statement(verified.envelope.payload), artifact_digest)
    except Rejected as exc:
        return SignatureCheck(ok=False, reason=exc.reason, message=exc.message)
    except Exception as exc:
        # Fail closed: no input, however strange, may crash the caller or pass as verified.
        return SignatureCheck(
            ok=False,
            reason=Reason.MALFORMED_INPUT,
            message=f"verification stopped on unexpected {type(exc).__name__}: {exc}",
        )
    envelope = verified.envelope
    return SignatureCheck(
        ok=True,
        reason=Reason.VERIFIED,
        message=f"{artifact_digest} signed by {verified.signer.summary.describe()}",
        signer=verified.signer.summary,
        payload_type=None if envelope is None else envelope.payload_type,
        payload=None if envelope is None else envelope.payload,
    )
