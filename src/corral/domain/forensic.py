"""Forensic evidence as plain data: what a snapshot of a suspect VM kept, and its hashes.

An evidence set is one folder of files (the VM's memory, a copy of each disk as it was at
the snapshot, the live definition) and a custody record: who took it, when, why, which files
with which SHA-256. The record is written into the database (and so into the hash-chained
audit log) when the evidence is sealed; ``verify`` re-hashes the files against it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from corral.domain.backup import PointFile

CUSTODY = "custody.json"
MEMORY = "memory.img"
DOMAIN_XML = "domain.xml"
Kind = Literal["snapshot", "rollback"]


#: One evidence file: a restore point's file record (name, size, SHA-256, the guest's disk
#: target for a disk copy), the same record the backup repository keeps.
EvidenceFile = PointFile


@dataclass(frozen=True, slots=True)
class MovedNic:
    """A NIC moved to the isolated network: its MAC and the network it was on before."""

    mac: str
    was: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """One forensic snapshot: the chain-of-custody entry and the files it vouches for."""

    id: str
    vm_uuid: str
    vm_name: str
    host: str
    taken_by: str
    taken_at: datetime
    reason: str
    files: tuple[EvidenceFile, ...]
    isolated_to: str | None = None
    moved: tuple[MovedNic, ...] = ()
    seconds: float = 0.0
    #: how the memory and disks were captured (the libvirt method), for the record
    method: str = "external-snapshot-with-memory"

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> str:
        doc = asdict(self)
        doc["taken_at"] = self.taken_at.isoformat()
        return json.dumps(doc, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Evidence:
        doc: dict[str, Any] = json.loads(text)
        return cls.from_doc(doc)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Evidence:
        doc = dict(doc)
        files = tuple(EvidenceFile(**f) for f in doc.pop("files"))
        moved = tuple(MovedNic(**n) for n in doc.pop("moved", ()))
        taken = doc.pop("taken_at")
        at = taken if isinstance(taken, datetime) else datetime.fromisoformat(taken)
        return cls(files=files, moved=moved, taken_at=at, **doc)


@dataclass(frozen=True, slots=True)
class EvidenceCheck:
    """Evidence re-hashed: ``problems`` names each file missing, added or changed."""

    evidence: str
    files: int
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class Rollback:
    """A compromised VM rolled back in place to a restore point, after its evidence."""

    vm_name: str
    vm_uuid: str
    point: str
    evidence: str | None  # the snapshot taken first (None with --no-evidence)
    host: str
    started: bool
    seconds: float
