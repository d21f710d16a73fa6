"""The evidence folder on its own: sealing makes it read-only, ``check`` names every change."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from corral.domain.forensic import CUSTODY, Evidence, MovedNic
from corral.store.evidence import EvidenceStore


def _sealed(root: Path) -> tuple[EvidenceStore, Evidence]:
    store = EvidenceStore(root)
    folder = store.begin("20261203T200000-abcd")
    (folder / "memory.img").write_bytes(b"\x01" * 5000)
    (folder / "vda.qcow2").write_bytes(b"disk")
    files = (store.describe(folder, "memory.img"), store.describe(folder, "vda.qcow2", "vda"))
    evidence = Evidence(
        id="20261203T200000-abcd", vm_uuid="u", vm_name="web", host="h1", taken_by="alice",
        taken_at=datetime(2026, 12, 3, 20, tzinfo=UTC), reason="why", files=files,
        isolated_to="quarantine", moved=(MovedNic("52:54:00:00:00:01", "corral"),),
    )  # fmt: skip
    store.seal(folder, evidence)
    return store, evidence


def test_seal_is_read_only_and_round_trips(tmp_path: Path) -> None:
    store, evidence = _sealed(tmp_path)
    folder = store.folder(evidence.id)
    assert sorted(p.name for p in folder.iterdir()) == [CUSTODY, "memory.img", "vda.qcow2"]
    assert {p.stat().st_mode & 0o777 for p in folder.iterdir()} == {0o400}
    assert folder.stat().st_mode & 0o777 == 0o500
    assert not list(tmp_path.glob(".partial-*"))
    assert Evidence.from_json((folder / CUSTODY).read_text()) == evidence
    assert store.check(evidence).ok


def test_check_names_changed_missing_added_and_a_rewritten_record(tmp_path: Path) -> None:
    store, evidence = _sealed(tmp_path)
    folder = store.folder(evidence.id)
    folder.chmod(0o700)
    (folder / "vda.qcow2").chmod(0o600)
    (folder / "vda.qcow2").write_bytes(b"DISK")  # same size, other bytes
    (folder / "memory.img").unlink()
    (folder / "extra").write_text("x")
    (folder / CUSTODY).chmod(0o600)  # someone rewrites the folder's own record to match
    forged = replace(evidence, reason="nothing to see")
    (folder / CUSTODY).write_text(forged.to_json())
    assert store.check(evidence).problems == (
        "memory.img is missing",
        "vda.qcow2 changed (its SHA-256 is not the recorded one)",
        "extra was added",
        f"{CUSTODY} differs from the record in the database",
    )
