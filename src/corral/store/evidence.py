"""The forensic evidence folder: one sealed, read-only folder per snapshot.

Layout: ``ROOT/<evidence id>/`` holds ``memory.img``, one copy per disk (``vda.qcow2``),
``domain.xml`` and ``custody.json`` (the custody record with every file's SHA-256). A capture
writes into ``ROOT/.partial-<id>/``; sealing hashes the files, writes the record (temp file,
fsync, rename), renames the folder into place and then takes away every write permission
(files 0400, folder 0500), so a slip of a command or a process without root cannot change
it. Root can, which is why ``check`` re-hashes against the record kept in the database
(and in the audit log), not only against the folder's own ``custody.json``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from corral.domain.forensic import CUSTODY, Evidence, EvidenceCheck, EvidenceFile
from corral.errors import NotFoundError, ValidationError
from corral.store.backup_repo import sha256

PARTIAL = ".partial-"
FILE_MODE, DIR_MODE = 0o400, 0o500


class EvidenceStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def begin(self, evidence_id: str) -> Path:
        """A fresh private folder the capture writes into (libvirt writes the memory file)."""
        _check_id(evidence_id)
        folder = self.root / f"{PARTIAL}{evidence_id}"
        folder.mkdir(mode=0o700, parents=True)
        return folder

    def describe(self, folder: Path, name: str, disk: str | None = None) -> EvidenceFile:
        path = folder / name
        return EvidenceFile(name, path.stat().st_size, sha256(path), disk)

    def seal(self, partial: Path, evidence: Evidence) -> Path:
        """Write the custody record, put the folder in place and make it read-only."""
        tmp = partial / f".{CUSTODY}.tmp"
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(evidence.to_json())
            out.flush()
            os.fsync(out.fileno())
        tmp.rename(partial / CUSTODY)
        for f in (*evidence.files, EvidenceFile(CUSTODY, 0, "")):
            path = partial / f.name
            _fsync(path)
            path.chmod(FILE_MODE)
        final = self.root / evidence.id
        partial.rename(final)
        final.chmod(DIR_MODE)
        _fsync(self.root)
        return final

    def discard(self, partial: Path) -> None:
        """Throw away an unfinished capture (only ever a ``.partial-`` folder)."""
        if partial.name.startswith(PARTIAL):
            shutil.rmtree(partial, ignore_errors=True)

    def remove(self, evidence_id: str) -> None:
        """Delete a sealed evidence folder (its retention ended): write permission back first."""
        folder = self.folder(evidence_id)
        if not folder.is_dir():
            return
        folder.chmod(0o700)
        shutil.rmtree(folder)

    def folder(self, evidence_id: str) -> Path:
        _check_id(evidence_id)
        return self.root / evidence_id

    def check(self, recorded: Evidence) -> EvidenceCheck:
        """Re-hash the folder against ``recorded``: every file missing, changed or added."""
        folder = self.folder(recorded.id)
        if not folder.is_dir():
            raise NotFoundError(f"the evidence folder {folder} is gone.")
        problems = []
        expected = {f.name: f for f in recorded.files}
        for f in recorded.files:
            path = folder / f.name
            if not path.is_file():
                problems.append(f"{f.name} is missing")
            elif path.stat().st_size != f.size or sha256(path) != f.sha256:
                problems.append(f"{f.name} changed (its SHA-256 is not the recorded one)")
        for path in sorted(folder.iterdir()):
            if path.name not in expected and path.name != CUSTODY:
                problems.append(f"{path.name} was added")
        custody = folder / CUSTODY
        try:
            if Evidence.from_json(custody.read_text("utf-8")) != recorded:
                problems.append(f"{CUSTODY} differs from the record in the database")
        except (OSError, ValueError, TypeError, KeyError):
            problems.append(f"{CUSTODY} is missing or unreadable")
        return EvidenceCheck(recorded.id, len(recorded.files), tuple(problems))


def _check_id(evidence_id: str) -> None:
    if not evidence_id or "/" in evidence_id or evidence_id.startswith("."):
        raise ValidationError(f"{evidence_id[:80]!r} is not an evidence id.")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
