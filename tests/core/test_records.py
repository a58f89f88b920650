"""The published record: deterministic bytes, consistent checksums, only what was final at promotion."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import io
import json
import tarfile

from hotfix_operator.core.model import AuditEntry, ReleaseArea
from hotfix_operator.core.records import evidence_files
from hotfix_operator.publishing import verify_checksums
from tests.support.followups import COMMIT, T0, make_release, promoted_status


def test_evidence_is_deterministic_consistent_and_limited_to_what_is_final_at_promotion() -> None:
    release = make_release()
    status = promoted_status()
    files = evidence_files(release, status)
    assert sorted(files) == ["SHA256SUMS", "evidence.tar.gz", "hotfix_record.json", "provenance.json"]
    verify_checksums(files)
    listed = dict(reversed(line.split("  ")) for line in files["SHA256SUMS"].decode().splitlines())
    assert listed["evidence.tar.gz"] == hashlib.sha256(files["evidence.tar.gz"]).hexdigest()
    # later status changes (follow-up audit entries, completion) do not change a single byte
    later = status.model_copy(update={
        "audit": (*status.audit, AuditEntry(time=T0 + datetime.timedelta(minutes=5), actor="x", action="Released")),
        "release": ReleaseArea(url="u"), "conditions": ()})
    assert evidence_files(release, later) == files
    record_json = json.loads(files["hotfix_record.json"])
    assert record_json["incidentId"] == "INC-20260108-102500" and record_json["commitSha"] == COMMIT
    assert [a["approver"] for a in record_json["approvals"]] == ["bob"]  # the requester's own approval is void
    assert [a["action"] for a in record_json["audit"]] == ["Pending", "Promoted"]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(files["evidence.tar.gz"]))) as archive:
        assert sorted(archive.getnames()) == ["hotfix_record.json", "provenance.json"]
        member = archive.extractfile("provenance.json")
        assert member is not None and member.read() == files["provenance.json"]
