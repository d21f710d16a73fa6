"""What claiming a restore test costs: seconds per restore test on libvirt's test driver.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_restore_test_claims.py [--tests 20]

Fixed input: a SQLite inventory with the test driver's host and its VM "test", one sealed
full restore point of it (a 16 MiB qcow2 and the domain XML), the policy's ``settle_s`` 0.
Each test (after two warm-up ones) restores the point as a scratch VM on an isolated network,
defines and starts it and removes it all; on a branch with claims it also writes the claim
first, looks for stale ones and commits the result to the claimed row. Run it on main and on
the branch back to back (same machine load) and compare the medians: the test driver boots
nothing, so what is timed is Corral's own work (a real test takes seconds to minutes).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import libvirt
from cryptography.fernet import Fernet
from lxml import etree

from corral.domain.backup import Manifest
from corral.engines.backup import Policy
from corral.engines.backup.policy import RestoreTesting
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.services.backup_exec import HostOpener, catalog_row
from corral.services.backup_restore_test import RestoreTester
from corral.store.backup_repo import Repository
from corral.store.db import Database

POINT = "20260302T000001-abc001"


def _setup(tmp: Path) -> RestoreTester:
    db = Database(f"sqlite:///{tmp / 'corral.db'}")
    db.migrate()
    inv = Inventory(db, SecretBox(Fernet.generate_key()))
    inv.add_host("h1", "test:///default")
    inv.sync()
    conn = libvirt.open("test:///default")
    root = etree.fromstring(conn.lookupByName("test").XMLDesc(0).encode())
    conn.close()
    (tmp / "vm").mkdir()
    source = root.find("./devices/disk/source")
    assert source is not None
    source.set("file", str(tmp / "vm" / "vda.qcow2"))
    uuid = str(inv.find_vm("test").uuid)
    repo = Repository(tmp / "repo")
    folder = repo.begin(uuid, POINT)
    disk = folder / "vda.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    (folder / "domain.xml").write_bytes(etree.tostring(root))
    files = (repo.describe(folder, "vda.qcow2", "vda"), repo.describe(folder, "domain.xml"))
    at = datetime(2026, 3, 2, tzinfo=UTC)
    point = Manifest(POINT, uuid, "test", "h1", "full", None, "cp", at, files)
    repo.commit(folder, point)
    with db.session() as s:
        s.add(catalog_row(point))
    policy = Policy(restore_test=RestoreTesting(boot_timeout_s=5, settle_s=0))
    return RestoreTester(db, repo, HostOpener(db), policy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=20)
    args = parser.parse_args()
    tester = _setup(Path(tempfile.mkdtemp(prefix="corral-bench-rt-")))
    seconds = []
    for i in range(args.tests + 2):
        began = time.perf_counter()
        [result] = tester.run(point=POINT)
        assert result.ok, result
        if i >= 2:
            seconds.append(time.perf_counter() - began)
    print("| restore tests | median ms | min ms |")
    print("| --- | --- | --- |")
    median, least = statistics.median(seconds) * 1000, min(seconds) * 1000
    print(f"| {len(seconds)} | {median:.1f} | {least:.1f} |")


if __name__ == "__main__":
    main()
