"""Sealed restore points with real qcow2 files, for the repository, gc and API tests."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

from corral.domain.backup import Manifest
from corral.services.backup_exec import catalog_row
from corral.store.backup_repo import Repository
from corral.store.db import Database

VM = "0f6a3c1e-1111-4222-8333-944455556666"
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def make_point(
    repo: Repository, n: int, parent: str | None, db: Database | None = None, vm: str = VM,
    *, host: str = "host-a", xml: str = "<domain/>", name: str = "db-01",
) -> Manifest:  # fmt: skip
    """A sealed point whose disk is a real qcow2 file (backed by its parent's, as the executor
    leaves an incremental), of VM ``vm`` on ``host`` with the domain XML ``xml``."""
    pid = f"20260302T{n:06d}-abc{n:03d}"
    folder = repo.begin(vm, pid)
    disk = folder / "vda.qcow2"
    args = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if parent:
        args += ["-F", "qcow2", "-b", f"../{parent}/vda.qcow2"]
    subprocess.run([*args, str(disk), "16M"], check=True, cwd=folder)
    (folder / "domain.xml").write_text(xml)
    manifest = Manifest(
        pid, vm, name, host, "incremental" if parent else "full", parent,
        f"corral-{pid}", T0 + timedelta(hours=n),
        (repo.describe(folder, "vda.qcow2", "vda"), repo.describe(folder, "domain.xml")),
    )  # fmt: skip
    repo.commit(folder, manifest)
    if db is not None:
        with db.session() as s:
            s.add(catalog_row(manifest))
    return manifest
