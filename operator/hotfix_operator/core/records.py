"""The published record of a promoted hotfix, built from the release and its status alone. Pure.

Every byte is a function of facts that are final at promotion, so a retry or a restarted operator
uploads identical bytes (an asset that differs would be refused):
  hotfix_record.json  the audit record: incident, version, tag, commit, image, justification, ticket,
                      severity, risk, requester, approvals, policy, provenance summary, the timestamps up
                      to promotion, blue/green hashes, and the audit entries up to promotion
  provenance.json     what the provenance gate verified (status.provenance: signers, builder, source,
                      commit, predicate types) with the image digest, the policy and the time; the
                      signed attestations themselves stay in the registry next to the image
  evidence.tar.gz     the two files above as one bundle (deterministic tar: fixed mtimes, owners, gzip
                      header without a timestamp)
  SHA256SUMS          sha256sum-format digests of the three files above
spec.artifact.evidence (an external bundle URL) is not downloaded; it is named in hotfix_record.json.
"""

from __future__ import annotations

import datetime
import gzip
import io
import json
import tarfile
from collections.abc import Mapping
from typing import Any

from hotfix_operator.core.model import Release, Status
from hotfix_operator.formats import render_sha256sums, utc_iso


def approvals_of(status: Status) -> list[tuple[str, datetime.datetime]]:
    """The approvals that counted (their authors proven by admission and re-checked when counted),
    each at the time the operator first observed it; never a time a client wrote."""
    counted = set(status.approved_by)  # core.governance.judge's verdict: Approves, never the requester's
    return [(o.approver, o.observed_at) for o in status.observed_approvals if o.approver in counted]


def timeline_of(status: Status) -> list[tuple[str, datetime.datetime]]:
    ts = status.timestamps
    events = [("Hotfix requested", ts.created), ("Provenance verified", ts.verified), ("Approved", ts.approved),
              ("Traffic switched to the hotfix", ts.promoted)]
    return [(what, at) for what, at in events if at is not None]




def _iso(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else utc_iso(moment)


def _json(payload: Any) -> bytes:
    return (json.dumps(payload, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def hotfix_record(release: Release, status: Status) -> dict[str, Any]:
    """The audit record, limited to what is final at promotion (so it is the same bytes on every retry)."""
    spec, ts, promoted = release.spec, status.timestamps, status.timestamps.promoted
    audit = [
        {"time": _iso(entry.time), "actor": entry.actor, "action": entry.action, "detail": entry.detail}
        for entry in status.audit
        if promoted is not None and entry.time <= promoted
    ]
    return {
        "schema": "hotfix.dev/hotfix-record/v1",
        "incidentId": status.incident_id,
        "release": {"namespace": release.namespace, "name": release.name, "uid": release.uid},
        "version": spec.version,
        "tag": spec.tag,
        "commitSha": spec.commit_sha,
        "image": spec.artifact.image,
        "sourceRepository": spec.artifact.source_repository,
        "externalEvidence": spec.artifact.evidence,
        "justification": spec.justification,
        "ticketUrl": spec.ticket_url,
        "severity": spec.severity,
        "riskLevel": spec.risk_level,
        "requestedBy": spec.requested_by,
        "approvals": [{"approver": who, "at": _iso(at)} for who, at in approvals_of(status)],
        "policy": status.policy,
        "provenance": status.provenance,
        "target": spec.target.model_dump(by_alias=True, exclude_none=True),
        "timestamps": {"created": _iso(ts.created), "verified": _iso(ts.verified), "approved": _iso(ts.approved),
                       "greenAvailable": _iso(ts.green_available), "promoted": _iso(ts.promoted)},
        "blueGreen": {"blueHash": status.blue_green.blue_hash, "greenHash": status.blue_green.green_hash,
                      "blueImage": status.blue_green.blue_image},
        "slaDeadline": _iso(status.sla_deadline),
        "audit": audit,
    }


def provenance_record(release: Release, status: Status) -> dict[str, Any]:
    return {
        "schema": "hotfix.dev/verified-provenance/v1",
        "image": release.spec.artifact.image,
        "policy": status.policy,
        "verifiedAt": _iso(status.timestamps.verified),
        "verified": status.provenance,
    }


def _tar_gz(files: Mapping[str, bytes], mtime: int) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), mtime, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def evidence_files(release: Release, status: Status) -> dict[str, bytes]:
    files = {
        "hotfix_record.json": _json(hotfix_record(release, status)),
        "provenance.json": _json(provenance_record(release, status)),
    }
    promoted = status.timestamps.promoted
    files["evidence.tar.gz"] = _tar_gz(files, int(promoted.timestamp()) if promoted else 0)
    files["SHA256SUMS"] = render_sha256sums(files).encode()
    return files
