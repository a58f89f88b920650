"""Sigstore bundles whose Rekor entry is of kind intoto (0.0.1 or 0.0.2), verified by us.

slsa-github-generator's builders before v2.1 (and cosign before dsse entries) logged DSSE
attestations as intoto entries. sigstore-python 4 refuses those bundles outright ("Integrated
time only supported for dsse/hashedrekord 0.0.1 types"), although the entry kinds bind the
envelope as firmly as dsse does. So for them we check what sigstore-python would, with the
rules the legacy cosign path already applies (signers.verify_signer): the SET with the pinned log
key gives the signing time, the Fulcio chain and SCT are judged at that time, the identity must
be trusted, the signature must verify, and the logged body must name this payload, payload type,
signature and certificate. An inclusion proof, when present (required from bundle v0.2 on), must
reach a checkpoint signed by the same log key.

A bundle re-serializes the envelope, so the envelope hash the entry records (over the bytes once
uploaded) cannot be recomputed here; every part the signature covers is compared on its own.
"""

from __future__ import annotations

from cryptography import x509

from .dsse import Envelope
from .encoding import decode_base64, encode_base64
from .inclusion import parse_inclusion_proof, verify_inclusion_proof
from .policy import SignerPolicy
from .reasons import Reason, Rejected
from .rekor import TlogEntry
from .signers import SignedContent, VerifiedSigner, verify_signer
from .strictjson import (
    JsonObject,
    as_object,
    get_int,
    get_list,
    get_object,
    get_str,
    optional_object,
    parse_json_object,
)

INTOTO_KIND = "intoto"
# Bundle v0.1 proved inclusion by SET alone; from v0.2 on the inclusion proof is mandatory.
_SET_ONLY_MEDIA_TYPES = frozenset({"application/vnd.dev.sigstore.bundle+json;version=0.1"})


def bundle_tlog_entry(entry: JsonObject, what: str) -> TlogEntry:
    """A v1 log entry with its inclusion promise (if any), in the shape our SET check reads."""
    body = decode_base64(get_str(entry, "canonicalizedBody", what), what=f"{what} canonicalizedBody")
    promise = optional_object(entry, "inclusionPromise", what)
    integrated = get_int(entry, "integratedTime", what, allow_string=True) if "integratedTime" in entry else None
    return TlogEntry(
        body=body,
        # Rekor signed the standard base64 of the body; the bundle's own encoding may differ.
        body_base64=encode_base64(body),
        integrated_time=integrated,
        log_index=get_int(entry, "logIndex", what, allow_string=True),
        log_id=decode_base64(
            get_str(get_object(entry, "logId", what), "keyId", f"{what}.logId"), what=f"{what} log id"
        ),
        signed_entry_timestamp=None
        if promise is None
        else decode_base64(get_str(promise, "signedEntryTimestamp", what), what=f"{what} SET"),
    )


def require_kind_version(tlog: TlogEntry, kind_version: JsonObject, what: str) -> None:
    body = parse_json_object(tlog.body, what=f"{what} log entry body")
    declared = (get_str(kind_version, "kind", what), get_str(kind_version, "version", what))
    logged = (body.get("kind"), body.get("apiVersion"))
    if declared != logged:
        raise Rejected(
            Reason.TLOG_INVALID,
            f"{what} declares a {declared[0]}/{declared[1]} entry, the body is {logged[0]}/{logged[1]}",
        )


def logs_intoto(entries: list[JsonObject], what: str) -> bool:
    """Whether the bundle's (single) log entry declares the intoto kind, which we verify ourselves."""
    if len(entries) != 1:
        return False
    kind_version = optional_object(entries[0], "kindVersion", f"{what} tlogEntries[0]")
    return kind_version is not None and kind_version.get("kind") == INTOTO_KIND


def verify_intoto_keyless(
    *,
    media_type: str,
    material: JsonObject,
    entries: list[JsonObject],
    envelope: Envelope,
    policy: SignerPolicy,
    what: str,
) -> VerifiedSigner:
    where = f"{what} tlogEntries[0]"
    (entry,) = entries
    tlog = bundle_tlog_entry(entry, where)
    require_kind_version(tlog, get_object(entry, "kindVersion", where), what)
    _require_inclusion(tlog, optional_object(entry, "inclusionProof", where), media_type, policy, what)
    if tlog.signed_entry_timestamp is None:
        # Rekor v1 signs the integrated time only in the SET; without it nothing proves when the
        # short-lived certificate was used (and we accept no timestamp authority).
        raise Rejected(Reason.TLOG_PROOF_MISSING, f"{what} log entry has no SET, so its signing time is unproven")
    return verify_signer(
        content=SignedContent.envelope(envelope.pae(), envelope.payload, payload_type=envelope.payload_type),
        signature=envelope.only_signature().sig,
        certificate=_leaf_certificate(material, what),
        tlog=tlog,
        policy=policy,
        what=what,
    )


def _require_inclusion(
    tlog: TlogEntry, proof: JsonObject | None, media_type: str, policy: SignerPolicy, what: str
) -> None:
    if proof is None:
        if tlog.signed_entry_timestamp is None:
            raise Rejected(Reason.TLOG_PROOF_MISSING, f"{what} log entry has neither an inclusion proof nor a SET")
        if media_type not in _SET_ONLY_MEDIA_TYPES:
            raise Rejected(Reason.TLOG_PROOF_MISSING, f"{what} ({media_type}) must carry an inclusion proof")
        return
    root = policy.root
    log = None if root is None else root.transparency_logs.get(tlog.log_id)
    if root is None or log is None:
        known = "none" if root is None else root.describe_logs()
        raise Rejected(
            Reason.TLOG_UNKNOWN_LOG,
            f"transparency log {tlog.log_id.hex()} is not in the pinned trusted root (which has {known})",
        )
    verify_inclusion_proof(tlog.body, parse_inclusion_proof(proof, f"{what} inclusion proof"), log, what)


def _leaf_certificate(material: JsonObject, what: str) -> x509.Certificate:
    if "certificate" in material:
        raw = get_str(get_object(material, "certificate", what), "rawBytes", f"{what} certificate")
    else:
        chain = get_list(get_object(material, "x509CertificateChain", what), "certificates", what)
        if not chain:
            raise Rejected(Reason.MALFORMED_INPUT, f"{what} has an empty certificate chain")
        raw = get_str(as_object(chain[0], f"{what} certificate"), "rawBytes", f"{what} certificate")
    try:
        return x509.load_der_x509_certificate(decode_base64(raw, what=f"{what} certificate"))
    except ValueError as exc:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} certificate is not DER: {exc}") from None
