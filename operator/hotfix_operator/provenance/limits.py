"""Size limits for everything the verifier reads; generous for real attestations, fatal for abuse."""

from __future__ import annotations

from typing import Final

KIB: Final = 1024
MIB: Final = 1024 * KIB

# A JSON document: DSSE envelope, Sigstore bundle, statement, simple-signing payload, trust root.
MAX_JSON_BYTES: Final = 16 * MIB
# One OCI layer blob (an attestation can carry an SBOM or a scan report).
MAX_LAYER_BYTES: Final = 16 * MIB
# One annotation value (certificate, chain, Rekor bundle).
MAX_ANNOTATION_BYTES: Final = 256 * KIB
# Counts of things a single image may carry.
MAX_LAYERS: Final = 64
MAX_BUNDLES: Final = 64
MAX_DSSE_SIGNATURES: Final = 16
# An OCI manifest or index.
MAX_MANIFEST_BYTES: Final = 4 * MIB
# The optional evidence bundle.
MAX_EVIDENCE_FILE_BYTES: Final = 256 * MIB
MAX_EVIDENCE_ARCHIVE_UNPACKED_BYTES: Final = 1024 * MIB
MAX_EVIDENCE_ARCHIVE_MEMBERS: Final = 10_000
MAX_EVIDENCE_PATH_LENGTH: Final = 1024
