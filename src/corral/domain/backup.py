"""Restore points as plain data: what a backup left in the repository and how it chains.

A restore point is a folder of qcow2 files (one per disk) plus the VM's definition, described by
its manifest. A full point stands alone; an incremental holds only the clusters written since
its parent and needs the whole chain of parents down to a full one to be restored.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

Kind = Literal["full", "incremental"]
MANIFEST = "manifest.json"
DOMAIN_XML = "domain.xml"


@dataclass(frozen=True, slots=True)
class PointFile:
    """One file of a restore point; ``disk`` is the guest's target (vda) or None (domain.xml)."""

    name: str
    size: int
    sha256: str
    disk: str | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    """Everything needed to check and restore one point, written last and atomically."""

    id: str
    vm_uuid: str
    vm_name: str
    host: str
    kind: Kind
    parent: str | None
    checkpoint: str
    taken_at: datetime
    files: tuple[PointFile, ...]
    fallback: str | None = None  # why a full was taken although an incremental was due
    seconds: float = 0.0
    version: int = 1
    consistency: str = "crash"  # or "application": filesystems frozen, or a clean shutdown
    consistency_note: str | None = None  # why (e.g. the guest agent is absent)

    @property
    def disks(self) -> tuple[PointFile, ...]:
        return tuple(f for f in self.files if f.disk is not None)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> str:
        doc = asdict(self)
        doc["taken_at"] = self.taken_at.isoformat()
        return json.dumps(doc, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        doc: dict[str, Any] = json.loads(text)
        files = tuple(PointFile(**f) for f in doc.pop("files"))
        taken = datetime.fromisoformat(doc.pop("taken_at"))
        return cls(files=files, taken_at=taken, **doc)


@dataclass(frozen=True, slots=True)
class Verified:
    """A point re-hashed: ``problems`` empty when every file is there with its recorded hash."""

    point: str
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems
