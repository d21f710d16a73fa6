"""Evidence sets written straight into a real evidence store and custody table (no hypervisor),
for the retention, API and backup-loop tests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from corral.domain.forensic import Evidence
from corral.services.backup_exec import HostOpener
from corral.services.forensic import ForensicService
from corral.store.backup_repo import Repository
from corral.store.db import Database
from corral.store.evidence import EvidenceStore


def forensic_service(db: Database, root: Path, retention_days: int = 30) -> ForensicService:
    service = ForensicService(
        db, EvidenceStore(root / "forensic"), Repository(root / "repo"), HostOpener(db)
    )
    service.retention_days = retention_days
    return service


def taken(service: ForensicService, evidence_id: str, at: datetime) -> Evidence:
    """A sealed evidence set of VM ``web`` taken at ``at``, recorded as the service does."""
    folder = service.store.begin(evidence_id)
    (folder / "memory.img").write_bytes(evidence_id.encode() * 100)
    (folder / "vda.qcow2").write_bytes(b"disk of " + evidence_id.encode())
    files = tuple(service.store.describe(folder, n) for n in ("memory.img", "vda.qcow2"))
    evidence = Evidence(
        id=evidence_id, vm_uuid="uuid-web", vm_name="web", host="h1", taken_by="alice",
        taken_at=at, reason="IDS alert", files=files,
    )  # fmt: skip
    service.store.seal(folder, evidence)
    service._record(evidence)
    return evidence
