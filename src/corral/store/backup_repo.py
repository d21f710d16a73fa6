"""The backup repository: restore points as folders on a directory, each sealed by its manifest.

Layout: ``ROOT/<vm uuid>/<point id>/`` holds one qcow2 file per disk, ``domain.xml`` and
``manifest.json`` (sizes and sha256 of every file). A backup writes into
``ROOT/<vm uuid>/.partial-<point id>/``; only when every file is written, hashed and fsynced,
and the manifest written (temp file, fsync, rename), is the folder renamed to its final name
and the parent folder fsynced. So a job killed at any moment leaves either a whole restore
point or a ``.partial-`` folder that no reader counts and the next run throws away.
Deleting renames the folder to ``.deleting-<id>`` first, for the same reason.

An incremental's disk files name their parent point's files as backing files, by a relative
path (``../<parent id>/vda.qcow2``): a chain restores from the repository alone, wherever the
repository is mounted.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from corral.domain.backup import MANIFEST, Manifest, PointFile, Verified
from corral.errors import ConflictError, NotFoundError, ValidationError

PARTIAL = ".partial-"
DELETING = ".deleting-"
CHUNK = 1 << 20


class Repository:
    def __init__(self, root: Path) -> None:
        self.root = root

    # -- writing -----------------------------------------------------------------------
    def begin(self, vm_uuid: str, point_id: str) -> Path:
        """A fresh private folder for a point being written."""
        folder = self._vm_dir(vm_uuid) / f"{PARTIAL}{point_id}"
        folder.mkdir(mode=0o700, parents=True)
        return folder

    def commit(self, partial: Path, manifest: Manifest) -> Path:
        """Seal a written point: fsync its files, write the manifest atomically, rename."""
        for f in manifest.files:
            _fsync(partial / f.name)
        tmp = partial / f".{MANIFEST}.tmp"
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(manifest.to_json())
            out.flush()
            os.fsync(out.fileno())
        tmp.rename(partial / MANIFEST)
        _fsync_dir(partial)
        final = partial.parent / manifest.id
        partial.rename(final)
        _fsync_dir(partial.parent)
        return final

    def describe(self, folder: Path, name: str, disk: str | None = None) -> PointFile:
        """A written file's entry for the manifest: its size and sha256."""
        path = folder / name
        return PointFile(name, path.stat().st_size, sha256(path), disk)

    @contextlib.contextmanager
    def vm_lock(self, vm_uuid: str) -> Iterator[None]:
        """One backup or restore of a VM at a time; the lock dies with a killed process."""
        folder = self._vm_dir(vm_uuid)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(folder / ".lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConflictError(
                    f"another backup or restore of VM {vm_uuid} is running; try again later."
                ) from None
            yield

    def leftovers(self, vm_uuid: str) -> list[Path]:
        """Folders of jobs that never finished (killed half-way) or deletions cut short."""
        folder = self._vm_dir(vm_uuid)
        if not folder.is_dir():
            return []
        return sorted(
            p for p in folder.iterdir() if p.name.startswith((PARTIAL, DELETING)) and p.is_dir()
        )

    def discard(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    def remove(self, point_id: str) -> None:
        """Delete a point: out of sight first (rename), then its files."""
        folder = self.folder(point_id)
        doomed = folder.parent / f"{DELETING}{point_id}"
        folder.rename(doomed)
        _fsync_dir(folder.parent)
        shutil.rmtree(doomed)

    # -- reading -----------------------------------------------------------------------
    def points(self, vm_uuid: str | None = None) -> list[Manifest]:
        """Every sealed point (of one VM), oldest first."""
        vms = [self._vm_dir(vm_uuid)] if vm_uuid else self._vm_dirs()
        found = []
        for vm_dir in vms:
            if not vm_dir.is_dir():
                continue
            for folder in vm_dir.iterdir():
                if not folder.name.startswith(".") and (folder / MANIFEST).is_file():
                    found.append(Manifest.from_json((folder / MANIFEST).read_text("utf-8")))
        return sorted(found, key=lambda m: (m.taken_at, m.id))

    def get(self, point_id: str) -> Manifest:
        return Manifest.from_json((self.folder(point_id) / MANIFEST).read_text("utf-8"))

    def folder(self, point_id: str) -> Path:
        _check_id(point_id)
        for vm_dir in self._vm_dirs():
            if (vm_dir / point_id / MANIFEST).is_file():
                return vm_dir / point_id
        raise NotFoundError(f"no restore point {point_id}; list them with 'corral backup points'.")

    def chain(self, point_id: str) -> list[Manifest]:
        """The point and its parents down to the full one, oldest first."""
        chain = [self.get(point_id)]
        while chain[-1].parent is not None:
            parent = chain[-1].parent
            try:
                chain.append(self.get(parent))
            except NotFoundError:
                raise NotFoundError(
                    f"restore point {point_id} needs {parent}, which is gone: the chain is broken."
                ) from None
        return chain[::-1]

    def verify(self, point_id: str) -> Verified:
        """Re-hash every file of the point against its manifest; the parent must be there."""
        manifest = self.get(point_id)
        folder = self.folder(point_id)
        problems = []
        for f in manifest.files:
            path = folder / f.name
            if not path.is_file():
                problems.append(f"{f.name} is missing")
            elif path.stat().st_size != f.size:
                problems.append(f"{f.name} is {path.stat().st_size} bytes, not {f.size}")
            elif sha256(path) != f.sha256:
                problems.append(f"{f.name} does not match its sha256")
        parent = manifest.parent
        if parent is not None and not (folder.parent / parent / MANIFEST).exists():
            problems.append(f"its parent {manifest.parent} is gone")
        return Verified(point_id, tuple(problems))

    def _vm_dir(self, vm_uuid: str) -> Path:
        _check_id(vm_uuid)
        return self.root / vm_uuid

    def _vm_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _check_id(value: str) -> None:
    """Ids become folder names: letters, digits, dashes only."""
    if not value or not all(c.isalnum() or c in "-_" for c in value) or len(value) > 80:
        raise ValidationError(f"{value[:80]!r} is not a restore point or VM id.")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    _fsync(path)
